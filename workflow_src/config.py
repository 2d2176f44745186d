"""Settings of one training job: two frozen dataclasses, checked on creation.

`TrainConfig` holds everything `python -m workflow_src.train` needs; the DAG builds its dict from
config.yaml (grid.cell_settings) and passes it as JSON. Defaults are the paper's base
configuration (section 5.3): dropout 0.5, lr 1e-5, fine-tune all layers, 10 epochs, Adam with
cosine annealing (Tables 4 and 8 share their numbers, see config.yaml). `asdict(cfg)` is written
into every metrics file and checkpoint. No torch here: the DAG and the renderers import this.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar

TASKS = ("sst", "quora", "sts")  # canonical order; round robin trains in this order (paper 4)


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


def _check_choice(name: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        _fail(name, value, f"one of {', '.join(choices)}")


def _check_range(name: str, value, low=None, high=None, *, low_open=False, high_open=True):
    if low is not None and (value < low or (low_open and value == low)):
        _fail(name, value, f"a value {'>' if low_open else '>='} {low}")
    if high is not None and (value > high or (high_open and value == high)):
        _fail(name, value, f"a value {'<' if high_open else '<='} {high}")


def _coerce(obj, kinds: dict[str, tuple[type, bool]]) -> None:
    """Type-check every field of a frozen dataclass, turning ints into floats where declared."""
    for name, (kind, optional) in kinds.items():
        object.__setattr__(
            obj, name, _check_kind(name, getattr(obj, name), kind, optional=optional)
        )


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
    """SMART (Jiang et al. 2020): adversarial smoothness + Bregman proximal point (paper 4, T9)."""

    enabled: bool = False  # the whole regulariser on/off (Table 9 "Additive loss with SMART")
    weight: float = 1.0  # lambda_s, weight of the smoothness term
    noise_std: float = 1e-5  # sigma of the initial N(0, sigma^2) perturbation of the embeddings
    step_size: float = 1e-3  # eta, projected gradient-ascent step
    epsilon: float = 1e-5  # radius of the infinity-norm ball the perturbation is projected onto
    steps: int = 1  # K, ascent steps per update
    bregman: bool = True  # Bregman proximal point term against the momentum teacher
    bregman_weight: float = 1.0  # mu
    beta_early: float = 0.99  # teacher momentum during the first beta_switch_fraction of updates
    beta_late: float = 0.999  # teacher momentum afterwards
    beta_switch_fraction: float = 0.1

    _KINDS: ClassVar[dict[str, tuple[type, bool]]] = {
        "enabled": (bool, False),
        "weight": (float, False),
        "noise_std": (float, False),
        "step_size": (float, False),
        "epsilon": (float, False),
        "steps": (int, False),
        "bregman": (bool, False),
        "bregman_weight": (float, False),
        "beta_early": (float, False),
        "beta_late": (float, False),
        "beta_switch_fraction": (float, False),
    }

    def __post_init__(self):
        _coerce(self, self._KINDS)
        for name in ("weight", "noise_std", "step_size", "epsilon", "bregman_weight"):
            _check_range(f"smart.{name}", getattr(self, name), 0.0, None)
        _check_range("smart.steps", self.steps, 1, None)
        for name in ("beta_early", "beta_late"):
            _check_range(f"smart.{name}", getattr(self, name), 0.0, 1.0)
        _check_range(
            "smart.beta_switch_fraction", self.beta_switch_fraction, 0.0, 1.0, high_open=False
        )

    @classmethod
    def from_dict(cls, d: dict) -> SmartConfig:
        _reject_unknown(cls, d, "smart.")
        return cls(**d)


@dataclass(frozen=True)
class TrainConfig:
    """One cell's settings; defaults are the paper's base configuration (section 5.3)."""

    run_name: str = "sst-base"  # cell id; names the run folder
    preset: str = "paper"  # scale preset of config.yaml (tiny / quick / paper)
    tasks: tuple[str, ...] = ("sst",)  # more than one = multi-task through the same loop
    model: str = "bert"  # bert | bilstm (Table 2 baseline)
    encoder: str = "embedded"  # "embedded" = packaged all-MiniLM-L6-v2; else HF name or path
    pooling: str = "cls"  # cls = pooled [CLS] output (paper); mean = masked mean of tokens
    pair_encoding: str = "separate"  # separate = each sentence alone (paper); joint = one pass
    sts_head: str = "concat"  # Table 7: concat | multiply | difference | cosine
    dropout: float = 0.5  # before every head (Table 3)
    lr: float = 1e-5  # Table 4
    epochs: int = 10  # Table 5
    batch_size: int = 32  # not given by the paper for BERT; 64 for the BiLSTM (Table 2)
    eval_batch_size: int = 128
    max_length: int = 128  # tokens per sentence (per pair with joint encoding)
    finetune: str = "all"  # Table 6: all | last2 | last1 | none ("PreTrain": encoder frozen)
    optimizer: str = "adam"  # adam | adamw (Table 8)
    weight_decay: float = 0.0  # L2 for adam, decoupled for adamw
    schedule: str = "cosine"  # cosine annealing over all updates (paper base) | constant
    task_schedule: str = "round_robin"  # round_robin (paper) | interleaved | proportional
    train_limit: int | None = (
        None  # N training examples per task, a fixed random sample (None = all)
    )
    dev_limit: int | None = None  # N dev examples per task, a fixed random sample (None = all)
    downsample_quora_to_sst: bool = True  # single-task Quora: sample train to SST size (5.3)
    precision: str = "auto"  # auto = bf16 autocast on CUDA, fp32 on CPU | fp32 | bf16
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 1  # torch intra-op threads
    length_bucketing: bool = True  # batches of similar length (less padding)
    keep_checkpoints: bool = False  # keep run_dir/checkpoint/ after success
    data_dir: str = "data/cs224n"
    max_bad_rows: int = 10  # malformed rows per file tolerated (reported, left out)
    lstm_embedding_dim: int = 128  # BiLSTM baseline only
    lstm_hidden_dim: int = 128  # per direction; BiLSTM baseline only
    smart: SmartConfig = field(default_factory=SmartConfig)

    _KINDS: ClassVar[dict[str, tuple[type, bool]]] = {
        "run_name": (str, False),
        "preset": (str, False),
        "model": (str, False),
        "encoder": (str, False),
        "pooling": (str, False),
        "pair_encoding": (str, False),
        "sts_head": (str, False),
        "dropout": (float, False),
        "lr": (float, False),
        "epochs": (int, False),
        "batch_size": (int, False),
        "eval_batch_size": (int, False),
        "max_length": (int, False),
        "finetune": (str, False),
        "optimizer": (str, False),
        "weight_decay": (float, False),
        "schedule": (str, False),
        "task_schedule": (str, False),
        "train_limit": (int, True),
        "dev_limit": (int, True),
        "downsample_quora_to_sst": (bool, False),
        "precision": (str, False),
        "device": (str, False),
        "threads": (int, False),
        "length_bucketing": (bool, False),
        "keep_checkpoints": (bool, False),
        "data_dir": (str, False),
        "max_bad_rows": (int, False),
        "lstm_embedding_dim": (int, False),
        "lstm_hidden_dim": (int, False),
    }

    def __post_init__(self):
        _coerce(self, self._KINDS)
        for name in ("run_name", "encoder", "data_dir"):
            if not getattr(self, name).strip():
                _fail(name, getattr(self, name), "a non-empty string")
        tasks = self.tasks
        if isinstance(tasks, str) or not isinstance(tasks, list | tuple) or not tasks:
            _fail("tasks", tasks, f"a non-empty list drawn from {', '.join(TASKS)}")
        for task in tasks:
            _check_choice("tasks", task, TASKS)
        if len(set(tasks)) != len(tasks):
            _fail("tasks", tasks, "each task at most once")
        # Canonical order, so that round robin is sst -> quora -> sts as in the paper.
        object.__setattr__(self, "tasks", tuple(t for t in TASKS if t in tasks))
        if not isinstance(self.smart, SmartConfig):
            _fail("smart", self.smart, "a SmartConfig (use TrainConfig.from_dict for mappings)")

        _check_choice("model", self.model, ("bert", "bilstm"))
        _check_choice("pooling", self.pooling, ("cls", "mean"))
        _check_choice("pair_encoding", self.pair_encoding, ("separate", "joint"))
        _check_choice("sts_head", self.sts_head, ("concat", "multiply", "difference", "cosine"))
        _check_choice("finetune", self.finetune, ("all", "last2", "last1", "none"))
        _check_choice("optimizer", self.optimizer, ("adam", "adamw"))
        _check_choice("schedule", self.schedule, ("cosine", "constant"))
        _check_choice(
            "task_schedule", self.task_schedule, ("round_robin", "interleaved", "proportional")
        )
        _check_choice("precision", self.precision, ("auto", "fp32", "bf16"))
        _check_choice("device", self.device, ("auto", "cpu", "cuda"))
        _check_range("dropout", self.dropout, 0.0, 1.0)
        _check_range("lr", self.lr, 0.0, None, low_open=True)
        _check_range("weight_decay", self.weight_decay, 0.0, None)
        for name in ("epochs", "batch_size", "eval_batch_size", "threads"):
            _check_range(name, getattr(self, name), 1, None)
        for name in ("lstm_embedding_dim", "lstm_hidden_dim"):
            _check_range(name, getattr(self, name), 1, None)
        _check_range("max_length", self.max_length, 8, None)
        _check_range("max_bad_rows", self.max_bad_rows, 0, None)
        for name in ("train_limit", "dev_limit"):
            if getattr(self, name) is not None:
                _check_range(name, getattr(self, name), 1, None)
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
