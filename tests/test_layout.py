"""Per-preset output folders and the note for a user whose runs belong to another preset."""

from __future__ import annotations

from workflow_src import layout


def finish_run(root, preset: str, cell: str = "sst-base") -> None:
    run = root / "results" / "runs" / preset / cell / "seed1"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text("{}\n")


def test_each_preset_has_its_own_runs_and_derived_folders():
    assert layout.runs_dir("paper") == "results/runs/paper"
    assert layout.derived_dir("paper") == "results/paper"
    assert layout.derived_dir("quick") != layout.derived_dir("paper")


def test_presets_with_runs_counts_only_finished_runs(tmp_path):
    assert layout.presets_with_runs(tmp_path) == []
    (tmp_path / "results/runs/quick/sst-base/seed1").mkdir(parents=True)  # started, unfinished
    finish_run(tmp_path, "paper")
    assert layout.presets_with_runs(tmp_path) == ["paper"]


def test_hint_names_the_finished_preset_when_the_one_in_force_has_no_runs(tmp_path):
    """After a paper run, a plain `snakemake report` (quick in force) says how to get the paper
    report instead of silently planning quick training."""
    assert layout.preset_hint("quick", tmp_path) is None  # fresh clone: nothing to say
    finish_run(tmp_path, "paper")
    hint = layout.preset_hint("quick", tmp_path)
    assert "'quick'" in hint and "paper" in hint
    assert "snakemake report --config preset=paper" in hint
    assert layout.preset_hint("paper", tmp_path) is None
    finish_run(tmp_path, "quick")
    assert layout.preset_hint("quick", tmp_path) is None
