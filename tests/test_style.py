"""The code stays ruff-clean and the Snakemake files snakefmt-formatted."""

from __future__ import annotations

import subprocess

from tests.conftest import REPO_ROOT, tool


def run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def test_ruff_check_is_clean():
    result = run(tool("ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean():
    result = run(tool("ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakefmt_is_clean():
    smk_files = [
        "Snakefile",
        *sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "rules").glob("*.smk")),
    ]
    result = run(tool("snakefmt"), "--check", *smk_files)
    assert result.returncode == 0, result.stdout + result.stderr


# Sizes (modules <= 450 lines, functions <= 80, at any depth) and the import rules are in
# tests/test_architecture.py.
