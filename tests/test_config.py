"""TrainConfig / SmartConfig: defaults are the paper's base, bad values are refused by name."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from workflow_src.spec.config import SmartConfig, TrainConfig


def test_defaults_are_the_paper_base_configuration():
    cfg = TrainConfig()
    assert (cfg.dropout, cfg.lr, cfg.finetune, cfg.epochs) == (0.5, 1e-5, "all", 10)
    assert (cfg.optimizer, cfg.schedule, cfg.pooling, cfg.pair_encoding) == (
        "adam",
        "cosine",
        "cls",
        "separate",
    )
    assert cfg.smart == SmartConfig()
    assert (cfg.smart.noise_std, cfg.smart.step_size, cfg.smart.epsilon) == (1e-5, 1e-3, 1e-5)
    assert (cfg.smart.beta_early, cfg.smart.beta_late, cfg.smart.beta_switch_fraction) == (
        0.99,
        0.999,
        0.1,
    )


def test_round_trip_through_json_gives_an_equal_config():
    cfg = TrainConfig(tasks=("sts", "sst"), smart=SmartConfig(enabled=True, weight=2.0))
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert asdict(again)["smart"]["weight"] == 2.0


def test_tasks_are_put_in_the_papers_round_robin_order():
    assert TrainConfig(tasks=("sts", "quora", "sst")).tasks == ("sst", "quora", "sts")
    assert TrainConfig.from_dict({"tasks": ["sts", "sst"]}).multitask


def test_ints_are_accepted_for_float_fields_and_stored_as_floats():
    cfg = TrainConfig.from_dict({"lr": 1, "smart": {"weight": 3}})
    assert isinstance(cfg.lr, float) and isinstance(cfg.smart.weight, float)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("dropout", 1.0),
        ("dropout", -0.1),
        ("lr", 0.0),
        ("epochs", 0),
        ("batch_size", 0),
        ("threads", 0),
        ("weight_decay", -1.0),
        ("model", "gpt"),
        ("pooling", "max"),
        ("finetune", "last3"),
        ("optimizer", "sgd"),
        ("schedule", "linear"),
        ("task_schedule", "random"),
        ("precision", "fp16"),
        ("device", "tpu"),
        ("sts_head", "dot"),
        ("tasks", ["sst", "mnli"]),
        ("tasks", []),
        ("tasks", "sst"),
        ("tasks", ["sst", "sst"]),
        ("train_limit", 0),
        ("epochs", "10"),  # wrong type
        ("epochs", 2.5),
        ("keep_checkpoints", "yes"),
        ("lr", float("nan")),
    ],
)
def test_bad_values_are_rejected_naming_the_field(key, value):
    with pytest.raises(ValueError, match=rf"\b{key}="):
        TrainConfig.from_dict({key: value})


@pytest.mark.parametrize(
    ("key", "value"),
    [("steps", 0), ("epsilon", -1e-5), ("beta_early", 1.0), ("enabled", 1), ("weight", "1")],
)
def test_bad_smart_values_are_rejected_naming_the_field(key, value):
    with pytest.raises(ValueError, match=rf"smart\.{key}=|\b{key}="):
        TrainConfig.from_dict({"smart": {key: value}})


def test_unknown_keys_are_rejected_by_name():
    with pytest.raises(ValueError, match="learning_rate"):
        TrainConfig.from_dict({"learning_rate": 1e-5})
    with pytest.raises(ValueError, match=r"smart\.lambda"):
        TrainConfig.from_dict({"smart": {"lambda": 1.0}})


def test_joint_encoding_refuses_sts_heads_that_need_two_embeddings():
    with pytest.raises(ValueError, match="sts_head="):
        TrainConfig(tasks=("sts",), pair_encoding="joint", sts_head="cosine")
    TrainConfig(tasks=("sst",), pair_encoding="joint", sts_head="cosine")  # no sts: irrelevant
    TrainConfig(tasks=("sts",), pair_encoding="joint", sts_head="concat")


def test_a_cell_with_nothing_to_train_is_refused():
    with pytest.raises(ValueError, match="sts_head="):
        TrainConfig(tasks=("sts",), finetune="none", sts_head="cosine")


def test_bilstm_has_no_layers_to_freeze():
    with pytest.raises(ValueError, match="finetune="):
        TrainConfig(model="bilstm", finetune="none")


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        TrainConfig().lr = 1.0  # type: ignore[misc]


def test_config_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, workflow_src.spec.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
