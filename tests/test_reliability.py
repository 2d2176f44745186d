"""Reliability (issue 7): kills, half-written files, corrupted checkpoints, bad input, safe loading.

The kill tests drive a real `python -m workflow_src.train` process with the tiny preset's
settings (grid.cell_settings, cell sst-epochs30: 3 epochs) through the fault-injection harness
tests/fault_injection/kill_resume.py, which also runs the 20-kill version by hand. Unit-level
checkpoint behaviour is in test_checkpoint.py, in-process resume in test_train.py,
corrupted/missing downloads and broken CSV rows in test_data.py; this module covers what only
a real kill, a real file on disk or a scan of the whole package can show.
"""

from __future__ import annotations

import ast
import copy
import importlib.util
import json
import logging
import os
import random
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, run_snakemake

PACKAGE = REPO_ROOT / "workflow_src"
SOURCES = sorted(PACKAGE.rglob("*.py"))  # every module, at any depth


def load_harness():
    spec = importlib.util.spec_from_file_location(
        "kill_resume", REPO_ROOT / "tests" / "fault_injection" / "kill_resume.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


kr = load_harness()


# ----------------------------------------------------------------------------- safe loading


def calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def dotted(node: ast.AST) -> str:
    """`torch.load` for torch.load(...), `AutoModel.from_pretrained` and so on."""
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    return "?"


def keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else "<expr>"
    return None


def test_loading_never_unpickles_anything_but_weights():
    """Every torch.load passes weights_only=True; no pickle-family module anywhere; models
    come from safetensors, or from a pytorch_model.bin read with weights_only=True (older hub
    uploads have nothing else); no remote code is trusted."""
    problems, torch_loads = [], 0
    for path in SOURCES:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                if name.split(".")[0] in {"pickle", "dill", "cloudpickle", "joblib", "shelve"}:
                    problems.append(f"{path.name}:{node.lineno} imports {name}")
        for call in calls(tree):
            name = dotted(call.func)
            where = f"{path.name}:{call.lineno} {name}"
            if name in {"torch.load", "load"} or name.endswith("serialization.load"):
                torch_loads += 1
                if keyword(call, "weights_only") is not True:
                    problems.append(f"{where} without weights_only=True")
            if name.endswith(".load") and keyword(call, "allow_pickle") is True:
                problems.append(f"{where} with allow_pickle=True")
            if keyword(call, "trust_remote_code") not in (None, False):
                problems.append(f"{where} trusts remote code")
            model_load = name.endswith("from_pretrained") and "Tokenizer" not in name
            safe = keyword(call, "use_safetensors") is True or keyword(call, "weights_only") is True
            if model_load and not safe:
                problems.append(
                    f"{where} may unpickle code from a .bin (use_safetensors=True, or "
                    "weights_only=True for pytorch_model.bin-only folders)"
                )
    assert problems == []
    assert torch_loads >= 1  # the scan sees checkpoint.load_latest's call: it is not vacuous


# ----------------------------------------------------------------------------- atomic outputs

# Functions allowed to write a file directly: each writes to a temporary name and renames it.
ATOMIC_WRITERS = {
    ("atomic.py", "write_bytes_atomic"),
    ("checkpoint.py", "save"),  # into a temporary folder, renamed as a whole
    ("report.py", "write_plots"),  # into a staging folder, renamed as a whole
    ("download.py", "write_staged"),  # into the private staging folder; publish() renames it
}
WRITE_CALLS = ("write_text", "write_bytes", "save_file", "torch.save", "savefig", "json.dump")


def test_every_file_write_in_the_package_goes_through_a_temp_file_and_rename():
    """A static guard: a new direct write to a final path fails here, naming the line."""
    direct = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), filename=str(path))
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef):
                continue
            if (path.name, func.name) in ATOMIC_WRITERS:
                continue
            for call in calls(func):
                name = dotted(call.func)
                opens_for_write = name in {"open", "os.fdopen"} and any(
                    isinstance(a, ast.Constant) and isinstance(a.value, str) and "w" in a.value
                    for a in [*call.args[1:2], *[k.value for k in call.keywords if k.arg == "mode"]]
                )
                is_write = opens_for_write or name.endswith(WRITE_CALLS)
                to_buffer = call.args and dotted(call.args[0]) in {"buffer", "io.BytesIO"}
                to_path = name.endswith(".to_csv") and (call.args or keyword(call, "path_or_buf"))
                if (is_write and not to_buffer) or to_path:
                    direct.append(f"{path.name}:{call.lineno} {func.name}() calls {name}")
    assert direct == []


@pytest.fixture(scope="module")
def kept_run(tmp_path_factory, shared_data):
    """One in-process epoch with keep_checkpoints=True, noting every os.replace it makes."""
    from workflow_src.spec.config import TrainConfig
    from workflow_src.train import loop as train

    settings = kr.tiny_settings(shared_data)
    settings.update(epochs=1, train_limit=16, dev_limit=8, keep_checkpoints=True)
    run_dir = tmp_path_factory.mktemp("kept")
    renamed = []
    real_replace = os.replace

    def spy(src, dst, *args, **kwargs):
        renamed.append((Path(src), Path(dst)))
        return real_replace(src, dst, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "replace", spy)
        metrics = train.run(TrainConfig.from_dict(settings), 1, run_dir)
    return {"dir": run_dir, "renamed": renamed, "settings": settings, "metrics": metrics}


def test_outputs_and_checkpoints_appear_only_by_rename(kept_run):
    """metrics.json, predictions.csv and the checkpoint folder each come into being through
    os.replace from a temporary name beside them; the kept checkpoint holds safetensors weights
    and a state that loads with weights_only=True."""
    import torch
    from safetensors import safe_open

    from workflow_src.train import record

    tmp_path, renamed = kept_run["dir"], kept_run["renamed"]
    by_target = {dst.relative_to(tmp_path).as_posix(): src for src, dst in renamed}
    for final in ("metrics.json", "predictions.csv", "checkpoint/epoch-0001"):
        assert final in by_target, f"{final} was not renamed into place"
        src = by_target[final]
        assert src.parent == (tmp_path / final).parent and src.name.startswith(".")
        assert src.name.endswith(".tmp") and not src.exists()
    folder = tmp_path / "checkpoint" / "epoch-0001"  # kept: keep_checkpoints=True
    assert sorted(p.name for p in folder.iterdir()) == [
        "SHA256SUMS",
        "state.pt",
        "weights.safetensors",
    ]
    with safe_open(folder / "weights.safetensors", framework="pt") as weights:
        assert len(list(weights.keys())) > 0
    state = torch.load(folder / "state.pt", weights_only=True)
    assert {"optimizer", "scheduler", "torch_rng", "epoch", "step", "settings", "seed"} <= set(
        state
    )
    assert state["epoch"] == 1 and json.loads(state["settings"])["keep_checkpoints"] is True
    assert state["code"] == record.code_version()


def test_a_checkpoint_from_other_code_is_not_resumed(kept_run, tmp_path, monkeypatch, caplog):
    """An edit to workflow_src between a kill and its rerun: start afresh, never mix versions."""
    from workflow_src.spec.config import TrainConfig
    from workflow_src.train import loop as train
    from workflow_src.train import record

    shutil.copytree(kept_run["dir"] / "checkpoint", tmp_path / "checkpoint")
    monkeypatch.setattr(record, "code_version", lambda: "edited")
    with caplog.at_level(logging.WARNING, logger="workflow_src.train.state"):
        metrics = train.run(TrainConfig.from_dict(kept_run["settings"]), 1, tmp_path)
    assert "written by other code" in caplog.text
    assert metrics["compute"]["resumed_from_epoch"] is None
    assert kr.fingerprint(metrics) == kr.fingerprint(kept_run["metrics"])


def test_downloads_appear_only_by_rename(tmp_path, shared_data, monkeypatch):
    from workflow_src.data import download as data

    config = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())["data"]
    files = {name: config["files"][name] for name in ("ids-sst-dev.csv", "sts-dev.csv")}
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(
        os, "replace", lambda s, d: (renamed.append(Path(d).name), real_replace(s, d))
    )
    data.fetch(tmp_path, files, config["base_url"], config["commit"], mirror=shared_data)
    assert sorted(renamed) == sorted([*files, data.PROVENANCE_FILE])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(renamed)  # no temp left


# ----------------------------------------------------------------------------- checkpoint units


def test_no_readable_checkpoint_means_a_fresh_start_with_a_warning(tmp_path, caplog):
    from workflow_src.train import checkpoint

    bad = tmp_path / "checkpoint" / "epoch-0001"
    bad.mkdir(parents=True)
    (bad / "weights.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}")
    (bad / "state.pt").write_bytes(b"PK")
    with caplog.at_level(logging.WARNING, logger="workflow_src.train.checkpoint"):
        assert checkpoint.load_latest(tmp_path) is None
    text = caplog.text
    assert "epoch-0001 unreadable" in text and "starts from scratch" in text


def test_a_kill_while_deleting_a_checkpoint_never_leaves_a_half_folder(tmp_path, monkeypatch):
    """Deletion renames first: a kill mid-delete leaves a hidden .tmp, never epoch-N half empty."""
    import torch

    from workflow_src.train import checkpoint

    checkpoint.save(tmp_path, 1, {"w": torch.ones(2)}, {"epoch": 1})

    def killed(path, ignore_errors=False):
        raise KeyboardInterrupt("kill during rmtree")

    monkeypatch.setattr(checkpoint.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.remove(tmp_path)
    monkeypatch.undo()
    assert not (tmp_path / "checkpoint").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # hidden leftover
    assert checkpoint.load_latest(tmp_path) is None
    assert list(tmp_path.iterdir()) == []  # cleared by the next start


# ----------------------------------------------------------------------------- bad input


def test_half_a_metrics_file_is_an_error_naming_it_and_nothing_earlier_is_lost(tmp_path):
    from tests.fake_runs import write_fake_runs
    from workflow_src.analysis import aggregate

    good, cut = write_fake_runs(tmp_path / "runs", cells={"sst-base"}, seeds=(1, 2))
    text = cut.read_text()
    cut.write_text(text[: len(text) // 2])
    with pytest.raises(aggregate.MetricsError, match=str(cut)):
        aggregate.load_runs([good, cut])

    out = tmp_path / "metrics.csv"
    out.write_text("earlier\n")
    names = ["--metrics-csv", str(out), "--summary-csv", str(tmp_path / "s.csv")]
    names += ["--epochs-csv", str(tmp_path / "e.csv")]
    assert aggregate.main(["--runs", str(good), str(cut), *names]) == 1
    assert out.read_text() == "earlier\n"  # the earlier table is untouched
    assert not (tmp_path / "s.csv").exists()


def test_a_string_learning_rate_is_refused_naming_the_key():
    from workflow_src.spec.config import TrainConfig

    with pytest.raises(ValueError, match=r"^lr='1e-5' is invalid: expected float"):
        TrainConfig.from_dict({"lr": "1e-5"})
    with pytest.raises(ValueError, match=r"smart\.steps|steps"):
        TrainConfig.from_dict({"smart": {"steps": "1"}})


def test_yaml_reads_1e_minus_5_as_text_and_snakemake_refuses_it(tmp_path):
    """PyYAML parses `lr: 1e-5` (no dot) as the string '1e-5': the schema stops the run."""
    config = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
    bad = copy.deepcopy(config)
    bad["grid"]["base"]["lr"] = "1e-5"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(bad))
    assert "lr: 1e-5\n" in path.read_text()  # written without quotes, as a person would
    assert yaml.safe_load(path.read_text())["grid"]["base"]["lr"] == "1e-5"
    result = run_snakemake("-n", "--configfile", str(path), timeout=120)
    assert result.returncode != 0
    assert "lr" in result.stderr + result.stdout and "1e-5" in result.stderr + result.stdout
    assert "Job stats" not in result.stdout


# ----------------------------------------------------------------------------- real kills


@pytest.fixture(scope="module")
def reference(tmp_path_factory, shared_data):
    """One uninterrupted run: what every killed-and-rerun run must reproduce."""
    work = tmp_path_factory.mktemp("kills")
    settings = kr.tiny_settings(shared_data)
    done = kr.reference_run(settings, work / "reference")
    return {"settings": settings, "dir": work / "reference", "work": work, **done}


@pytest.mark.slow
def test_uninterrupted_run_checkpoints_each_epoch_then_removes_them(reference):
    seen = reference["checkpoints_seen"]
    assert {"epoch-0001", "epoch-0002", "epoch-0003"} <= seen
    assert any(name.startswith(".epoch-") and name.endswith(".tmp") for name in seen)
    assert sorted(os.listdir(reference["dir"])) == ["metrics.json", "predictions.csv"]


@pytest.fixture(scope="module")
def kill_chain(reference):
    """Three kill -9s at different points of the same run folder, each followed by a rerun of
    the same command; the last rerun goes to the end.

    1. mid epoch 1, before any checkpoint        -> the rerun starts afresh
    2. after checkpoint 1, somewhere in epoch 2  -> the rerun resumes after epoch 1
    3. while checkpoint 2 is being written       -> the rerun resumes after epoch 1 again
    """
    settings, work = reference["settings"], reference["work"]
    run_dir = work / "chain"
    run_dir.mkdir()
    rng = random.Random(7)
    phases = [  # (name, (when the clock starts, random delay after it)), delays seeded
        ("mid-epoch-1", (kr.PHASES["mid-epoch-1"][0], (0.0, 0.5))),
        ("after-checkpoint-1", (kr.PHASES["after-checkpoint-1"][0], (0.0, 0.5))),
        ("checkpoint-write-2", (kr.PHASES["checkpoint-write-2"][0], (0.0, 0.0))),  # at once
    ]
    steps = []
    for number, (phase, spec) in enumerate(phases, 1):
        log = work / f"chain-{number}.log"
        kill = kr.kill_once(settings, run_dir, log, phase, rng, spec)
        complete = kr.complete_epochs_listed(kill.on_disk)
        steps.append(
            {
                "kill": kill,
                "log": log,
                "partial": kr.partial_files(run_dir, reference["dir"]),
                "expected": complete[-1] if complete else None,
            }
        )
        if complete == [1] and not (work / "epoch-0001").exists():
            shutil.copytree(run_dir / "checkpoint" / "epoch-0001", work / "epoch-0001")
    final_log = work / "chain-final.log"
    done = kr.run_to_end(settings, run_dir, final_log)
    logs = [s["log"] for s in steps[1:]] + [final_log]
    for step, next_log in zip(steps, logs, strict=True):
        step["next_log"] = next_log.read_text(errors="replace")
    return {"steps": steps, "dir": run_dir, "returncode": done["returncode"]}


@pytest.mark.slow
def test_each_kill_landed_at_a_different_point(kill_chain):
    landed = [step["kill"].landed for step in kill_chain["steps"]]
    assert all(step["kill"].killed for step in kill_chain["steps"]), landed
    assert landed[0] == "before the first checkpoint", landed
    assert landed[1] == "after checkpoint 1", landed
    assert landed[2] == "during checkpoint write (complete: [1])", landed


@pytest.mark.slow
def test_no_half_file_is_ever_visible_under_a_final_name(kill_chain):
    for step in kill_chain["steps"]:
        assert step["partial"] == [], step["kill"].landed
        assert "metrics.json" not in step["kill"].on_disk  # no result before success
        assert "predictions.csv" not in step["kill"].on_disk


@pytest.mark.slow
def test_each_rerun_resumes_from_the_newest_complete_checkpoint(kill_chain):
    for step in kill_chain["steps"]:
        if step["expected"] is None:
            assert "resumed after epoch" not in step["next_log"]
        else:
            assert f"resumed after epoch {step['expected']} " in step["next_log"]
        assert "unreadable" not in step["next_log"]  # the half-written folder was never tried


@pytest.mark.slow
def test_the_run_killed_three_times_ends_with_the_uninterrupted_results(kill_chain, reference):
    assert kill_chain["returncode"] == 0
    final, ref = kill_chain["dir"], reference["dir"]
    metrics = json.loads((final / "metrics.json").read_text())
    expected = json.loads((ref / "metrics.json").read_text())
    assert metrics["compute"]["resumed_from_epoch"] == 1
    assert kr.fingerprint(metrics) == kr.fingerprint(expected)
    assert (final / "predictions.csv").read_bytes() == (ref / "predictions.csv").read_bytes()
    assert sorted(os.listdir(final)) == ["metrics.json", "predictions.csv"]  # checkpoints gone


@pytest.mark.slow
def test_a_truncated_checkpoint_is_skipped_for_the_previous_good_one(kill_chain, reference):
    """epoch-0002's safetensors cut in half: a warning naming it, resume after epoch 1, and
    the same results as an uninterrupted run."""
    work = reference["work"]
    good = work / "epoch-0001"  # a real checkpoint the chain left after its second kill
    assert good.is_dir()
    run_dir = work / "truncated"
    shutil.copytree(good, run_dir / "checkpoint" / "epoch-0001")
    bad = run_dir / "checkpoint" / "epoch-0002"
    shutil.copytree(good, bad)
    weights = bad / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    log = work / "truncated.log"
    assert kr.run_to_end(reference["settings"], run_dir, log)["returncode"] == 0
    text = log.read_text(errors="replace")
    assert "epoch-0002 unreadable" in text and "resumed after epoch 1 " in text
    metrics = json.loads((run_dir / "metrics.json").read_text())
    expected = json.loads((reference["dir"] / "metrics.json").read_text())
    assert kr.fingerprint(metrics) == kr.fingerprint(expected)


@pytest.mark.slow
def test_snakemake_killed_mid_training_recovers_as_the_readme_says(tmp_path, shared_data):
    """kill -9 of Snakemake and its job after the first checkpoint: the rerun needs --unlock,
    then `--rerun-incomplete` resumes the job after epoch 1 and finishes it."""
    import signal
    import subprocess
    import time

    from tests.conftest import BIN, SHARED_DATA, copy_workflow

    copy_workflow(tmp_path)
    target = "results/runs/tiny/sst-epochs30/seed1/metrics.json"
    args = [target, "--cores", "1", "--config", "preset=tiny"]
    env = {**os.environ, "MTB_DATA_MIRROR": str(SHARED_DATA)}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    run_dir = tmp_path / target.rsplit("/", 1)[0]
    with open(tmp_path / "first.out", "w") as out:
        proc = subprocess.Popen(
            [str(BIN / "snakemake"), *args],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoint" / "epoch-0001").exists():
        assert proc.poll() is None, (tmp_path / "first.out").read_text()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and the training job with it
    proc.wait()
    assert not (run_dir / "metrics.json").exists()

    locked = run_snakemake(*args, cwd=tmp_path, timeout=120)
    assert locked.returncode != 0 and "--unlock" in locked.stderr + locked.stdout
    assert run_snakemake(*args, "--unlock", cwd=tmp_path, timeout=120).returncode == 0
    again = run_snakemake(*args, "--rerun-incomplete", cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    log = (tmp_path / "logs/train_cell/tiny/sst-epochs30/seed1.log").read_text()
    assert "resumed after epoch 1 " in log
    assert sorted(os.listdir(run_dir)) == ["metrics.json", "predictions.csv"]
