"""The Snakemake DAG: every paper cell a job, presets apart, incremental reruns."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, copy_workflow, run_snakemake


def job_counts(dry_run_output: str) -> dict[str, int]:
    """{rule: jobs} from the 'Job stats' block of a dry run."""
    block = dry_run_output.split("Job stats:")[1].split("Reasons:")[0]
    return {
        m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.MULTILINE)
    }


def planned_cells(dry_run_output: str) -> set[str]:
    """Cells of the training jobs a dry run plans (their `wildcards: cell=...` lines)."""
    return set(re.findall(r"wildcards: cell=([\w.\-]+), seed=\d+", dry_run_output))


def dry_run(*args: str, cwd: Path = REPO_ROOT) -> str:
    result = run_snakemake("-n", "--forceall", *args, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_quick_preset_plans_every_cell_of_tables_2_to_9_and_the_supplementary_ones_once():
    output = dry_run("--config", "preset=quick")
    counts = job_counts(output)
    # one seed: 41 cells of the paper's tables + 4 supplementary (see tests/test_grid.py)
    assert counts["train_cell"] == 45
    assert counts["download_data"] == 1
    assert len(planned_cells(output)) == 45


def test_paper_preset_plans_three_seeds_per_cell_under_its_own_folder():
    """45 cells x 3 seeds; the three BiLSTM cells' jobs as train_cell_cpu (they ask no GPU)."""
    output = dry_run("--config", "preset=paper")
    counts = job_counts(output)
    assert (counts["train_cell"], counts["train_cell_cpu"]) == (42 * 3, 3 * 3)
    assert "results/runs/paper/" in output and "results/runs/quick/" not in output


def test_one_table_plans_only_the_runs_it_shows():
    output = dry_run("results/table9.tex")
    assert planned_cells(output) == {"multitask-additive", "multitask-smart"}
    output = dry_run("results/table7.tex")
    assert planned_cells(output) == {
        "sts-base",
        "sts-head-multiply",
        "sts-head-difference",
        "sts-head-cosine",
    }


def test_lint_is_clean():
    result = run_snakemake("--lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


@pytest.fixture(scope="module")
def finished_tiny_tree(tmp_path_factory) -> Path:
    """A copy of the workflow that has run the whole DAG at the tiny preset (a few minutes)."""
    tree = copy_workflow(tmp_path_factory.mktemp("dag"))
    result = run_snakemake("--cores", "2", "--config", "preset=tiny", cwd=tree, timeout=1800)
    assert result.returncode == 0, result.stderr[-5000:]
    return tree


@pytest.mark.slow
def test_tiny_preset_runs_end_to_end(finished_tiny_tree):
    tree = finished_tiny_tree
    for n in range(1, 10):
        assert (tree / f"results/table{n}.tex").stat().st_size > 0
    assert (tree / "results/report.html").exists()
    runs = sorted((tree / "results/runs/tiny").glob("*/seed1/metrics.json"))
    assert len(runs) == 45
    metrics = json.loads(runs[0].read_text())
    assert metrics["run"]["preset"] == "tiny"
    assert metrics["data"]["quora_train_standin"] is True
    assert len(list((tree / "results/benchmarks/tiny").glob("*/seed1.tsv"))) == 45
    assert len(list((tree / "logs/train_cell/tiny").glob("*/seed1.log"))) == 45


@pytest.mark.slow
def test_finished_tree_has_nothing_to_do(finished_tiny_tree):
    result = run_snakemake("-n", "--config", "preset=tiny", cwd=finished_tiny_tree)
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.slow
def test_changing_one_cells_setting_reruns_only_that_cell(finished_tiny_tree):
    """A new AdamW weight decay in config.yaml touches the three AdamW cells and what is built
    from them, nothing else."""
    config = finished_tiny_tree / "config.yaml"
    original = config.read_text()
    assert "adamw_weight_decay: 0.01" in original
    config.write_text(original.replace("adamw_weight_decay: 0.01", "adamw_weight_decay: 0.05"))
    try:
        result = run_snakemake("-n", "--config", "preset=tiny", cwd=finished_tiny_tree)
    finally:
        config.write_text(original)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout
    assert planned_cells(output) == {"sst-adamw", "quora-adamw", "sts-adamw"}
    counts = job_counts(output)
    assert "download_data" not in counts
    assert counts["train_cell"] == 3
    assert set(re.findall(r"wildcards: n=(\d)", output)) == {"8"}  # only Table 8 shows AdamW
