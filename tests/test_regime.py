"""The `regime` preset (issue 24): the paper's own settings on the embedded encoder, for the cells
of the claims that the `cpu` preset's scale leaves open; its plan, cost and partial reference."""

from __future__ import annotations

import copy
import json
import re
import shutil
import statistics
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO_ROOT, copy_workflow, run_snakemake
from tests.fake_runs import write_fake_runs
from workflow_src.spec import cost, grid, selection

CONFIG = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
PRESET = "regime"
SEEDS = [1, 2, 3]
CELLS = [
    *(f"sst-{c}" for c in ("dropout0.1", "dropout0.3", "base", "lr1e-4", "finetune-last2")),
    *(
        f"sts-{c}"
        for c in (
            "dropout0.1",
            "dropout0.3",
            "base",
            "lr1e-4",
            "finetune-last2",
            "head-multiply",
            "head-difference",
            "head-cosine",
        )
    ),
    "sst-adamw",
    "sts-adamw",
    "sst-constant-lr",
    "sts-constant-lr",
]  # the issue's list, in table order
TABLES = [1, 3, 4, 6, 7, 8]  # Table 2 (BiLSTM), 5 (epochs) and 9 (multi-task) have none of them


def at(preset: str) -> dict:
    return {**copy.deepcopy(CONFIG), "preset": preset}


def planned_rules(output: str) -> dict[str, int]:
    block = output.split("Job stats:")[1].split("\n\n")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.MULTILINE)}


# ----------------------------------------------------------------------------- the preset


def test_the_regime_trains_the_issues_cells_three_seeds_each():
    assert list(selection.selected_cells(at(PRESET))) == CELLS
    assert CONFIG["presets"][PRESET]["seeds"] == SEEDS


def test_each_cell_trains_at_the_papers_settings_on_full_sst_and_sts():
    """Every training setting the paper's preset gives a cell, but the encoder and the
    machine's (device, threads, precision, weights kept): epochs, learning rate, batch size,
    optimiser, schedule, dropout, layers, head; no head rate of its own; all the data."""
    machine = {"encoder", "device", "threads", "precision", "keep_best", "preset"}
    cells = grid.build_cells(CONFIG["grid"])
    for cell in CELLS:
        regime = grid.cell_settings(at(PRESET), cell, cells)
        paper = grid.cell_settings(at("paper"), cell, cells)
        assert {k: v for k, v in regime.items() if k not in machine} == {
            k: v for k, v in paper.items() if k not in machine
        }, cell
        assert regime["encoder"] == "embedded" and "head_lr" not in regime
        assert regime["train_limit"] is None and regime["dev_limit"] is None
        assert regime["epochs"] == 10 and regime["batch_size"] == 32
        assert regime["tasks"] in (["sst"], ["sts"])


def test_the_default_cells_decide_the_claims_the_config_comment_lists():
    scopes = selection.claim_scopes(selection.load_document(), CELLS)
    decided = {claim for claim, scope in scopes.items() if scope.decided}
    assert decided == {
        "lr-1e-5-best-sst-sts",
        "dropout-small-effect",
        "lower-dropout-two-tasks",
        "last-two-layers-suffice",
        "all-layers-preferred",
        "adamw-no-gain",
        "cosine-no-gain",
        "difference-head-fails",
        "dot-product-head-best",
    }
    for claim in decided - {"difference-head-fails", "dot-product-head-best"}:
        assert "quora" not in scopes[claim].tasks and scopes[claim].note, claim
    # every cell serves one of them, and each is decided on all its SST and STS comparisons
    assert {cell for claim in decided for c in scopes[claim].kept for cell in c.cells} == set(CELLS)
    assert all(c.task == "quora" for claim in decided for c in scopes[claim].dropped)


def test_a_user_widens_the_regime_by_config_with_a_claim_id():
    config = at(PRESET)
    config["presets"][PRESET]["subset"]["claims"] = ["lr-1e-6-worst"]
    assert list(selection.selected_cells(config)) == [
        *CELLS[:4],
        "sst-lr1e-6",
        *CELLS[4:9],
        "sts-lr1e-6",
        *CELLS[9:],
    ]


def test_every_committed_regime_run_is_what_todays_config_and_code_would_train():
    """The regime finishes over many sittings, from a worktree pinned at one commit: each run
    committed to reference/regime/runs was trained at the settings today's config gives its
    cell (a config edit since would make it another cell's run), at seeds the preset names, by
    a commit that reference/training_commits.yaml shows gives today's metrics."""
    runs = sorted((REPO_ROOT / "reference" / "regime" / "runs").glob("*/seed*/metrics.json"))
    assert runs
    cells = grid.build_cells(CONFIG["grid"])
    notes = yaml.safe_load((REPO_ROOT / "reference" / "training_commits.yaml").read_text())
    for path in runs:
        metrics = json.loads(path.read_text())
        cell, seed = metrics["run"]["cell"], metrics["run"]["seed"]
        assert path.parent == path.parents[2] / cell / f"seed{seed}" and seed in SEEDS
        today = grid.cell_settings(at(PRESET), cell, cells)
        moved = {
            key: (metrics["settings"].get(key), value)
            for key, value in today.items()
            if key != "data_dir" and metrics["settings"].get(key) != value
        }
        assert moved == {}, f"{cell} seed{seed}: recorded vs today's settings {moved}"
        assert metrics["provenance"]["git_commit"] in notes, f"{cell} seed{seed}"


def test_the_cost_model_gives_the_first_runs_epoch_time_and_about_thirteen_hours():
    """0.134 TFLOP/s is the quiet epochs of the first regime run (reference/regime/runs:
    sst-lr1e-4 seed 1, whose epochs 1-4 shared the machine; benchmarks/RESULTS.md 8.7)."""
    costs = cost.grid_costs(at(PRESET))
    assert list(costs) == CELLS
    startup = CONFIG["presets"][PRESET]["cost"]["startup_s"]
    run = REPO_ROOT / "reference" / "regime" / "runs" / "sst-lr1e-4" / "seed1" / "metrics.json"
    measured = statistics.median(e["seconds"] for e in json.loads(run.read_text())["epochs"][4:])
    per_epoch = (costs["sst-lr1e-4"].seconds - startup) / 10
    assert per_epoch == pytest.approx(measured, rel=0.05)
    hours = sum(c.seconds for c in costs.values()) * len(SEEDS) / 3600
    assert 12.5 < hours < 13.5
    text = cost.report(at(PRESET))
    assert text.splitlines()[0].endswith(
        "17 cells x 3 seed(s) = 51 training runs; encoder embedded"
    )
    assert f"{hours:.2f} CPU-hours" in text
    assert "claims not decided (no runs of their cells): lr-1e-6-worst" in text
    assert f"tables: {', '.join(map(str, TABLES))}" in text


# ----------------------------------------------------------------------------- the DAG


@pytest.fixture
def tree(tmp_path) -> Path:
    return copy_workflow(tmp_path)


@pytest.mark.slow
def test_a_dry_run_plans_exactly_the_cells_times_three_seeds(tree):
    result = run_snakemake("-n", "--config", f"preset={PRESET}", cwd=tree)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = planned_rules(result.stdout)
    assert counts["train_cell"] == len(CELLS) * 3 and counts["render_table"] == len(TABLES)
    assert counts["tokenize_split"] == 2  # SST and STS only
    trained = set(
        re.findall(rf"results/runs/{PRESET}/([^/]+)/seed(\d)/metrics.json", result.stdout)
    )
    assert trained == {(cell, str(seed)) for cell in CELLS for seed in SEEDS}
    shown = set(re.findall(rf"results/{PRESET}/table(\d+)\.tex", result.stdout))
    assert shown == {str(n) for n in TABLES}


@pytest.mark.slow
def test_snakemake_cost_prints_the_plan_and_its_hours_before_anything_runs(tree):
    result = run_snakemake("cost", "--cores", "1", "--config", f"preset={PRESET}", cwd=tree)
    assert result.returncode == 0, result.stderr[-3000:]
    expected = cost.report(at(PRESET)).splitlines()
    for line in (expected[0], expected[2], expected[-2]):  # header, subset, CPU total
        assert line in result.stdout
    assert not (tree / "results" / "runs").exists()


@pytest.mark.slow
def test_runs_from_a_folder_of_the_regimes_cells_renders_what_it_has(tree):
    write_fake_runs(tree / "shipped", PRESET, SEEDS, cells=set(CELLS))
    render = ("--config", f"preset={PRESET}", f"runs_from=shipped/{PRESET}")
    result = run_snakemake("-n", *render, cwd=tree)
    assert result.returncode == 0, result.stderr[-3000:]
    assert planned_rules(result.stdout) == {
        "aggregate_metrics": 1,
        "collect_curves": 1,
        "decide_claims": 1,
        "render_table": len(TABLES),
        "render_report": 1,
        "all": 1,
        "total": len(TABLES) + 5,
    }
    (tree / "shipped" / PRESET / "sts-head-cosine" / "seed2" / "predictions.csv").unlink()
    result = run_snakemake("-n", *render, cwd=tree)
    assert result.returncode != 0
    assert f"lacks 1 of the {len(CELLS) * 3} finished runs" in result.stdout + result.stderr
    assert "sts-head-cosine/seed2" in result.stdout + result.stderr


@pytest.mark.slow
def test_shipping_the_regime_copies_its_runs_only(tree):
    shutil.rmtree(tree / "reference" / PRESET, ignore_errors=True)  # shipped the first time
    write_fake_runs(tree / "results" / "runs", PRESET, SEEDS, cells=set(CELLS))
    result = run_snakemake("-n", "--config", f"preset={PRESET}", "ship_reference=True", cwd=tree)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = planned_rules(result.stdout)
    assert (counts["ship_run"], counts["ship_provenance"]) == (len(CELLS) * 3, 1)
    assert "train_cell" not in counts and counts["render_table"] == len(TABLES)
    assert f"reference/{PRESET}/table5.tex" not in result.stdout


@pytest.mark.slow
def test_the_renderers_read_the_partial_grid_and_render_only_its_tables(tree):
    """For real, from fake runs: the aggregate, the tables the cells fill (absent columns shown
    as --) and the report, with no table of Tables 2, 5 or 9."""
    write_fake_runs(tree / "shipped", PRESET, SEEDS, cells=set(CELLS))
    render = ("--config", f"preset={PRESET}", f"runs_from=shipped/{PRESET}")
    result = run_snakemake("--cores", "2", *render, cwd=tree, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tree / "results" / PRESET
    assert sorted(int(p.stem[5:]) for p in out.glob("table*.tex")) == TABLES
    lr = (out / "table4.tex").read_text()
    assert "-- / 49.04" in lr  # sst-lr1e-6 is not in the subset: its column is marked absent
    assert set(pd.read_csv(out / "summary.csv")["cell"]) == set(CELLS)
    assert (out / "report.html").stat().st_size > 0 and (out / "claims.csv").is_file()
