"""A copy of the working tree to run the workflow in, away from the repository's own outputs.

Used by the tests (tests/conftest.py) and by benchmarks/dag.py; no pytest here.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from io import BytesIO
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def copy_workflow(dest: Path, root: Path = REPO_ROOT) -> Path:
    """The working tree's tracked and untracked-but-not-ignored files (no results, no data) in
    `dest`, as `git ls-files` lists them, so the workflow can run there untouched by, and
    without touching, the repository's own outputs."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = root / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def archive_commit(commit: str, dest: Path, root: Path = REPO_ROOT) -> Path | None:
    """The files of `commit` (`git archive`) in `dest`; None where the clone's history lacks
    the commit (a shallow clone)."""
    found = subprocess.run(
        ["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=root, capture_output=True
    )
    if found.returncode != 0:
        return None
    tar = subprocess.run(
        ["git", "archive", "--format=tar", commit], cwd=root, capture_output=True, check=True
    )
    with tarfile.open(fileobj=BytesIO(tar.stdout)) as bundle:
        bundle.extractall(dest, filter="data")
    return dest
