"""Hub encoders fetched once into the project and loaded offline (workflow_src/data/encoders.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, copy_workflow, run_snakemake, save_tiny_bert
from workflow_src.data import encoders

REVISION = "0123456789abcdef0123456789abcdef01234567"
NAME = "tiny-org/tiny-bert"


@pytest.fixture(scope="module")
def hub_mirror(tmp_path_factory) -> Path:
    """A local folder standing in for the hub: <mirror>/tiny-org/tiny-bert/, weights as
    pytorch_model.bin only (as older uploads such as bert-base-uncased's first ones)."""
    mirror = tmp_path_factory.mktemp("hub")
    save_tiny_bert(mirror / NAME, safetensors=False)
    (mirror / NAME / "tf_model.h5").write_bytes(b"not fetched: another framework's weights")
    return mirror


def test_fetch_from_a_mirror_writes_a_complete_folder_and_its_provenance(hub_mirror, tmp_path):
    dest = tmp_path / "models" / NAME
    provenance = encoders.fetch(NAME, REVISION, dest, mirror=hub_mirror)
    assert encoders.missing_parts(dest) == []
    assert not (dest / "tf_model.h5").exists()
    written = json.loads((dest / encoders.PROVENANCE_FILE).read_text())
    assert written == provenance
    assert written["name"] == NAME and written["revision"] == REVISION
    assert set(written["files"]) >= {"config.json", "pytorch_model.bin", "tokenizer.json"}
    assert written["files"]["config.json"]["sha256"] == encoders.sha256(dest / "config.json")
    assert [p.name for p in tmp_path.joinpath("models", "tiny-org").iterdir()] == ["tiny-bert"]


def test_hub_fetch_asks_for_the_pinned_revision_and_falls_back_to_pytorch_model_bin(
    hub_mirror, tmp_path
):
    """snapshot_download is called with the pinned revision; safetensors are asked for first,
    pytorch_model.bin only when the revision has none."""
    calls = []

    def fake_snapshot_download(repo_id, *, revision, local_dir, allow_patterns):
        calls.append((repo_id, revision, tuple(allow_patterns)))
        for path in (hub_mirror / repo_id).iterdir():
            if any(Path(path.name).match(p) for p in allow_patterns):
                shutil.copy2(path, Path(local_dir) / path.name)
        (Path(local_dir) / ".cache").mkdir(exist_ok=True)  # the hub client's bookkeeping

    dest = tmp_path / "bert"
    provenance = encoders.fetch(NAME, REVISION, dest, download=fake_snapshot_download)
    assert {revision for _, revision, _ in calls} == {REVISION}
    assert [patterns for *_, patterns in calls][1:] == [
        tuple(encoders.SAFETENSORS_PATTERNS),
        tuple(encoders.LEGACY_PATTERNS),
    ]
    assert provenance["source"] == f"https://huggingface.co/{NAME}/tree/{REVISION}"
    assert (dest / "pytorch_model.bin").exists() and not (dest / ".cache").exists()


def test_an_incomplete_source_fails_and_leaves_no_folder(hub_mirror, tmp_path):
    broken = tmp_path / "mirror"
    shutil.copytree(hub_mirror, broken)
    (broken / NAME / "pytorch_model.bin").unlink()
    dest = tmp_path / "models" / NAME
    with pytest.raises(encoders.EncoderError, match=r"incomplete: no weights"):
        encoders.fetch(NAME, REVISION, dest, mirror=broken)
    assert not dest.exists()


@pytest.mark.parametrize(
    ("remove", "named"),
    [
        ("config.json", "no config.json"),
        ("pytorch_model.bin", "no weights (model.safetensors or pytorch_model.bin)"),
        ("tokenizer.json", "no tokenizer files"),
    ],
)
def test_incomplete_folder_is_refused_naming_folder_and_part(hub_mirror, tmp_path, remove, named):
    folder = tmp_path / "bert"
    shutil.copytree(hub_mirror / NAME, folder)
    (folder / remove).unlink()
    with pytest.raises(encoders.EncoderError) as error:
        encoders.check_model_folder(folder)
    assert f"model folder {folder} is incomplete" in str(error.value)
    assert named in str(error.value)


def test_job_encoder_fetches_hub_names_only_and_refuses_unpinned_ones(hub_mirror):
    revisions = {"bert-base-uncased": REVISION}
    assert encoders.job_encoder("embedded", revisions) == ("embedded", None)
    assert encoders.job_encoder("bert-base-uncased", revisions) == (
        "models/bert-base-uncased",
        "bert-base-uncased",
    )
    local = str(hub_mirror / NAME)
    assert encoders.job_encoder(local, revisions) == (local, None)
    with pytest.raises(encoders.EncoderError, match="without a pinned revision"):
        encoders.job_encoder("roberta-base", revisions)
    with pytest.raises(encoders.EncoderError, match=r"model folder \./no/such/folder is missing"):
        encoders.job_encoder("./no/such/folder", revisions)


@pytest.mark.parametrize(
    "name", ["a/../../../escape_target", "org/../../x", ".hidden", "a/b/c", "a b"]
)
def test_a_hub_name_that_would_leave_models_is_refused(name):
    """Issue 26: `a/../../../escape_target` resolved its fetch destination outside the
    repository; a hub id is `name` or `organisation/name`, nothing else, pinned or not."""
    with pytest.raises(encoders.EncoderError, match="is not a Hugging Face Hub model id"):
        encoders.job_encoder(name, {name: REVISION})


def test_an_offline_hub_fetch_keeps_the_mirror_hint(tmp_path, monkeypatch, caplog):
    """The hub's offline errors are OSErrors: they must still reach the branch that tells the
    user about MTB_HUB_MIRROR, not stop at a bare `ConnectError`."""

    class ConnectError(OSError):  # what huggingface_hub raises offline derives from OSError
        pass

    def offline(*args, **kwargs):
        raise ConnectError("[Errno 101] Network is unreachable")

    monkeypatch.delenv(encoders.MIRROR_ENV, raising=False)
    monkeypatch.setattr("huggingface_hub.snapshot_download", offline)
    code = encoders.main(
        ["fetch", "--name", "bert-base-uncased", "--revision", REVISION, "--dest",
         str(tmp_path / "models/bert-base-uncased")]
    )  # fmt: skip
    assert code == 1
    assert "fetch from the Hugging Face Hub failed: ConnectError: [Errno 101]" in caplog.text
    assert f"set {encoders.MIRROR_ENV}=<mirror>" in caplog.text
    assert not (tmp_path / "models/bert-base-uncased").exists()


def test_training_job_loads_the_folder_with_the_hub_switched_off(
    hub_mirror, prepared_data, tmp_path
):
    """What a compute node without internet does: HF_HUB_OFFLINE=1, a pytorch_model.bin-only
    folder, one epoch on a few rows."""
    settings = {
        "run_name": "sst-base", "preset": "tiny", "tasks": ["sst"], "encoder": str(hub_mirror / NAME),
        "data_dir": str(prepared_data), "epochs": 1, "batch_size": 8, "max_length": 32,
        "train_limit": 16, "dev_limit": 16, "device": "cpu", "precision": "fp32",
    }  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-home")}
    result = subprocess.run(
        [sys.executable, "-m", "workflow_src.train", "--settings-json", json.dumps(settings),
         "--seed", "1", "--run-dir", str(tmp_path / "run")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["run"]["encoder"] == str(hub_mirror / NAME)


def test_training_job_with_an_incomplete_folder_fails_in_seconds_naming_it(hub_mirror, tmp_path):
    folder = tmp_path / "bert"
    shutil.copytree(hub_mirror / NAME, folder)
    (folder / "pytorch_model.bin").unlink()
    settings = {"run_name": "sst-base", "tasks": ["sst"], "encoder": str(folder), "device": "cpu",
                "data_dir": str(tmp_path / "no-data-needed-yet")}  # fmt: skip
    from workflow_src.spec.config import TrainConfig
    from workflow_src.train.build import build_model

    started = time.perf_counter()
    with pytest.raises(
        encoders.EncoderError, match=re.escape(f"model folder {folder} is incomplete")
    ):
        build_model(TrainConfig.from_dict(settings))
    assert time.perf_counter() - started < 10


# ----------------------------------------------------------------------------- in the DAG


def overlay(tmp_path: Path, encoder: str, mirror: Path | None = None) -> str:
    """A --configfile that makes the tiny preset use `encoder` (pinned at REVISION)."""
    path = tmp_path / "encoder.yaml"
    hub = {"revisions": {NAME: REVISION}, "mirror": str(mirror or "")}
    path.write_text(yaml.safe_dump({"presets": {"tiny": {"encoder": encoder}}, "hub": hub}))
    return str(path)


def test_incomplete_local_folder_stops_the_dag_before_any_job(hub_mirror, tmp_path):
    folder = tmp_path / "bert"
    shutil.copytree(hub_mirror / NAME, folder)
    (folder / "config.json").unlink()
    tree = copy_workflow(tmp_path / "wf")
    started = time.perf_counter()
    result = run_snakemake(
        "--cores", "1", "--configfile", overlay(tmp_path, str(folder)),
        "--config", "preset=tiny", cwd=tree,
    )  # fmt: skip
    assert result.returncode != 0
    assert f"model folder {folder} is incomplete: no config.json" in result.stdout + result.stderr
    assert "rule download_data" not in result.stdout + result.stderr  # no job started
    assert time.perf_counter() - started < 60


@pytest.mark.slow
def test_fetch_rule_then_training_from_the_folder_under_snakemake(hub_mirror, tmp_path):
    """The fetch rule with a local folder standing in for the hub, then one training job that
    loads models/<name>/ with HF_HUB_OFFLINE=1; a later incomplete folder stops the DAG."""
    tree = copy_workflow(tmp_path / "wf")
    run = "results/runs/tiny/sst-base/seed1/metrics.json"
    args = ("--configfile", overlay(tmp_path, NAME, hub_mirror), "--config", "preset=tiny")
    result = run_snakemake("--cores", "2", run, *args, cwd=tree, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    provenance = json.loads((tree / "models" / NAME / encoders.PROVENANCE_FILE).read_text())
    assert provenance["revision"] == REVISION
    assert provenance["source"] == str(hub_mirror / NAME)
    metrics = json.loads((tree / run).read_text())
    assert metrics["run"]["encoder"] == f"models/{NAME}"

    (tree / "models" / NAME / "pytorch_model.bin").unlink()
    result = run_snakemake("-n", run, *args, cwd=tree)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"model folder models/{NAME} is incomplete" in output
    assert "Delete the folder" in output
