"""config.yaml is checked against schemas/config.schema.yaml before any job runs."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from tests.conftest import REPO_ROOT, run_snakemake
from workflow_src.spec.schema import ConfigError, validate_config

SCHEMA = str(REPO_ROOT / "schemas" / "config.schema.yaml")
CONFIG = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())


def keys(path: str | tuple) -> list[str]:
    return list(path) if isinstance(path, tuple) else path.split(".")


def setting(path: str | tuple, value):
    """A mutation that sets config[path] (dotted, or a tuple of keys) to value."""

    def mutate(config: dict) -> None:
        *parents, last = keys(path)
        node = config
        for key in parents:
            node = node[key]
        node[last] = value

    return mutate


def removal(path: str | tuple):
    def mutate(config: dict) -> None:
        *parents, last = keys(path)
        node = config
        for key in parents:
            node = node[key]
        del node[last]

    return mutate


# (mutation, text the error must contain: the offending key or value)
BAD_VALUES = {
    "negative learning rate": (setting("grid.base.lr", -1e-5), "lr"),
    "zero learning rate": (setting("grid.base.lr", 0), "lr"),
    "dropout above one": (setting("grid.base.dropout", 1.5), "dropout"),
    "dropout as text": (setting("grid.base.dropout", "half"), "dropout"),
    "misspelled base key": (setting("grid.base.dropuot", 0.1), "dropuot"),
    "misspelled top-level key": (setting("presset", "quick"), "presset"),
    "unknown task": (setting("grid.tasks", ["sst", "nli"]), "tasks"),
    "repeated task": (setting("grid.tasks", ["sst", "sst"]), "tasks"),
    "unknown finetune mode": (setting("grid.base.finetune", "half"), "finetune"),
    "unknown optimiser": (setting("grid.base.optimizer", "sgd"), "optimizer"),
    "unknown schedule": (setting("grid.base.schedule", "linear"), "schedule"),
    "unknown STS head": (setting("grid.sts_head", ["concat", "bilinear"]), "sts_head"),
    "zero epochs": (setting("grid.base.epochs", 0), "epochs"),
    "fractional epochs": (setting("grid.epochs", [10, 20.5]), "epochs"),
    "dropout sweep out of range": (setting("grid.dropout", [0.1, -0.3]), "dropout"),
    "lr sweep empty": (setting("grid.lr", []), "lr"),
    "negative weight decay": (setting("grid.adamw_weight_decay", -0.1), "adamw_weight_decay"),
    "bilstm batch zero": (setting("grid.bilstm.batch_size", 0), "batch_size"),
    "unknown bilstm key": (setting("grid.bilstm.layers", 3), "layers"),
    "unknown task schedule": (setting("grid.multitask.task_schedule", "random"), "task_schedule"),
    "SMART epsilon zero": (setting("grid.multitask.smart.epsilon", 0), "epsilon"),
    "SMART steps as text": (setting("grid.multitask.smart.steps", "one"), "steps"),
    "SMART unknown key": (setting("grid.multitask.smart.alpha", 1), "alpha"),
    "SMART unknown perturbation": (
        setting("grid.multitask.smart.perturbation", "l2"),
        "perturbation",
    ),
    "tuned multi-task head unknown": (setting("grid.multitask.tuned.sts_head", "dot"), "sts_head"),
    "keep_best as text": (setting("presets.paper.keep_best", "yes"), "keep_best"),
    "preset epoch scale zero": (setting("presets.quick.epoch_scale", 0), "epoch_scale"),
    "preset unknown device": (setting("presets.quick.device", "tpu"), "device"),
    "preset seeds not a list": (setting("presets.quick.seeds", 3), "seeds"),
    "preset seeds empty": (setting("presets.quick.seeds", []), "seeds"),
    "preset negative train limit": (setting("presets.quick.train_limit", -5), "train_limit"),
    "preset max length too small": (setting("presets.quick.max_length", 2), "max_length"),
    "preset threads zero": (setting("presets.quick.threads", 0), "threads"),
    "preset missing resources": (removal("presets.quick.resources"), "resources"),
    "preset negative gpu": (setting("presets.quick.resources.gpu", -1), "gpu"),
    "preset unknown resource": (setting("presets.quick.resources.disk_mb", 10), "disk_mb"),
    "preset missing encoder": (removal("presets.paper.encoder"), "encoder"),
    "preset name with spaces": (
        setting("presets.my preset", CONFIG["presets"]["quick"]),
        "my preset",
    ),
    "preset named like the runs folder": (
        setting("presets.runs", CONFIG["presets"]["quick"]),
        "runs",
    ),
    "preset in force named benchmarks": (setting("preset", "benchmarks"), "benchmarks"),
    "short commit id": (setting("data.commit", "f25cd95"), "commit"),
    "blob id not hex": (setting(("data", "files", "sts-dev.csv"), "z" * 40), "sts-dev.csv"),
    "unknown data file": (setting(("data", "files", "notes.txt"), "0" * 40), "notes.txt"),
    "base url not a URL": (setting("data.base_url", "github.com/x"), "base_url"),
    "negative bad-row bound": (setting("data.max_bad_rows", -1), "max_bad_rows"),
    "missing grid": (removal("grid"), "grid"),
}

# Issue 26: every path-valued key is restricted to characters no shell, Snakemake pattern or
# option parser reads as syntax; a hub id stays a name (models/<id> inside models/).
HOSTILE = ["/runs$(touch$IFS.pwned)", "a;b", "a b", "`id`", "a|b", "a&b", "-rf", "a'b", 'a"b',
           "{input}", "a*", "a\nb"]  # fmt: skip
PATH_KEYS = [("runs_from",), ("data", "mirror"), ("hub", "mirror"), ("presets", "quick", "encoder")]


@pytest.mark.parametrize("key", PATH_KEYS, ids=".".join)
@pytest.mark.parametrize("value", HOSTILE)
def test_a_path_valued_key_refuses_shell_syntax(key, value):
    config = copy.deepcopy(CONFIG)
    setting(key, value)(config)
    with pytest.raises(ConfigError, match=rf"config key '{re.escape('.'.join(key))}'"):
        validate_config(config, SCHEMA)


@pytest.mark.parametrize("value", ["reference/cpu/runs", "/data/runs-2024_v1.2", "~/mirror", ""])
def test_a_path_valued_key_takes_an_ordinary_path(value):
    config = copy.deepcopy(CONFIG)
    setting("runs_from", value)(config)
    setting("data.mirror", value)(config)
    validate_config(config, SCHEMA)


@pytest.mark.parametrize("name", ["a/../../../escape_target", "../x", "/abs", "a/b/c", ".x"])
def test_a_hub_name_outside_models_is_refused(name):
    config = copy.deepcopy(CONFIG)
    config["hub"]["revisions"][name] = "0" * 40
    with pytest.raises(ConfigError, match=r"config key 'hub\.revisions'"):
        validate_config(config, SCHEMA)


def test_an_unknown_key_is_one_line_naming_it_not_the_schema():
    config = copy.deepcopy(CONFIG)
    config["grid"]["base"]["dropuot"] = 0.1
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    message = str(error.value)
    assert message.startswith("unknown config key 'grid.base.dropuot' (known keys here: ")
    assert "\n" not in message and len(message) < 600


def test_shipped_config_is_valid():
    validate(copy.deepcopy(CONFIG), SCHEMA)


def test_every_key_is_documented_with_default_and_bounds():
    """Every key has a description; each leaf a default and an enum or bounds."""
    schema = yaml.safe_load(Path(SCHEMA).read_text())
    defs = schema["$defs"]
    bounded = (
        "enum",
        "minimum",
        "exclusiveMinimum",
        "pattern",
        "minItems",
        "minLength",
        "maxLength",
        "propertyNames",
    )
    missing = []

    def walk(node: dict, path: str) -> None:
        for key, prop in node.get("properties", {}).items():
            where = f"{path}.{key}".lstrip(".")
            resolved = {**defs[prop["$ref"].split("/")[-1]], **prop} if "$ref" in prop else prop
            if "description" not in resolved:
                missing.append(f"{where}: description")
            if "default" not in resolved and resolved.get("type") != "object":
                missing.append(f"{where}: default")
            if resolved.get("type") == "object" and "properties" in resolved:
                assert resolved.get("additionalProperties") is False, (
                    f"{where} accepts unknown keys"
                )
                walk(resolved, where)
            elif resolved.get("type") == "object":  # a map: its keys must be constrained
                assert "propertyNames" in resolved, f"{where} accepts any key"
            elif resolved.get("type") != "boolean" and not any(
                k in resolved or k in resolved.get("items", {}) for k in bounded
            ):
                items = resolved.get("items", {})
                if "$ref" not in items:
                    missing.append(f"{where}: bounds or enum")

    walk(schema, "")
    walk(defs["preset"], "presets.<name>")
    assert missing == []


def schema_enums() -> dict[str, list[tuple]]:
    """Property name -> the enum of each property of that name anywhere in the schema ($refs
    followed; an array's enum is its items')."""
    schema = yaml.safe_load(Path(SCHEMA).read_text())
    defs = schema["$defs"]

    def resolve(node: dict) -> dict:
        return {**defs[node["$ref"].split("/")[-1]], **node} if "$ref" in node else node

    found: dict[str, list[tuple]] = {}

    def walk(node: dict) -> None:
        for key, prop in node.get("properties", {}).items():
            prop = resolve(prop)
            enum = prop.get("enum") or resolve(prop.get("items", {})).get("enum")
            if enum:
                found.setdefault(key, []).append(tuple(enum))
            walk(prop)

    walk(schema)
    for node in defs.values():
        walk(node)
    return found


def test_schema_enums_are_the_choices_trainconfig_declares():
    """Each setting's allowed values are declared once, beside its TrainConfig (or SmartConfig)
    field; the schema's enum of the same key must list the same values, in the same order."""
    from workflow_src.spec.config import SmartConfig, TrainConfig, declared_choices

    declared = {**declared_choices(TrainConfig), **declared_choices(SmartConfig)}
    enums = schema_enums()
    for name in set(enums) & set(declared):
        for enum in enums[name]:
            assert enum == tuple(declared[name]), f"schema {name} {enum} != {declared[name]}"
    # model is no config key: grid.build_cells sets it for the BiLSTM cells
    assert set(declared) - set(enums) == {"model"}


@pytest.mark.parametrize("case", list(BAD_VALUES), ids=list(BAD_VALUES))
def test_bad_value_is_rejected_naming_the_key(case):
    mutate, named = BAD_VALUES[case]
    config = copy.deepcopy(CONFIG)
    mutate(config)
    with pytest.raises(WorkflowError) as error:
        validate(config, SCHEMA)
    assert named in str(error.value)


def test_at_least_25_bad_values_are_covered():
    assert len(BAD_VALUES) >= 25


@pytest.mark.parametrize(
    ("override", "named"),
    [
        (["preset=huge"], "'preset': 'huge' is not one of the presets"),
        (["grid={'base': {'lr': -1}}"], "lr"),
        (["presset=quick"], "unknown config key 'presset'"),
    ],
)
def test_snakemake_stops_before_any_job_on_a_bad_value(override, named):
    """The whole workflow refuses to start: nothing is scheduled, the key is named, and the
    schema is not printed (issue 26: 1,493 lines of it came before the useful line)."""
    result = run_snakemake("-n", "--config", *override)
    assert result.returncode != 0
    assert named in result.stderr + result.stdout
    assert "Job stats" not in result.stdout
    assert "Failed validating" not in result.stderr + result.stdout
    assert len((result.stderr + result.stdout).splitlines()) < 30


def test_schema_data_files_are_the_files_tasks_py_reads():
    """The files the schema accepts under data.files are the tasks' train and dev files."""
    from workflow_src.spec.tasks import SPLIT_FILES

    schema = yaml.safe_load(Path(SCHEMA).read_text())
    accepted = schema["properties"]["data"]["properties"]["files"]["propertyNames"]["enum"]
    assert sorted(accepted) == sorted(SPLIT_FILES.values())
