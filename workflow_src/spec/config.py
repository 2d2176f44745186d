"""Settings of one training job: two frozen dataclasses, checked on creation.

`TrainConfig` holds everything `python -m workflow_src.train` needs; the DAG builds its dict from
config.yaml (grid.cell_settings) and passes it as JSON. Defaults are the paper's base
configuration (section 5.3): dropout 0.5, lr 1e-5, fine-tune all layers, 10 epochs, Adam with
cosine annealing (Tables 4 and 8 share their numbers, see config.yaml). `asdict(cfg)` is written
into every metrics file and checkpoint. No torch here: the DAG and the renderers import this.
"""

from __future__ import annotations

import functools
import math
import types
import typing
from dataclasses import asdict, dataclass, field, fields

from workflow_src.spec.tasks import TASKS


@dataclass(frozen=True)
class Allowed:
    """What a setting allows besides its type: choices, bounds, or a non-empty text."""

    choices: tuple = ()  # for a tuple-typed setting, what each element may be
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself excluded
    high_open: bool = True  # high itself excluded
    nonempty: bool = False

    def check(self, name: str, value) -> None:
        if self.nonempty and not value.strip():
            _fail(name, value, "a non-empty string")
        if self.choices and value not in self.choices:
            _fail(name, value, f"one of {', '.join(self.choices)}")
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            _fail(name, value, f"a value {'>' if self.low_open else '>='} {self.low}")
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            _fail(name, value, f"a value {'<' if self.high_open else '<='} {self.high}")


def setting(default, **allowed):
    """A dataclass field: its default, and what it allows (`Allowed`) declared beside it."""
    return field(default=default, metadata={"allowed": Allowed(**allowed)})


def _fail(name: str, value, expected: str):
    raise ValueError(f"{name}={value!r} is invalid: expected {expected}")


def _check_kind(name: str, value, kind: type, *, optional: bool = False):
    """Value of `name` checked against a plain type; ints are accepted (and kept) for floats."""
    if value is None and optional:
        return None
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            _fail(name, value, "a finite number")
    else:
        ok = isinstance(value, kind)
    if not ok:
        _fail(name, value, f"{kind.__name__}{' or null' if optional else ''}")
    return float(value) if kind is float else value


@functools.cache
def _plain_kinds(cls) -> dict[str, tuple[type, bool]]:
    """name -> (type, may be None) of every field annotated with a plain type (or one | None),
    read from the annotations; other fields (tasks, smart) are checked by their class."""
    kinds = {}
    for name, hint in typing.get_type_hints(cls).items():
        args = typing.get_args(hint) if isinstance(hint, types.UnionType) else ()
        optional = type(None) in args
        plain = [a for a in args if a is not type(None)] if args else [hint]
        if len(plain) == 1 and plain[0] in (bool, int, float, str):
            kinds[name] = (plain[0], optional)
    return kinds


def _check_fields(obj, prefix: str = "") -> None:
    """Type-check every plain field (ints become floats where declared), then what it allows."""
    kinds = _plain_kinds(type(obj))
    for f in fields(obj):
        name, value = prefix + f.name, getattr(obj, f.name)
        if f.name in kinds:
            kind, optional = kinds[f.name]
            value = _check_kind(name, value, kind, optional=optional)
            object.__setattr__(obj, f.name, value)
        allowed = f.metadata.get("allowed")
        if allowed is not None and value is not None and f.name in kinds:
            allowed.check(name, value)


def declared_choices(cls) -> dict[str, tuple]:
    """name -> allowed values of every setting of `cls` that has a fixed set of them."""
    return {
        f.name: f.metadata["allowed"].choices
        for f in fields(cls)
        if "allowed" in f.metadata and f.metadata["allowed"].choices
    }


def _reject_unknown(cls, d: dict, prefix: str = "") -> None:
    if not isinstance(d, dict):
        raise ValueError(f"{prefix or 'settings'} must be a mapping, got {type(d).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        names = ", ".join(prefix + key for key in unknown)
        raise ValueError(f"unknown setting(s): {names}; known: {', '.join(sorted(known))}")


@dataclass(frozen=True)
class SmartConfig:
    """SMART (Jiang et al. 2020): adversarial smoothness + Bregman proximal point (paper 4, T9).

    The perturbation's forms are explained in smart.py's module docstring.
    """

    enabled: bool = False  # the whole regulariser on/off (Table 9 "Additive loss with SMART")
    weight: float = setting(1.0, low=0.0)  # lambda_s, weight of the smoothness term
    # sigma of the initial N(0, sigma^2) perturbation of the embedding layer's output
    noise_std: float = setting(1e-5, low=0.0)
    step_size: float = setting(1e-3, low=0.0)  # eta, the gradient-ascent step
    # radius of the inf-norm ball delta is projected on (perturbation=projected only)
    epsilon: float = setting(1e-5, low=0.0)
    steps: int = setting(1, low=1)  # K, ascent steps per update
    # token_unit_inf: later mt-dnn and smart-pytorch (default); token_eta_step: early mt-dnn;
    # projected: the paper's Algorithm 1 as printed
    perturbation: str = setting(
        "token_unit_inf", choices=("token_unit_inf", "token_eta_step", "projected")
    )
    # absolute: the references' step eta * grad; noise: eta * each token's perturbation size
    # along the normalised gradient, so the ascent really moves it (smart.py; token_unit_inf)
    step_scale: str = setting("absolute", choices=("absolute", "noise"))
    # Bregman proximal point term against the momentum teacher; the seed paper describes only
    # the smoothness term, so its cells run without it
    bregman: bool = False
    bregman_weight: float = setting(1.0, low=0.0)  # mu
    beta_early: float = setting(0.99, low=0.0, high=1.0)  # teacher momentum, first updates
    beta_late: float = setting(0.999, low=0.0, high=1.0)  # teacher momentum afterwards
    # fraction of all updates that use beta_early
    beta_switch_fraction: float = setting(0.1, low=0.0, high=1.0, high_open=False)

    def __post_init__(self):
        _check_fields(self, "smart.")

    @classmethod
    def from_dict(cls, d: dict) -> SmartConfig:
        _reject_unknown(cls, d, "smart.")
        return cls(**d)


@dataclass(frozen=True)
class TrainConfig:
    """One cell's settings; defaults are the paper's base configuration (section 5.3).

    Each setting is declared once, here: its type (the annotation, checked on creation), its
    default, and what it allows (`setting(...)`); tests/test_config_schema.py checks the
    schema's enums against `declared_choices(TrainConfig)`.
    """

    run_name: str = setting("sst-base", nonempty=True)  # cell id; names the run folder
    preset: str = "paper"  # scale preset of config.yaml (tiny / quick / paper)
    # more than one = multi-task through the same loop
    tasks: tuple[str, ...] = setting(("sst",), choices=TASKS)
    model: str = setting("bert", choices=("bert", "bilstm"))  # bilstm: Table 2 baseline
    # "embedded" = packaged all-MiniLM-L6-v2; else a Hugging Face name or path
    encoder: str = setting("embedded", nonempty=True)
    # cls = pooled [CLS] output (paper); mean = masked mean of tokens
    pooling: str = setting("cls", choices=("cls", "mean"))
    # separate = each sentence alone (paper); joint = one pass over the pair
    pair_encoding: str = setting("separate", choices=("separate", "joint"))
    # Table 7: how two sentence embeddings become a similarity
    sts_head: str = setting("concat", choices=("concat", "multiply", "difference", "cosine"))
    dropout: float = setting(0.5, low=0.0, high=1.0)  # before every head (Table 3)
    lr: float = setting(1e-5, low=0.0, low_open=True)  # Table 4
    # the task heads' rate (None: lr, as the paper); a preset that trains a tenth of the
    # paper's epochs raises it so the new heads train in the updates they get
    head_lr: float | None = setting(None, low=0.0, low_open=True)
    epochs: int = setting(10, low=1)  # Table 5
    batch_size: int = setting(32, low=1)  # not given by the paper for BERT; 64 for the BiLSTM
    eval_batch_size: int = setting(128, low=1)
    max_length: int = setting(128, low=8)  # tokens per sentence (per pair, joint encoding)
    # Table 6: all | last2 | last1 | none ("PreTrain": encoder frozen)
    finetune: str = setting("all", choices=("all", "last2", "last1", "none"))
    optimizer: str = setting("adam", choices=("adam", "adamw"))  # Table 8
    weight_decay: float = setting(0.0, low=0.0)  # L2 for adam, decoupled for adamw
    # cosine annealing over all updates (paper base) | constant
    schedule: str = setting("cosine", choices=("cosine", "constant"))
    # round_robin (paper) | interleaved | proportional: see data.prepare.plan_epoch
    task_schedule: str = setting(
        "round_robin", choices=("round_robin", "interleaved", "proportional")
    )
    # N training examples per task, a fixed random sample (None = all)
    train_limit: int | None = setting(None, low=1)
    dev_limit: int | None = setting(None, low=1)  # N dev examples per task, likewise
    downsample_quora_to_sst: bool = True  # single-task Quora: sample train to SST size (5.3)
    # auto fits the hardware (batching.resolve_precision): bf16 on a CPU with native bf16
    # (AVX512-BF16, AMX), fp32 on other CPUs; bf16 on CUDA cards that support it, fp16 with a
    # gradient scaler on older ones
    precision: str = setting("auto", choices=("auto", "fp32", "bf16"))
    device: str = setting("auto", choices=("auto", "cpu", "cuda"))
    threads: int = setting(1, low=1)  # torch intra-op threads
    length_bucketing: bool = True  # batches of similar length (less padding)
    keep_checkpoints: bool = False  # keep run_dir/checkpoint/ after success
    keep_best: bool = False  # write the best epoch's weights to run_dir/best.safetensors
    data_dir: str = setting("data/cs224n", nonempty=True)
    max_bad_rows: int = setting(10, low=0)  # malformed rows per file tolerated (reported, left out)
    lstm_embedding_dim: int = setting(128, low=1)  # BiLSTM baseline only
    lstm_hidden_dim: int = setting(128, low=1)  # per direction; BiLSTM baseline only
    smart: SmartConfig = field(default_factory=SmartConfig)

    def __post_init__(self):
        _check_fields(self)
        self._check_tasks()
        if not isinstance(self.smart, SmartConfig):
            _fail("smart", self.smart, "a SmartConfig (use TrainConfig.from_dict for mappings)")
        self._check_combinations()

    def _check_tasks(self) -> None:
        tasks = self.tasks
        if isinstance(tasks, str) or not isinstance(tasks, list | tuple) or not tasks:
            _fail("tasks", tasks, f"a non-empty list drawn from {', '.join(TASKS)}")
        allowed = declared_choices(TrainConfig)["tasks"]
        for task in tasks:
            if task not in allowed:
                _fail("tasks", task, f"one of {', '.join(allowed)}")
        if len(set(tasks)) != len(tasks):
            _fail("tasks", tasks, "each task at most once")
        # Canonical order, so that round robin is sst -> quora -> sts as in the paper.
        object.__setattr__(self, "tasks", tuple(t for t in TASKS if t in tasks))

    def _check_combinations(self) -> None:
        """Settings that are each allowed alone but not together."""
        if self.pair_encoding == "joint" and "sts" in self.tasks and self.sts_head != "concat":
            _fail(
                "sts_head",
                self.sts_head,
                "concat with pair_encoding=joint (multiply/difference/cosine need two sentence "
                "embeddings; joint encoding gives one)",
            )
        if self.finetune == "none" and self.tasks == ("sts",) and self.sts_head == "cosine":
            _fail(
                "sts_head",
                self.sts_head,
                "a head with parameters when finetune=none and tasks=[sts] (nothing would train)",
            )
        if self.model == "bilstm" and self.finetune != "all":
            _fail("finetune", self.finetune, "all for model=bilstm (it has no pretrained layers)")

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Build from a plain mapping (JSON); unknown keys are errors that name the key."""
        _reject_unknown(cls, d)
        values = dict(d)
        if "smart" in values:
            smart = values["smart"]
            values["smart"] = (
                smart if isinstance(smart, SmartConfig) else SmartConfig.from_dict(smart)
            )
        if isinstance(values.get("tasks"), list):
            values["tasks"] = tuple(values["tasks"])
        return cls(**values)

    def to_dict(self) -> dict:
        """JSON-ready `asdict` (tuples become lists)."""
        d = asdict(self)
        d["tasks"] = list(self.tasks)
        return d

    @property
    def multitask(self) -> bool:
        return len(self.tasks) > 1
