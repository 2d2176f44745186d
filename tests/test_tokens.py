"""Tokenised splits made once per task (workflow_src/data/tokens.py): what a training job reads from
them equals what it tokenised itself, a file for other settings is refused, and the DAG remakes
the files when the data, the tokenizer or the max length change."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import copy_workflow, run_snakemake
from workflow_src.data import tokens
from workflow_src.data.batching import tokenize_split
from workflow_src.data.encoders import load_tokenizer
from workflow_src.data.read import load_split
from workflow_src.spec.config import TrainConfig
from workflow_src.train import loop as train

TASKS = ("sst", "quora", "sts")


@pytest.fixture(scope="module")
def small_data(tmp_path_factory, prepared_data) -> Path:
    """The first 60 rows of every file of a verified data folder (a fast stand-in)."""
    folder = tmp_path_factory.mktemp("small") / "cs224n"
    folder.mkdir()
    for source in prepared_data.iterdir():
        lines = source.read_text().splitlines(keepends=True)
        (folder / source.name).write_text(
            "".join(lines[:61]) if source.suffix == ".csv" else "".join(lines)
        )
    return folder


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tok") / "tokenizer"
    tokens.save_tokenizer("embedded", folder)
    return folder


def make_file(tokenizer_dir, data, tmp_path, task, joint, max_length=32) -> Path:
    path = tmp_path / f"{task}-{tokens.encoding(task, joint)}.npz"
    path.write_bytes(tokens.build(tokenizer_dir, data, task, max_length, joint, 10))
    return path


@pytest.mark.parametrize(("task", "joint"), [("sst", False), ("quora", False), ("quora", True)])
def test_a_tokens_file_holds_exactly_what_tokenize_split_makes(
    tokenizer_dir, small_data, tmp_path, task, joint
):
    path = make_file(tokenizer_dir, small_data, tmp_path, task, joint)
    meta, splits = tokens.load(path, task, 32, joint)
    tokenizer = load_tokenizer("embedded")
    assert (meta["pad_id"], meta["vocab_size"]) == (tokenizer.pad_token_id, len(tokenizer))
    for split in ("train", "dev"):
        examples = load_split(small_data, task, split).examples
        want = tokenize_split(task, examples, tokenizer, 32, joint)
        ids, labels, toks, types = splits[split]
        assert (ids, labels, toks, types) == (want.ids, want.labels, want.tokens, want.token_types)
        assert [type(x) for x in labels] == [type(x) for x in want.labels]


def test_a_tokens_file_made_for_another_max_length_or_encoding_is_refused(
    tokenizer_dir, small_data, tmp_path
):
    path = make_file(tokenizer_dir, small_data, tmp_path, "quora", False, max_length=32)
    with pytest.raises(tokens.TokensMismatch, match=r"max_length=32.*needs 64"):
        tokens.load(path, "quora", 64, False)
    with pytest.raises(tokens.TokensMismatch, match=r"encoding='separate'.*needs 'joint'"):
        tokens.load(path, "quora", 32, True)
    with pytest.raises(tokens.TokensMismatch, match="task='quora'"):
        tokens.load(path, "sts", 32, False)


def test_a_run_from_tokens_files_gives_the_metrics_of_a_run_that_tokenises_itself(
    tokenizer_dir, small_data, tmp_path
):
    """Same seed, same settings: metrics and predictions identical, bit for bit."""
    settings = {
        "run_name": "t", "preset": "tiny", "encoder": "embedded", "data_dir": str(small_data),
        "tasks": list(TASKS), "epochs": 1, "batch_size": 8, "max_length": 32,
        "train_limit": 24, "dev_limit": 20, "device": "cpu", "lr": 1e-4,
    }  # fmt: skip
    cfg = TrainConfig.from_dict(settings)
    files = {t: make_file(tokenizer_dir, small_data, tmp_path, t, False) for t in TASKS}
    fresh = train.run(cfg, 3, tmp_path / "self")
    cached = train.run(cfg, 3, tmp_path / "cached", tokens=files)
    for key in ("final", "best", "data"):
        assert cached[key] == fresh[key]
    assert [e["dev"] for e in cached["epochs"]] == [e["dev"] for e in fresh["epochs"]]
    assert [e["train_loss"] for e in cached["epochs"]] == [e["train_loss"] for e in fresh["epochs"]]
    predictions = [(tmp_path / run / "predictions.csv").read_text() for run in ("self", "cached")]
    assert predictions[0] == predictions[1]


def planned(output: str, rule: str) -> int:
    block = output.split("Job stats:")[1].split("Reasons:")[0] if "Job stats:" in output else ""
    counts = dict(line.split() for line in block.splitlines() if len(line.split()) == 2)
    return int(counts.get(rule, 0))


@pytest.mark.slow  # a real download, tokenizer and tokenising job, then four dry runs
def test_tokens_are_remade_when_data_tokenizer_or_max_length_change(tmp_path):
    """After one tokenize_split job, a dry run plans it again exactly when an input or a
    setting it was made with changed."""
    workdir = copy_workflow(tmp_path)
    target = "results/tokens/tiny/sst-separate.npz"
    done = run_snakemake(target, "--cores", "1", "--config", "preset=tiny", cwd=workdir)
    assert done.returncode == 0, done.stderr[-3000:]
    meta = json.loads(np.load(workdir / target)["meta"].item())
    assert (
        meta["max_length"]
        == yaml.safe_load((workdir / "config.yaml").read_text())["presets"]["tiny"]["max_length"]
    )

    def dry(*extra: str) -> str:
        result = run_snakemake("-n", target, *extra, "--config", "preset=tiny", cwd=workdir)
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout

    assert planned(dry(), "tokenize_split") == 0  # up to date
    overlay = workdir / "longer.yaml"
    overlay.write_text(yaml.safe_dump({"presets": {"tiny": {"max_length": 48}}}))
    output = dry("--configfile", str(overlay))
    assert planned(output, "tokenize_split") == 1 and planned(output, "save_tokenizer") == 0
    output = dry("--forcerun", "save_tokenizer")  # a new tokenizer
    assert planned(output, "tokenize_split") == 1
    later = time.time() + 5
    os.utime(workdir / "data/cs224n/ids-sst-train.csv", (later, later))  # new data
    output = dry()
    assert planned(output, "tokenize_split") == 1 and planned(output, "save_tokenizer") == 0
