"""Shipping a reproduction (reference/<preset>/) and rendering it again without training."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, copy_workflow, run_snakemake
from tests.fake_runs import write_fake_runs
from workflow_src.render import reference

PRESET = "tiny"
SEEDS = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())["presets"][PRESET]["seeds"]


def finished_runs(root: Path, preset: str = PRESET) -> list[Path]:
    """Fake finished runs (metrics.json and predictions.csv) under `root`/<preset>/."""
    return write_fake_runs(root, preset, SEEDS)


def planned_rules(output: str) -> dict[str, int]:
    block = output.split("Job stats:")[1].split("\n\n")[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.MULTILINE)}


def jobs_of(rule: str, output: str) -> list[str]:
    """The wildcards of each job of `rule` in a dry run's output."""
    blocks = re.split(r"\n(?=\[|rule |localrule )", output)
    return [
        match[1]
        for block in blocks
        if block.startswith((f"rule {rule}:", f"localrule {rule}:"))
        for match in [re.search(r"wildcards: (.*)", block)]
        if match
    ]


def record(commit: str | None, cell: str = "sst-base", seed: int = 1) -> dict:
    return {
        "run": {"cell": cell, "seed": seed, "encoder": "embedded"},
        "compute": {"device": "cpu", "gpu_name": None, "threads": 1, "wall_seconds": 1800.0},
        "provenance": {"git_commit": commit},
    }


# ----------------------------------------------------------------------------- PROVENANCE.json


def test_shipped_runs_must_share_one_known_training_commit():
    training = reference.training_commits({"a": record("abc"), "b": record("abc")})
    assert training["git_commit"] == "abc"
    assert training["commits"] == [
        {"commit": "abc", "runs": 2, "cells": ["sst-base"], "status": "current training code"}
    ]
    with pytest.raises(reference.ProvenanceError, match=r"abc: 1 runs, e\.g\. a; def: 1 runs"):
        reference.training_commits({"a": record("abc"), "b": record("def")})
    with pytest.raises(reference.ProvenanceError, match="unknown: 1 runs"):
        reference.training_commits({"a": record(None)})


def test_runs_of_an_earlier_commit_ship_only_where_a_test_shows_the_same_metrics():
    """Issue 23: runs of an earlier commit stay beside the current one's only when
    reference/training_commits.yaml lists that commit with its evidence; the cells whose
    training changed since are named stale, in PROVENANCE.json and the report."""
    notes = {
        "old": {
            "evidence": "tests/test_golden_metrics.py",
            "stale_cells": {"multitask-smart": "SMART's gradient changed"},
        }
    }
    records = {
        "a": record("new", "quora-all-data"),
        "b": record("old", "sst-base"),
        "c": record("old", "multitask-smart"),
    }
    training = reference.training_commits(records, notes)
    assert training["git_commit"] == "new"
    old = next(entry for entry in training["commits"] if entry["commit"] == "old")
    assert old["evidence"] == "tests/test_golden_metrics.py"
    assert old["stale_cells"] == {"multitask-smart": "SMART's gradient changed"}
    assert reference.stale_cells(training) == ["multitask-smart"]
    with pytest.raises(reference.ProvenanceError, match=r"training_commits\.yaml"):
        reference.training_commits({**records, "d": record("other", "sts-base")}, notes)


def test_the_shipped_commit_notes_name_a_test_that_exists():
    notes = reference.load_commit_notes(REPO_ROOT / reference.COMMITS_FILE)
    for commit, note in notes.items():
        assert re.fullmatch(r"[0-9a-f]{40}", commit), commit
        test_file = note["evidence"].split("::")[0].split()[0]
        assert (REPO_ROOT / test_file).is_file(), note["evidence"]


def test_provenance_states_the_training_commit_machines_and_the_shipping_checkout():
    records = {"a": record("abc", "sst-base", 1), "b": record("abc", "sts-base", 2)}
    document = reference.provenance("cpu", records, REPO_ROOT)
    training = document["training"]
    assert (training["git_commit"], training["runs"], training["cells"]) == ("abc", 2, 2)
    assert training["seeds"] == [1, 2] and training["compute_hours"] == 1.0
    assert training["machines"] == [
        {"device": "cpu", "gpu_name": None, "threads": 1, "precision": None, "runs": 2}
    ]
    assert re.fullmatch(r"[0-9a-f]{40}", document["rendered"]["git_commit"])
    assert document["rendered"]["machine"]["cpu_cores"] >= 1
    assert "runs_from=reference/cpu/runs" in document["render_again"]
    assert "--configfile" not in document["render_again"]


def test_an_edit_counts_against_the_checkout_unless_it_is_in_the_folder_being_shipped(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "reference" / "cpu").mkdir(parents=True)
    (tmp_path / "reference" / "cpu" / "PROVENANCE.json").write_text("{}\n")
    (tmp_path / "train.py").write_text("EPOCHS = 10\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    (tmp_path / "reference" / "cpu" / "PROVENANCE.json").unlink()  # as Snakemake does first
    state = reference.checkout_state(tmp_path, shipped_to="reference/cpu")
    assert state["tracked_files_edited"] is False
    assert reference.checkout_state(tmp_path)["tracked_files_edited"]  # the whole checkout
    assert len(state["git_commit"]) == 40
    (tmp_path / "train.py").write_text("EPOCHS = 3\n")
    assert reference.checkout_state(tmp_path, shipped_to="reference/cpu")["tracked_files_edited"]
    assert reference.checkout_state(tmp_path / "reference")["git_commit"] == state["git_commit"]


def test_outside_a_git_checkout_neither_commit_nor_edits_are_claimed(tmp_path):
    state = reference.checkout_state(tmp_path, shipped_to="reference/cpu")
    assert state == {"git_commit": None, "tracked_files_edited": None}


def test_the_render_command_repeats_the_config_overlays_the_runs_were_shipped_with():
    overlay = "reference/cpu/seeds.yaml"  # e.g. the first seed shipped while the others train
    document = reference.provenance("cpu", {"a": record("abc")}, REPO_ROOT, [overlay])
    assert document["render_again"].startswith(
        f"snakemake --configfile {overlay} --config preset=cpu runs_from=reference/cpu/runs"
    )


def test_the_render_command_quotes_an_overlay_path_the_shell_would_split():
    overlay = "my overlays/seeds.yaml"
    document = reference.provenance("cpu", {"a": record("abc")}, REPO_ROOT, [overlay])
    assert document["render_again"].startswith("snakemake --configfile 'my overlays/seeds.yaml' ")


def test_provenance_command_refuses_runs_of_two_commits_and_writes_nothing(tmp_path):
    paths = []
    for name, commit in (("a", "abc"), ("b", "def")):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(record(commit)))
        paths.append(str(path))
    output = tmp_path / "PROVENANCE.json"
    assert reference.main(["--preset", "cpu", "--runs", *paths, "--output", str(output)]) == 1
    assert not output.exists()
    assert reference.main(["--preset", "cpu", "--runs", paths[0], "--output", str(output)]) == 0
    assert json.loads(output.read_text())["training"]["git_commit"] == "abc"


# ----------------------------------------------------------------------------- the DAG


@pytest.fixture
def tree(tmp_path) -> Path:
    return copy_workflow(tmp_path)


def test_rendering_from_a_folder_of_finished_runs_plans_no_training(tree):
    finished_runs(tree / "shipped")
    result = run_snakemake(
        "-n", "--config", f"preset={PRESET}", f"runs_from=shipped/{PRESET}", cwd=tree
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert planned_rules(result.stdout) == {
        "aggregate_metrics": 1,
        "render_table": 9,
        "decide_claims": 1,
        "collect_curves": 1,
        "render_report": 1,
        "all": 1,
        "total": 14,
    }
    assert f"shipped/{PRESET}/sst-base/seed1/metrics.json" in result.stdout
    assert f"results/{PRESET}/report.html" in result.stdout  # the preset's usual derived folder


def test_a_run_missing_from_the_folder_is_an_error_naming_it(tree):
    paths = finished_runs(tree / "shipped")
    gone = next(p for p in paths if p.parts[-3] == "sts-head-cosine")
    (gone.parent / "predictions.csv").unlink()  # a run copied without its predictions
    result = run_snakemake(
        "-n", "--config", f"preset={PRESET}", f"runs_from=shipped/{PRESET}", cwd=tree
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert f"shipped/{PRESET}/ lacks 1 of the 45 finished runs" in output
    assert "sts-head-cosine/seed1" in output
    assert "rule train_cell" not in output


def test_shipping_copies_every_finished_run_and_trains_a_missing_one_first(tree):
    paths = finished_runs(tree / "results" / "runs")
    ship = ("-n", "--config", f"preset={PRESET}", "ship_reference=True")
    result = run_snakemake(*ship, cwd=tree)
    assert result.returncode == 0, result.stderr[-3000:]
    counts = planned_rules(result.stdout)
    assert (counts["ship_run"], counts["ship_provenance"]) == (45, 1)
    assert "train_cell" not in counts
    assert f"reference/{PRESET}/table9.tex" in result.stdout
    assert f"reference/{PRESET}/PROVENANCE.json" in result.stdout
    assert f"results/{PRESET}/" not in result.stdout

    paths[0].unlink()  # one run not finished yet: shipping trains it before copying it
    result = run_snakemake(*ship, cwd=tree)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"cell={paths[0].parts[-3]}, seed=1" in jobs_of("train_cell", result.stdout)


def test_shipping_under_a_config_overlay_records_it_in_the_render_command(tree):
    finished_runs(tree / "results" / "runs")
    (tree / "seeds.yaml").write_text(f"presets:\n  {PRESET}:\n    seeds: {SEEDS}\n")
    result = run_snakemake(
        "-n",
        "-p",
        "--configfile",
        "seeds.yaml",
        "--config",
        f"preset={PRESET}",
        "ship_reference=True",
        cwd=tree,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    command = next(
        line for line in result.stdout.splitlines() if "workflow_src.render.reference" in line
    )
    assert "--configfile seeds.yaml" in command


def table_files(folder: Path) -> dict[str, bytes]:
    """Every table and CSV rendered in `folder`, by name."""
    return {
        p.name: p.read_bytes() for p in sorted(folder.glob("*")) if p.suffix in {".tex", ".csv"}
    }


@pytest.mark.slow
def test_shipped_tables_render_again_byte_for_byte_and_follow_an_edited_run(tree):
    """Ship fake runs into reference/tiny/, render them again into results/tiny/ (no training,
    same bytes); an edited shipped metrics.json then changes the tables that show its cell."""
    finished_runs(tree / "results" / "runs")
    shipped = run_snakemake("--config", f"preset={PRESET}", "ship_reference=True", cwd=tree)
    assert shipped.returncode == 0, shipped.stderr[-3000:]
    ref = tree / "reference" / PRESET
    assert len(list((ref / "runs").glob("*/seed*/predictions.csv"))) == 45
    assert json.loads((ref / "PROVENANCE.json").read_text())["training"]["runs"] == 45
    assert 'href="runs/sst-base/seed1/metrics.json"' in (ref / "report.html").read_text()

    render = ("--config", f"preset={PRESET}", f"runs_from=reference/{PRESET}/runs")
    rendered = run_snakemake(*render, cwd=tree)
    assert rendered.returncode == 0, rendered.stderr[-3000:]
    assert not re.search(r"^\s*(?:local)?rule train_cell", rendered.stdout, re.MULTILINE)
    shipped_tables = table_files(ref)
    # nine tables; metrics, epochs, summary, claims, floors and curves CSVs
    assert len(shipped_tables) == 15
    assert table_files(tree / "results" / PRESET) == shipped_tables

    run = ref / "runs" / "sst-base" / "seed1" / "metrics.json"
    metrics = json.loads(run.read_text())
    metrics["best"]["sst"]["accuracy"] = 0.9123
    run.write_text(json.dumps(metrics))
    again = run_snakemake(*render, cwd=tree)
    assert again.returncode == 0, again.stderr[-3000:]
    table4 = (tree / "results" / PRESET / "table4.tex").read_text()
    assert "91.23" in table4 and table4.encode() != shipped_tables["table4.tex"]
    assert "91.23" not in shipped_tables["table4.tex"].decode()
