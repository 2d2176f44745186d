"""The training command end to end: schedules, determinism, resume, real data, the CLI."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tests.conftest import save_tiny_bert
from workflow_src.analysis import aggregate
from workflow_src.data import prepare
from workflow_src.spec.config import TrainConfig
from workflow_src.train import build, checkpoint
from workflow_src.train import loop as train
from workflow_src.train.curve import CurveSettings
from workflow_src.train.evaluate import evaluate

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real CS224N files (sst, sts; no quora-train) as published."""
    path = (REPO / ".." / "shared" / "data" / "cs224n").resolve()
    if not path.is_dir():
        pytest.skip(f"real data not found at {path}")
    return path


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory) -> str:
    """A 2-layer, 32-wide random BERT with the embedded model's tokenizer, saved as a folder."""
    return str(save_tiny_bert(tmp_path_factory.mktemp("tiny-bert")))


def tiny(encoder: str, data: Path, **overrides) -> TrainConfig:
    settings = {
        "run_name": "test",
        "preset": "tiny",
        "encoder": encoder,
        "data_dir": str(data),
        "tasks": ["sst", "sts"],
        "epochs": 2,
        "lr": 1e-3,
        "dropout": 0.1,
        "batch_size": 16,
        "max_length": 32,
        "train_limit": 48,
        "dev_limit": 40,
        "device": "cpu",
        **overrides,
    }
    return TrainConfig.from_dict(settings)


# ----------------------------------------------------------------------------- optimiser


@pytest.mark.parametrize("finetune", ["all", "last1", "none"])
def test_head_lr_puts_the_heads_in_their_own_group_and_every_trainable_weight_in_one(
    tiny_encoder, finetune
):
    cfg = TrainConfig.from_dict(
        {"encoder": tiny_encoder, "tasks": ["sst", "sts"], "lr": 1e-5, "head_lr": 1e-3,
         "finetune": finetune, "device": "cpu"}
    )  # fmt: skip
    model, _ = build.build_model(cfg)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    optimizer = build.make_optimizer(cfg, trainable, torch.device("cpu"))
    groups = {group["lr"]: {id(p) for p in group["params"]} for group in optimizer.param_groups}
    heads = {id(p) for n, p in trainable.items() if n.startswith("heads.")}
    assert groups[1e-3] == heads
    assert groups.get(1e-5, set()) == {id(p) for p in trainable.values()} - heads
    assert (1e-5 in groups) == (finetune != "none")  # a frozen encoder leaves no empty group
    plain = build.make_optimizer(replace(cfg, head_lr=None), trainable, torch.device("cpu"))
    assert [group["lr"] for group in plain.param_groups] == [1e-5]


def test_head_lr_must_be_positive_or_null():
    with pytest.raises(ValueError, match="head_lr"):
        TrainConfig.from_dict({"head_lr": 0.0})
    assert TrainConfig.from_dict({"head_lr": None}).head_lr is None


# ----------------------------------------------------------------------------- schedules


def test_round_robin_trains_all_sst_then_quora_then_sts():
    cfg = TrainConfig(tasks=("sts", "sst", "quora"), batch_size=4)
    lengths = {"sst": [5] * 10, "quora": [5] * 6, "sts": [5] * 3}
    plan = prepare.plan_epoch(cfg, lengths, seed=1, epoch=1)
    assert [u[0][0] for u in plan] == ["sst"] * 3 + ["quora"] * 2 + ["sts"]
    assert all(len(u) == 1 for u in plan)


def test_interleaved_takes_one_batch_of_each_remaining_task_per_update():
    cfg = TrainConfig(tasks=("sst", "sts"), batch_size=4, task_schedule="interleaved")
    plan = prepare.plan_epoch(cfg, {"sst": [5] * 10, "sts": [5] * 4}, 1, 1)
    assert [[t for t, _ in u] for u in plan] == [["sst", "sts"], ["sst"], ["sst"]]


@pytest.mark.parametrize("schedule", ["round_robin", "interleaved", "proportional"])
def test_every_schedule_sees_every_example_once_per_epoch(schedule):
    cfg = TrainConfig(tasks=("sst", "quora", "sts"), batch_size=4, task_schedule=schedule)
    lengths = {"sst": [3] * 21, "quora": [4] * 9, "sts": [5] * 5}
    plan = prepare.plan_epoch(cfg, lengths, 3, 2)
    for task, n in (("sst", 21), ("quora", 9), ("sts", 5)):
        assert sorted(i for u in plan for t, b in u if t == task for i in b) == list(range(n))
    assert plan == prepare.plan_epoch(cfg, lengths, 3, 2)


def test_proportional_mixes_tasks():
    cfg = TrainConfig(tasks=("sst", "sts"), batch_size=1, task_schedule="proportional")
    plan = prepare.plan_epoch(cfg, {"sst": [3] * 40, "sts": [3] * 40}, 1, 1)
    first_half = [u[0][0] for u in plan[:40]]
    assert 5 < first_half.count("sst") < 35


# ----------------------------------------------------------------------------- data


def test_single_task_quora_is_sampled_down_to_the_sst_size(prepared_data):
    cfg = TrainConfig(tasks=("quora",), data_dir=str(prepared_data))
    _, _, info = prepare.load_data(cfg)
    sst_train = prepare.load_data(TrainConfig(tasks=("sst",), data_dir=str(prepared_data)))[2]
    assert info["train_examples"]["quora"] == sst_train["train_examples"]["sst"] == 8544
    assert info["quora_train_standin"] is True
    assert info["skipped_rows"]["quora/train"] == 1  # quora-dev line 2577 sits in the stand-in
    full = prepare.load_data(
        TrainConfig(tasks=("quora",), data_dir=str(prepared_data), downsample_quora_to_sst=False)
    )
    assert full[2]["train_examples"]["quora"] == 13999
    multi = prepare.load_data(TrainConfig(tasks=("sst", "quora"), data_dir=str(prepared_data)))
    assert multi[2]["train_examples"]["quora"] == 13999  # multi-task keeps all of Quora (5.3)


# ----------------------------------------------------------------------------- runs


def read_predictions(path: Path) -> list[list[str]]:
    with path.open() as handle:
        return list(csv.reader(handle))


def test_cli_tensorboard_flag_gives_live_curves_per_epoch_and_the_same_metrics(
    tmp_path, tiny_encoder, prepared_data
):
    """`--tensorboard 1` (config.yaml tracking: tensorboard) adds curves, changes no result."""
    from tests.test_tracking import scalars

    cfg = tiny(tiny_encoder, prepared_data, tasks=["sst"], epochs=2, train_limit=16, dev_limit=16)
    settings = json.dumps(cfg.to_dict())
    for flag, run_dir in (("0", tmp_path / "plain"), ("1", tmp_path / "tracked")):
        code = train.main(
            ["--settings-json", settings, "--seed", "1", "--run-dir", str(run_dir),
             "--tensorboard", flag]
        )  # fmt: skip
        assert code == 0
    assert not (tmp_path / "plain" / "tensorboard").exists()
    curves = scalars(tmp_path / "tracked" / "tensorboard")
    assert [step for step, _ in curves["dev/sst/accuracy"]] == [1, 2]
    plain = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    tracked = json.loads((tmp_path / "tracked" / "metrics.json").read_text())
    assert plain["epochs"][-1]["dev"] == tracked["epochs"][-1]["dev"]
    assert [v for _, v in curves["dev/sst/accuracy"]] == pytest.approx(
        [e["dev"]["sst"]["accuracy"] for e in tracked["epochs"]]
    )


def test_run_writes_metrics_and_predictions_in_the_agreed_shape(
    tmp_path, tiny_encoder, prepared_data
):
    cfg = tiny(tiny_encoder, prepared_data, tasks=["sst", "quora", "sts"], epochs=1)
    metrics = train.run(cfg, 1, tmp_path)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == metrics
    assert set(on_disk) == {
        "run",
        "settings",
        "final",
        "best",
        "best_epoch",
        "epochs",
        "data",
        "compute",
        "provenance",
        "smart",
    }
    assert on_disk["run"] == {
        "cell": "test",
        "preset": "tiny",
        "seed": 1,
        "tasks": ["sst", "quora", "sts"],
        "model": "bert",
        "encoder": tiny_encoder,
    }
    assert set(on_disk["final"]["sst"]) == {"accuracy", "macro_f1"}
    assert set(on_disk["final"]["quora"]) == {"accuracy", "f1"}
    assert set(on_disk["final"]["sts"]) == {"pearson", "spearman"}
    assert on_disk["settings"] == cfg.to_dict()
    assert on_disk["smart"] == cfg.to_dict()["smart"]
    assert on_disk["data"]["quora_train_standin"] is True
    assert on_disk["data"]["train_examples"] == {"sst": 48, "quora": 48, "sts": 48}
    assert set(on_disk["compute"]) >= set(aggregate.COMPUTE_FIELDS)  # what metrics.csv copies
    assert (
        on_disk["compute"]["device"] == "cpu" and on_disk["compute"]["resumed_from_epoch"] is None
    )
    assert set(on_disk["provenance"]["versions"]) == {"torch", "transformers", "python"}
    assert on_disk["epochs"][0]["epoch"] == 1 and set(on_disk["epochs"][0]["train_loss"]) == {
        "sst",
        "quora",
        "sts",
    }
    rows = read_predictions(tmp_path / "predictions.csv")
    assert rows[0] == ["task", "id", "prediction", "gold"]
    assert len(rows) == 1 + 3 * 40
    assert not (tmp_path / "checkpoint").exists()  # removed after success
    assert not list(tmp_path.glob("*.tmp"))


def recomputed_metrics(path: Path) -> dict:
    """Each task's dev metrics from a predictions.csv alone."""
    from workflow_src.analysis.metrics import task_metrics

    rows = read_predictions(path)[1:]
    out = {}
    for task in dict.fromkeys(row[0] for row in rows):
        pairs = [(row[2], row[3]) for row in rows if row[0] == task]
        cast = int if task == "sst" else float
        out[task] = task_metrics(task, [cast(p) for p, _ in pairs], [cast(g) for _, g in pairs])
    return out


def test_a_multitask_run_reports_every_task_from_one_best_epoch_with_its_predictions(
    tmp_path, tiny_encoder, data_dir
):
    """The best epoch has the best mean of the tasks' primary metrics; `best` is that epoch's
    dev metrics for every task, and predictions.csv reproduces them exactly."""
    from workflow_src.analysis.metrics import selection_score

    cfg = tiny(tiny_encoder, data_dir, epochs=3, lr=3e-3)
    metrics = train.run(cfg, 2, tmp_path)
    scores = [selection_score(e["dev"]) for e in metrics["epochs"]]
    assert metrics["best_epoch"] == 1 + scores.index(max(scores))
    assert metrics["best"] == metrics["epochs"][metrics["best_epoch"] - 1]["dev"]
    assert recomputed_metrics(tmp_path / "predictions.csv") == metrics["best"]
    assert not (tmp_path / "best.safetensors").exists()  # keep_best is off by default


def test_keep_best_keeps_the_best_epochs_weights(tmp_path, tiny_encoder, data_dir):
    """best.safetensors holds the whole model at the best epoch: loaded into a fresh model it
    gives the predictions in predictions.csv."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    cfg = tiny(tiny_encoder, data_dir, epochs=2, tasks=["sts"], keep_best=True)
    metrics = train.run(cfg, 1, tmp_path)
    path = tmp_path / "best.safetensors"
    with safe_open(str(path), "pt") as handle:
        assert handle.metadata()["epoch"] == str(metrics["best_epoch"])
    torch.manual_seed(99)  # other heads: the file must supply every weight
    model, tokenizer = build.build_model(cfg)
    model.load_state_dict(load_file(path))
    examples = prepare.load_data(cfg)[1]
    _, predictions = evaluate(
        model, prepare.tokenize(cfg, tokenizer, examples), cfg, torch.device("cpu"), 0
    )
    on_disk = [float(row[2]) for row in read_predictions(tmp_path / "predictions.csv")[1:]]
    assert predictions["sts"] == pytest.approx(on_disk, abs=1e-6)


def test_a_smart_run_records_the_perturbation_per_epoch(tmp_path, tiny_encoder, data_dir):
    cfg = tiny(tiny_encoder, data_dir, epochs=1, tasks=["sst"], smart={"enabled": True})
    (epoch,) = train.run(cfg, 1, tmp_path)["epochs"]
    assert set(epoch["smart"]) == {"adv_loss", "delta_inf", "embed_abs_mean"}
    assert epoch["smart"]["adv_loss"] > 0
    assert 0.9 < epoch["smart"]["delta_inf"] <= 1.0  # the default form: unit inf-norm per token
    assert epoch["smart"]["embed_abs_mean"] > 0
    plain = train.run(tiny(tiny_encoder, data_dir, epochs=1, tasks=["sst"]), 1, tmp_path / "p")
    assert "smart" not in plain["epochs"][0]


def test_two_runs_with_one_seed_give_identical_metrics(tmp_path, tiny_encoder, data_dir):
    cfg = tiny(
        tiny_encoder, data_dir, epochs=1, smart={"enabled": True}, task_schedule="interleaved"
    )
    a = train.run(cfg, 7, tmp_path / "a")
    b = train.run(cfg, 7, tmp_path / "b")
    assert a["final"] == b["final"] and a["epochs"][0]["train_loss"] == b["epochs"][0]["train_loss"]
    assert read_predictions(tmp_path / "a/predictions.csv") == read_predictions(
        tmp_path / "b/predictions.csv"
    )
    c = train.run(cfg, 8, tmp_path / "c")
    assert c["epochs"][0]["train_loss"] != a["epochs"][0]["train_loss"]


def test_resume_after_a_kill_gives_the_metrics_of_an_uninterrupted_run(
    tmp_path, tiny_encoder, data_dir, monkeypatch
):
    cfg = tiny(tiny_encoder, data_dir, epochs=3, smart={"enabled": True})
    curve = CurveSettings(points=2, dev_rows=8)  # within-epoch points survive the kill too
    whole = train.run(cfg, 3, tmp_path / "whole", curve=curve)

    real_save = checkpoint.save

    def save_then_die(run_dir, epoch, tensors, state):
        path = real_save(run_dir, epoch, tensors, state)
        if epoch == 2:
            raise KeyboardInterrupt("simulated kill after epoch 2's checkpoint")
        return path

    monkeypatch.setattr(checkpoint, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train.run(cfg, 3, tmp_path / "killed", curve=curve)
    assert not (tmp_path / "killed" / "metrics.json").exists()
    assert [e for e, _ in checkpoint.epoch_dirs(tmp_path / "killed")] == [1, 2]  # previous kept
    monkeypatch.setattr(checkpoint, "save", real_save)

    resumed = train.run(cfg, 3, tmp_path / "killed", curve=curve)
    assert resumed["compute"]["resumed_from_epoch"] == 2
    assert resumed["final"] == whole["final"] and resumed["curve"] == whole["curve"]
    assert [e["train_loss"] for e in resumed["epochs"]] == [
        e["train_loss"] for e in whole["epochs"]
    ]
    assert [e["dev"] for e in resumed["epochs"]] == [e["dev"] for e in whole["epochs"]]
    assert [e["smart"] for e in resumed["epochs"]] == [e["smart"] for e in whole["epochs"]]
    assert resumed["best_epoch"] == whole["best_epoch"] and resumed["best"] == whole["best"]
    assert read_predictions(tmp_path / "whole/predictions.csv") == read_predictions(
        tmp_path / "killed/predictions.csv"
    )
    assert not (tmp_path / "killed" / "checkpoint").exists()


def test_a_checkpoint_for_other_settings_is_not_resumed(tmp_path, tiny_encoder, data_dir):
    train.run(tiny(tiny_encoder, data_dir, epochs=1, keep_checkpoints=True), 1, tmp_path)
    other = train.run(tiny(tiny_encoder, data_dir, epochs=1, lr=5e-4), 1, tmp_path)
    assert other["compute"]["resumed_from_epoch"] is None


def test_bilstm_and_frozen_encoder_go_through_the_same_loop(tmp_path, tiny_encoder, data_dir):
    lstm = train.run(
        tiny(
            tiny_encoder,
            data_dir,
            epochs=1,
            model="bilstm",
            pair_encoding="joint",
            lstm_embedding_dim=16,
            lstm_hidden_dim=8,
        ),
        1,
        tmp_path / "lstm",
    )
    assert lstm["run"]["model"] == "bilstm" and set(lstm["final"]) == {"sst", "sts"}
    frozen = train.run(
        tiny(tiny_encoder, data_dir, epochs=1, finetune="none", sts_head="multiply", tasks=["sts"]),
        1,
        tmp_path / "frozen",
    )
    assert set(frozen["final"]) == {"sts"}


def test_short_run_with_the_embedded_encoder_lowers_the_training_loss(tmp_path, data_dir):
    cfg = TrainConfig.from_dict(
        {
            "run_name": "embedded-short",
            "encoder": "embedded",
            "data_dir": str(data_dir),
            "tasks": ["sst", "sts"],
            "epochs": 3,
            "lr": 1e-4,
            "dropout": 0.1,
            "batch_size": 16,
            "max_length": 32,
            "train_limit": 48,
            "dev_limit": 32,
            "schedule": "constant",
            "device": "cpu",
            "threads": 1,  # no oversubscription on a shared 2-core runner
        }
    )
    metrics = train.run(cfg, 1, tmp_path)
    first, last = metrics["epochs"][0]["train_loss"], metrics["epochs"][-1]["train_loss"]
    assert last["sst"] < first["sst"] and last["sts"] < first["sts"]


# ----------------------------------------------------------------------------- command line


def test_cli_help_is_fast_and_does_not_load_torch():
    start = time.perf_counter()
    code = "import sys; from workflow_src.train.loop import main; sys.argv=['x','--help']\ntry: main()\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "--settings-json" in out.stdout and out.stdout.strip().endswith("False")
    assert time.perf_counter() - start < 10


def test_cli_refuses_bad_settings_naming_the_field(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "workflow_src.train",
            "--settings-json",
            '{"dropout": 1.5}',
            "--seed",
            "1",
            "--run-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2 and "dropout=1.5" in out.stderr


def test_cli_trains_from_a_settings_file(tmp_path, tiny_encoder, data_dir):
    settings = tiny(tiny_encoder, data_dir, epochs=1, tasks=["sst"]).to_dict()
    (tmp_path / "cell.json").write_text(json.dumps(settings))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "workflow_src.train",
            "--settings",
            str(tmp_path / "cell.json"),
            "--seed",
            "2",
            "--run-dir",
            str(tmp_path / "run"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["run"]["seed"] == 2
    assert "epoch 1" in out.stderr
