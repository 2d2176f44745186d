"""metrics.json -> metrics.csv, epochs.csv, summary.csv: schema errors, statistics, determinism."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from tests.fake_runs import write_fake_runs
from workflow_src import aggregate


@pytest.fixture
def runs(tmp_path):
    return write_fake_runs(
        tmp_path / "runs", seeds=(1, 2, 3), cells={"sst-base", "multitask-additive"}
    )


def test_missing_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "nope" / "metrics.json"
    with pytest.raises(aggregate.MetricsError, match=f"{path}: metrics file is missing"):
        aggregate.load_run(path)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"run": {"cell": "x"', "not valid JSON"),
        ("[]", "top level should be a JSON object"),
        ('{"run": {"cell": "x", "seed": 1, "tasks": ["sst"]}}', "missing key 'final'"),
    ],
)
def test_malformed_file_is_an_error_naming_it(tmp_path, content, problem):
    path = tmp_path / "metrics.json"
    path.write_text(content)
    with pytest.raises(aggregate.MetricsError, match=problem) as error:
        aggregate.load_run(path)
    assert str(path) in str(error.value)


def test_non_numeric_or_infinite_metric_is_an_error(runs):
    record = json.loads(runs[0].read_text())
    record["best"]["sst"]["accuracy"] = "0.5"
    runs[0].write_text(json.dumps(record))
    with pytest.raises(aggregate.MetricsError, match=r"'best.sst.accuracy' is not a number"):
        aggregate.load_run(runs[0])
    record["best"]["sst"]["accuracy"] = float("inf")
    runs[0].write_text(json.dumps(record))
    with pytest.raises(aggregate.MetricsError, match="not finite"):
        aggregate.load_run(runs[0])


def test_a_run_read_twice_is_an_error(runs):
    with pytest.raises(aggregate.MetricsError, match="already read"):
        aggregate.load_runs([runs[0], runs[0]])


def test_one_row_per_run_with_every_metric(runs):
    frame, epochs = aggregate.load_runs(runs)
    assert len(frame) == 6
    multitask = frame[frame["cell"] == "multitask-additive"]
    assert multitask["tasks"].unique().tolist() == ["sst+quora+sts"]
    for column in ("best_sts_pearson", "final_quora_accuracy", "wall_seconds", "version_torch"):
        assert multitask[column].notna().all()
    assert frame.loc[frame["cell"] == "sst-base", "best_sts_pearson"].isna().all()
    assert set(epochs["epoch"]) == {1, 2, 3}


def test_summary_statistics_and_interval():
    runs = pd.DataFrame({"cell": ["a"] * 3 + ["b"], "seed": [1, 2, 3, 1],
                         "best_sst_accuracy": [0.5, 0.6, 0.7, 0.4]})  # fmt: skip
    summary = aggregate.summarize(runs, n_boot=4000).set_index("cell")
    a, b = summary.loc["a"], summary.loc["b"]
    assert (a["n"], a["mean"], a["sd"]) == (3, pytest.approx(0.6), pytest.approx(0.1))
    assert 0.5 <= a["ci_low"] < 0.6 < a["ci_high"] <= 0.7
    assert (b["n"], b["ci_low"], b["ci_high"]) == (1, 0.4, 0.4)
    assert np.isnan(b["sd"])


def test_summary_is_deterministic_and_independent_of_other_cells():
    one = pd.DataFrame({"cell": ["a"] * 3, "seed": [1, 2, 3], "best_sst_accuracy": [0.5, 0.6, 0.9]})
    two = pd.concat([one, pd.DataFrame({"cell": ["b"], "seed": [1], "best_sst_accuracy": [0.1]})])
    first, second = aggregate.summarize(one), aggregate.summarize(two)
    pd.testing.assert_frame_equal(first, second[second["cell"] == "a"].reset_index(drop=True))
    assert first["bootstrap_seed"].iloc[0] == aggregate.key_seed(0, "best", "a", "sst", "accuracy")


def test_cli_writes_three_csvs_and_no_temporary_files(runs, tmp_path):
    out = tmp_path / "results"
    code = aggregate.main(
        ["--runs", *map(str, runs), "--metrics-csv", str(out / "metrics.csv"),
         "--summary-csv", str(out / "summary.csv"), "--epochs-csv", str(out / "epochs.csv"),
         "--bootstrap", "100"]
    )  # fmt: skip
    assert code == 0
    assert sorted(os.listdir(out)) == ["epochs.csv", "metrics.csv", "summary.csv"]
    summary = aggregate.read_summary(out / "summary.csv")
    assert list(summary.columns) == aggregate.SUMMARY_COLUMNS
    assert set(summary["stage"]) == {"best", "final"}
    assert (summary["n"] == 3).all()


def test_cli_fails_naming_the_bad_file(runs, tmp_path, caplog):
    runs[1].write_text(runs[1].read_text()[:200])  # cut in half
    out = tmp_path / "results"
    code = aggregate.main(
        ["--runs", *map(str, runs), "--metrics-csv", str(out / "m.csv"),
         "--summary-csv", str(out / "s.csv"), "--epochs-csv", str(out / "e.csv")]
    )  # fmt: skip
    assert code == 1
    assert str(runs[1]) in caplog.text
    assert not out.exists() or not os.listdir(out)


def test_metrics_csv_carries_every_setting_of_each_run_as_a_column(tmp_path):
    """lr, dropout, finetune, the STS head, SMART's settings...: one read_csv, no join."""
    from workflow_src.config import TrainConfig

    path = write_fake_runs(tmp_path, seeds=(1,), cells={"sts-head-cosine"})[0]
    record = json.loads(path.read_text())
    settings = TrainConfig.from_dict(
        {"run_name": "sts-head-cosine", "tasks": ["sts"], "sts_head": "cosine", "lr": 2e-5}
    ).to_dict()
    record["settings"] = settings
    path.write_text(json.dumps(record))
    runs, _ = aggregate.load_runs([path])
    out = tmp_path / "metrics.csv"
    aggregate.write_csv_atomic(runs, out)
    row = pd.read_csv(out).iloc[0]
    assert row["lr"] == 2e-5 and row["sts_head"] == "cosine"
    assert row["dropout"] == settings["dropout"] and row["finetune"] == settings["finetune"]
    assert row["optimizer"] == "adam" and row["pooling"] == "cls"
    assert row["smart_weight"] == settings["smart"]["weight"]
    assert row["epochs"] == len(record["epochs"])  # the row's own value is kept
    assert row["preset"] == record["run"]["preset"]
