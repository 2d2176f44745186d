"""The one file writer (workflow_src/atomic.py) and its copy command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from workflow_src import atomic


def test_copy_command_writes_the_same_bytes_and_leaves_no_temporary(tmp_path):
    source = tmp_path / "paper" / "table9.tex"
    source.parent.mkdir()
    source.write_bytes(b"\\begin{table}\xc2\xb1\n")
    dest = tmp_path / "table9.tex"
    dest.write_text("the quick preset's table\n")  # replaced whole
    result = subprocess.run(
        [sys.executable, "-m", "workflow_src.atomic", "copy", str(source), str(dest)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert dest.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paper", "table9.tex"]


def test_copy_of_a_missing_source_fails_and_keeps_the_old_file(tmp_path):
    dest = tmp_path / "table9.tex"
    dest.write_text("old\n")
    with pytest.raises(FileNotFoundError):
        atomic.copy_atomic(tmp_path / "missing.tex", dest)
    assert dest.read_text() == "old\n"
