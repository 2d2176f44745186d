"""Per-preset output folders and the note for a user whose runs belong to another preset."""

from __future__ import annotations

from workflow_src.spec import layout


def finish_run(root, preset: str, cell: str = "sst-base") -> None:
    run = root / "results" / "runs" / preset / cell / "seed1"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text("{}\n")
    (run / "predictions.csv").write_text("task,id,prediction,gold\n")


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


def test_by_default_the_renderers_read_the_preset_own_runs_which_are_trained_where_missing():
    paths = layout.paths("quick")
    assert (paths.trained, paths.runs, paths.derived) == (
        "results/runs/quick",
        "results/runs/quick",
        "results/quick",
    )
    assert paths.trains and paths.ship_from is None


def test_runs_from_reads_another_folder_and_trains_nothing():
    paths = layout.paths("cpu", runs_from="reference/cpu/runs/")
    assert paths.runs == paths.source == "reference/cpu/runs"
    assert paths.derived == "results/cpu"  # the preset's usual derived folder
    assert not paths.trains


def test_shipping_copies_the_runs_into_the_reference_folder_and_renders_there():
    paths = layout.paths("cpu", ship=True)
    assert (paths.runs, paths.derived) == ("reference/cpu/runs", "reference/cpu")
    assert paths.ship_from == "results/runs/cpu" and paths.trains
    again = layout.paths("cpu", runs_from="reference/cpu/runs", ship=True)  # re-render in place
    assert again.ship_from is None and not again.trains
    other = layout.paths("cpu", runs_from="elsewhere/runs", ship=True)
    assert other.ship_from == other.source == "elsewhere/runs" and not other.trains


def test_missing_runs_names_each_unfinished_cell_and_seed(tmp_path):
    finish_run(tmp_path, "cpu", "sst-base")
    (tmp_path / "results/runs/cpu/sts-base/seed1").mkdir(parents=True)  # started, unfinished
    finish_run(tmp_path, "cpu", "sst-head-cosine")
    (tmp_path / "results/runs/cpu/sst-head-cosine/seed1/predictions.csv").unlink()
    folder = "results/runs/cpu"
    cells = ["sst-base", "sts-base", "sst-head-cosine"]
    missing = layout.missing_runs(folder, cells, [1], root=tmp_path)
    assert missing == ["sts-base/seed1", "sst-head-cosine/seed1"]  # no predictions: not whole
    missing = layout.missing_runs(folder, cells[:2], [1, 2], root=tmp_path)
    assert missing == ["sst-base/seed2", "sts-base/seed1", "sts-base/seed2"]
    message = layout.missing_runs_message(folder, missing, 4)
    assert "3 of the 4" in message and "sts-base/seed1" in message and folder in message
