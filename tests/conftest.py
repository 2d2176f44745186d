"""Shared fixtures: where the repository, the real CS224N files and the venv's tools are."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.worktree import archive_commit
from tests.worktree import copy_workflow as copy_workflow  # re-exported: the tests import it here

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
SHARED_DATA = SHARED / "data" / "cs224n"
BIN = Path(sys.executable).parent  # snakemake, ruff, snakefmt of the interpreter running pytest


def tool(name: str) -> str:
    """Path of a console script installed beside this Python (falls back to PATH)."""
    candidate = BIN / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real CS224N files (read-only), as published at the pinned commit."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def prepared_data(tmp_path_factory, shared_data) -> Path:
    """A verified data folder as the download rule makes it (mirror + Quora stand-in)."""
    import yaml

    from workflow_src.data import download as data

    config = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())["data"]
    dest = tmp_path_factory.mktemp("data") / "cs224n"
    data.fetch(dest, config["files"], config["base_url"], config["commit"], mirror=shared_data)
    return dest


@functools.cache
def scratch_tree() -> Path:
    """One copy of the working tree per test session, where Snakemake runs when a test names
    no folder: what a user has run in the work tree (results/, .snakemake/) never changes what
    a test sees (issue 26)."""
    folder = Path(tempfile.mkdtemp(prefix="mtb-scratch-"))
    atexit.register(shutil.rmtree, folder, True)
    return copy_workflow(folder)


def archived(commit: str, dest: Path) -> Path:
    """The files of `commit` in `dest`; skips the test where history lacks the commit."""
    if archive_commit(commit, dest) is None:
        pytest.skip(f"commit {commit[:7]} is not in this clone's history (shallow clone?)")
    return dest


def run_snakemake(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 600):
    """Run the project's Snakemake with the data mirror set, in `cwd` (default: the session's
    scratch copy of the working tree); returns the CompletedProcess."""
    cwd = cwd or scratch_tree()
    full_env = {**os.environ, "MTB_DATA_MIRROR": str(SHARED_DATA), **(env or {})}
    full_env["PATH"] = f"{BIN}{os.pathsep}{full_env.get('PATH', '')}"
    return subprocess.run(
        [tool("snakemake"), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def save_tiny_bert(folder: Path, *, safetensors: bool = True) -> Path:
    """A 2-layer, 32-wide random BERT with the embedded model's tokenizer, saved into `folder`
    as a Hugging Face model folder; `safetensors=False` saves only `pytorch_model.bin`, as
    older hub uploads are."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from workflow_src.data.encoders import resolve_encoder

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder("embedded"), local_files_only=True)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=64,
    )
    model = BertModel(config)
    if safetensors:
        model.save_pretrained(folder)
    else:
        config.save_pretrained(folder)
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    tokenizer.save_pretrained(folder)
    return folder
