"""A user's finished results/ tree survives the move into one folder per stage (issue 22).

SLOW (about two minutes, two CPU cores): the workflow of e88ab40, the commit before the move,
trains two tiny cells in a scratch folder (`git archive` of that commit: its Snakefile, rules,
profile and package); then the folder's code is replaced by this checkout's, as `git pull`
would (results/, data/, logs/ and .snakemake/ stay), and a dry run of the same targets must plan
no download, tokenize or training job. What could break it: a changed param of those rules
(a cell's settings JSON, a tokens path), a changed output path, or a rerun trigger on the rules'
command text. Skipped where the repository's history lacks e88ab40 (a shallow clone); CI runs
on a full clone.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import archived, copy_workflow, run_snakemake

pytestmark = pytest.mark.slow

BEFORE_THE_MOVE = "e88ab4091e019bed40af77826df6ce14eae7ab68"
TARGETS = [f"results/runs/tiny/{cell}/seed1/metrics.json" for cell in ("sst-base", "sts-base")]
KEPT = {"results", "data", "logs", ".snakemake"}  # what a user's checkout holds besides code
UPSTREAM_RULES = ("download_data", "save_tokenizer", "tokenize_split", "train_cell")


def replace_code(tree: Path) -> None:
    """Everything but the user's outputs replaced by this checkout's files."""
    for entry in tree.iterdir():
        if entry.name in KEPT:
            continue
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    copy_workflow(tree)


def planned_rules(dry_run_output: str) -> set[str]:
    return set(re.findall(r"^rule (\w+):", dry_run_output, re.MULTILINE))


def test_a_tree_finished_before_the_move_plans_no_training_after_it(tmp_path, shared_data):
    tree = archived(BEFORE_THE_MOVE, tmp_path / "tree")
    trained = run_snakemake(
        *TARGETS, "--cores", "2", "--config", "preset=tiny", cwd=tree, timeout=900
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    before = {t: (tree / t).read_bytes() for t in TARGETS}

    replace_code(tree)
    assert (tree / "workflow_src" / "train" / "loop.py").is_file()
    assert not (tree / "workflow_src" / "train.py").exists()
    dry = run_snakemake(*TARGETS, "-n", "--config", "preset=tiny", cwd=tree)
    assert dry.returncode == 0, dry.stderr[-3000:]
    rerun = planned_rules(dry.stdout) & set(UPSTREAM_RULES)
    assert rerun == set(), f"the new workflow would rerun {sorted(rerun)}:\n{dry.stdout[-3000:]}"
    assert "Nothing to be done" in dry.stdout + dry.stderr
    assert {t: (tree / t).read_bytes() for t in TARGETS} == before
