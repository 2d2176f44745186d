"""A finished run's metrics.json checked on the way in (workflow_src/analysis/run_files.py)."""

from __future__ import annotations

import json

import pytest

from tests.fake_runs import write_fake_runs
from workflow_src.analysis import aggregate, run_files


@pytest.fixture
def runs(tmp_path):
    return write_fake_runs(tmp_path / "runs", seeds=(1,), cells={"sst-base", "sts-base"})


def edit(path, change) -> None:
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))


def test_real_looking_runs_validate(runs):
    for path in runs:
        assert run_files.validate(path)["run"]["seed"] == 1
    assert run_files.problems([*runs, runs[0].parent / "absent" / "metrics.json"]) == []


@pytest.mark.parametrize(
    ("where", "task", "metric", "value", "shown"),
    [
        ("best", "sst", "accuracy", 1.7, "outside [0, 1]"),
        ("final", "sst", "macro_f1", -0.1, "outside [0, 1]"),
        ("best", "sts", "pearson", -3.0, "outside [-1, 1]"),
        ("final", "sts", "spearman", "0.5", "not a finite number"),
    ],
)
def test_an_impossible_metric_is_refused_naming_file_key_and_remedy(
    runs, where, task, metric, value, shown
):
    path = next(p for p in runs if f"/{task}-base/" in str(p))
    edit(path, lambda record: record[where][task].__setitem__(metric, value))
    with pytest.raises(run_files.RunFileError) as error:
        run_files.validate(path)
    message = str(error.value)
    assert message.startswith(f"{path}: '{where}.{task}.{metric}' is {value!r}, {shown}")
    assert f"Delete the run's folder {path.parent}/ and run snakemake again" in message


def test_an_impossible_epoch_metric_is_refused(runs):
    edit(runs[0], lambda record: record["epochs"][0]["dev"]["sst"].__setitem__("accuracy", 2))
    with pytest.raises(run_files.RunFileError, match=r"'epochs\[0\]\.dev\.sst\.accuracy' is 2"):
        run_files.validate(runs[0])


def test_a_truncated_file_is_refused_with_the_remedy(runs):
    runs[0].write_text(runs[0].read_text()[:200])
    [problem] = run_files.problems(runs)
    assert problem.startswith(f"{runs[0]}: unreadable (")
    assert "that run alone is trained again, every other run is kept" in problem


def test_aggregation_refuses_an_accuracy_of_1_7_and_says_the_remedy(runs, tmp_path, caplog):
    """Issue 26: a valid metrics.json with accuracy 1.7 was aggregated silently; a truncated
    one stopped aggregation naming the file but not the remedy."""
    edit(runs[0], lambda record: record["best"]["sst"].__setitem__("accuracy", 1.7))
    out = tmp_path / "out"
    args = ["--metrics-csv", str(out / "m.csv"), "--summary-csv", str(out / "s.csv"),
            "--epochs-csv", str(out / "e.csv")]  # fmt: skip
    assert aggregate.main(["--runs", *map(str, runs), *args]) == 1
    assert "'best.sst.accuracy' is 1.7, outside [0, 1]" in caplog.text
    caplog.clear()
    runs[0].write_text("{")
    assert aggregate.main(["--runs", *map(str, runs), *args]) == 1
    assert f"{runs[0]}: not valid JSON" in caplog.text
    assert f"Delete the run's folder {runs[0].parent}/ and run snakemake again" in caplog.text
    assert not out.exists()
