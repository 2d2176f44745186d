"""The Snakemake DAG: every paper cell a job, presets apart, incremental reruns."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

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


def dry_run(*args: str, cwd: Path | None = None) -> str:
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


def test_cpu_preset_plans_three_seeds_of_every_cell_on_the_embedded_encoder():
    """Issue 11's evidence preset: 45 cells x 3 seeds, all on this machine's CPU."""
    output = dry_run("--config", "preset=cpu")
    counts = job_counts(output)
    assert counts["train_cell"] == 45 * 3 and "fetch_encoder" not in counts
    assert len(planned_cells(output)) == 45
    assert "results/runs/cpu/" in output and "results/runs/quick/" not in output


def test_paper_dry_run_shows_the_encoder_fetch_as_a_local_job_before_training():
    """Compute nodes without internet: bert-base-uncased is fetched once, on the submitting
    node, and every training job waits for it (its PROVENANCE.json is a training input)."""
    output = run_snakemake("-n", "--config", "preset=paper").stdout  # as the issue types it
    assert job_counts(output)["fetch_encoder"] == 1
    fetch = re.search(r"Job \d+: local job \(on the submitting node, before any training", output)
    assert fetch and fetch.start() < output.index("rule train_cell:")
    assert "fetch bert-base-uncased at revision 86b5e0934494bd15c9632b12f734a8a67f723594" in output
    first_training = output[output.index("rule train_cell:") :].split("\n\n")[0]
    assert "models/bert-base-uncased/PROVENANCE.json" in first_training
    quick = dry_run("--config", "preset=quick")  # the embedded encoder needs no fetch
    assert "fetch_encoder" not in job_counts(quick)


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


def test_after_a_paper_run_the_report_command_trains_nothing_and_keeps_the_paper_report(
    tmp_path,
):
    """Issue 12, Done when: after a paper-preset run (fake runs here), the README's report
    command for it renders from the finished runs, and the quick preset's report goes to its
    own folder without touching the paper's."""
    from tests.fake_runs import write_fake_runs

    tree = copy_workflow(tmp_path)
    config = yaml.safe_load((tree / "config.yaml").read_text())
    write_fake_runs(tree / "results/runs", "paper", config["presets"]["paper"]["seeds"])
    planned = run_snakemake("-n", "report", "--profile", "slurm", cwd=tree)  # README, verbatim + -n
    assert planned.returncode == 0, planned.stderr[-3000:]
    assert set(job_counts(planned.stdout)) == {
        "aggregate_metrics",
        "collect_curves",
        "decide_claims",
        "render_report",
        "report",
        "total",
    }

    built = run_snakemake("report", "--config", "preset=paper", cwd=tree, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    paper_report = tree / "results/paper/report.html"
    before = paper_report.read_bytes()
    assert "rule train_cell:" not in built.stdout + built.stderr

    quick = run_snakemake("-n", "report", cwd=tree)  # quick in force: its own folder, a note
    assert quick.returncode == 0, quick.stderr[-3000:]
    assert "finished runs exist for: paper" in quick.stderr
    assert "results/quick/report.html" in quick.stdout
    assert "results/paper/" not in quick.stdout
    assert paper_report.read_bytes() == before


def test_a_config_overlay_adds_cells_and_a_table_without_code_edits(tmp_path):
    """The README's worked example, verbatim: `--configfile my.yaml` listing pair_encoding."""
    readme = (REPO_ROOT / "README.md").read_text()
    example = readme.split("```yaml\n# my.yaml\n")[1].split("```")[0]
    (tmp_path / "my.yaml").write_text(example)
    output = dry_run("--configfile", str(tmp_path / "my.yaml"))
    assert {"quora-pair-joint", "sts-pair-joint"} <= planned_cells(output)
    assert "sst-pair-joint" not in planned_cells(output)  # one sentence: nothing to vary
    assert "results/quick/table11.tex" in output
    assert "results/quick/table11.tex" not in dry_run()


def test_tracking_reaches_training_jobs_as_a_resource_not_a_setting():
    """`--config tracking=tensorboard` switches the jobs' --tensorboard flag without touching
    their settings (params), so finished runs are not rerun for it. --forceall: the jobs are
    listed whatever has been trained where the test runs (issue 26)."""
    plain = run_snakemake("-n", "-p", "--forceall", "results/table9.tex").stdout
    tracked = run_snakemake(
        "-n", "-p", "--forceall", "results/table9.tex", "--config", "tracking=tensorboard"
    )
    assert "--tensorboard 0" in plain and "--tensorboard 1" not in plain
    assert "--tensorboard 1" in tracked.stdout
    settings = re.compile(r"--settings-json '([^']*)'")
    assert settings.findall(plain) and settings.findall(plain) == settings.findall(tracked.stdout)


def test_learning_curves_reach_training_jobs_as_resources_not_settings(tmp_path):
    """A preset's curve_points / curve_dev_rows (issue 25 item 4) reach the jobs' --curve-*
    flags without touching their settings (params): finished runs are not rerun for them."""
    (tmp_path / "curve.yaml").write_text("presets:\n  quick:\n    curve_points: 0\n")
    plain = run_snakemake("-n", "-p", "results/table9.tex").stdout
    off = run_snakemake(
        "-n", "-p", "results/table9.tex", "--configfile", str(tmp_path / "curve.yaml")
    )
    assert "--curve-points 10 --curve-dev-rows 64" in plain
    assert (
        "--curve-points 0 --curve-dev-rows 64" in off.stdout
        and "--curve-points 10" not in off.stdout
    )
    settings = re.compile(r"--settings-json '([^']*)'")
    assert settings.findall(plain) and settings.findall(plain) == settings.findall(off.stdout)


def test_submission_target_plans_the_multitask_runs_test_download_and_one_job_per_cell():
    counts = job_counts(dry_run("submission"))
    assert counts["write_submission"] == 2  # Table 9's Additive Loss and SMART cells
    assert counts["download_test_data"] == 1
    assert planned_cells(dry_run("submission")) == {"multitask-additive", "multitask-smart"}


@pytest.mark.parametrize(
    "options",
    [(), ("--config", "preset=paper"), ("--config", "preset=cpu"), ("--profile", "slurm")],
    ids=["default", "paper", "cpu", "slurm"],
)
def test_lint_is_clean(options):
    """Issue 22: every preset's rules (the paper preset adds fetch_encoder) lint clean."""
    result = run_snakemake("--lint", *options)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


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
        assert (tree / f"results/tiny/table{n}.tex").stat().st_size > 0
    assert (tree / "results/tiny/report.html").exists()
    assert not (tree / "results/report.html").exists()  # nothing derived outside the preset
    runs = sorted((tree / "results/runs/tiny").glob("*/seed1/metrics.json"))
    assert len(runs) == 45
    metrics = json.loads(runs[0].read_text())
    assert metrics["run"]["preset"] == "tiny"
    assert metrics["data"]["quora_train_standin"] is True
    assert len(list((tree / "results/benchmarks/tiny").glob("*/seed1.tsv"))) == 45
    assert len(list((tree / "logs/train_cell/tiny").glob("*/seed1.log"))) == 45
    smart = json.loads((tree / "results/runs/tiny/multitask-smart/seed1/metrics.json").read_text())
    assert all(epoch["smart"]["adv_loss"] > 0 for epoch in smart["epochs"])
    claims_csv = pd.read_csv(tree / "results/tiny/claims.csv")
    assert len(claims_csv) > 40 and claims_csv["indicative"].all()  # one seed
    assert not claims_csv["test"].str.startswith("missing").any()  # every cell ran


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
