"""metrics.json -> metrics.csv, epochs.csv, summary.csv: schema errors, statistics, determinism."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests.fake_runs import write_fake_runs
from workflow_src.analysis import aggregate


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
                         "best_sst_accuracy": [0.5, 0.6, 0.7, 0.4],
                         "dev_examples_sst": [400, 400, 400, 400]})  # fmt: skip
    summary = aggregate.summarize(runs).set_index("cell")
    a, b = summary.loc["a"], summary.loc["b"]
    assert (a["n"], a["mean"], a["sd"]) == (3, pytest.approx(0.6), pytest.approx(0.1))
    assert (a["dev_examples"], b["dev_examples"]) == (400, 400)
    assert a["ci_low"] < 0.6 < a["ci_high"] and b["ci_low"] < 0.4 < b["ci_high"]
    assert np.isnan(b["sd"])


def test_three_seeds_on_a_huge_dev_set_get_a_t_interval_with_two_degrees_of_freedom():
    """0.5/0.6/0.7: +-t(0.975, 2) * 0.1 / sqrt(3) = +-4.30 standard errors, not the +-1.6 of a
    percentile bootstrap over three values."""
    runs = pd.DataFrame({"cell": ["a"] * 3, "seed": [1, 2, 3],
                         "best_sst_accuracy": [0.5, 0.6, 0.7], "dev_examples_sst": [10**9] * 3})  # fmt: skip
    row = aggregate.summarize(runs).iloc[0]
    half = 4.302653 * 0.1 / np.sqrt(3)
    assert row["ci_low"] == pytest.approx(0.6 - half, rel=1e-4)
    assert row["ci_high"] == pytest.approx(0.6 + half, rel=1e-4)


def test_one_seed_gets_a_binomial_interval_from_its_dev_examples():
    """Accuracy 0.5 on 400 examples: se = sqrt(0.25 / 400) = 0.025, +-1.96 se."""
    runs = pd.DataFrame({"cell": ["a"], "seed": [1], "best_sst_accuracy": [0.5],
                         "dev_examples_sst": [400]})  # fmt: skip
    row = aggregate.summarize(runs).iloc[0]
    assert row["ci_low"] == pytest.approx(0.5 - 1.959964 * 0.025, rel=1e-5)
    assert row["ci_high"] == pytest.approx(0.5 + 1.959964 * 0.025, rel=1e-5)


def test_pearson_interval_adds_the_fisher_delta_variance_to_the_seeds():
    """r = 0.8 on 103 pairs: dev var (1 - 0.64)^2 / 100; with two seeds 0.78/0.82 the seed
    var 0.02^2 / 2 joins it at Welch-Satterthwaite degrees of freedom."""
    one = pd.DataFrame({"cell": ["a"], "seed": [1], "best_sts_pearson": [0.8],
                        "dev_examples_sts": [103]})  # fmt: skip
    row = aggregate.summarize(one).iloc[0]
    assert row["ci_high"] - 0.8 == pytest.approx(1.959964 * 0.036, rel=1e-5)
    two = pd.DataFrame({"cell": ["a", "a"], "seed": [1, 2], "best_sts_pearson": [0.78, 0.82],
                        "dev_examples_sts": [103, 103]})  # fmt: skip
    row = aggregate.summarize(two).iloc[0]
    seed_var, dev_var = 0.02**2 * 2 / 2, 0.036**2
    df = (seed_var + dev_var) ** 2 / seed_var**2
    half = stats.t.ppf(0.975, df) * np.sqrt(seed_var + dev_var)
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(0.8 - half), pytest.approx(0.8 + half))
    assert 1.96 * np.sqrt(seed_var + dev_var) < half < 12.71 * np.sqrt(seed_var + dev_var)


def test_metrics_without_a_closed_form_count_the_seeds_only():
    """Macro F1 has no sampling variance here: one seed is its own interval, three seeds a
    t interval; an interval never leaves the metric's range."""
    runs = pd.DataFrame({"cell": ["a", "b", "b", "b", "c"], "seed": [1, 1, 2, 3, 1],
                         "best_sst_macro_f1": [0.4, 0.5, 0.6, 0.7, None],
                         "best_sst_accuracy": [0.4, 0.5, 0.6, 0.7, 0.99],
                         "dev_examples_sst": [400] * 5})  # fmt: skip
    summary = aggregate.summarize(runs).set_index(["cell", "metric"])
    assert tuple(summary.loc[("a", "macro_f1"), ["ci_low", "ci_high"]]) == (0.4, 0.4)
    b = summary.loc[("b", "macro_f1")]
    assert b["ci_high"] - 0.6 == pytest.approx(4.302653 * 0.1 / np.sqrt(3), rel=1e-4)
    assert ("c", "macro_f1") not in summary.index
    assert summary.loc[("c", "accuracy"), "ci_high"] <= 1.0


def test_runs_without_dev_examples_count_the_seeds_only():
    runs = pd.DataFrame({"cell": ["a"], "seed": [1], "best_sst_accuracy": [0.5]})
    row = aggregate.summarize(runs).iloc[0]
    assert (row["ci_low"], row["ci_high"]) == (0.5, 0.5) and pd.isna(row["dev_examples"])


def test_summary_is_deterministic_and_independent_of_other_cells():
    one = pd.DataFrame({"cell": ["a"] * 3, "seed": [1, 2, 3], "best_sst_accuracy": [0.5, 0.6, 0.9],
                        "dev_examples_sst": [400] * 3})  # fmt: skip
    two = pd.concat([one, pd.DataFrame({"cell": ["b"], "seed": [1], "best_sst_accuracy": [0.1],
                                        "dev_examples_sst": [400]})])  # fmt: skip
    first, second = aggregate.summarize(one), aggregate.summarize(two)
    pd.testing.assert_frame_equal(first, second[second["cell"] == "a"].reset_index(drop=True))
    pd.testing.assert_frame_equal(first, aggregate.summarize(one))


def test_cli_writes_three_csvs_and_no_temporary_files(runs, tmp_path):
    out = tmp_path / "results"
    code = aggregate.main(
        ["--runs", *map(str, runs), "--metrics-csv", str(out / "metrics.csv"),
         "--summary-csv", str(out / "summary.csv"), "--epochs-csv", str(out / "epochs.csv")]
    )  # fmt: skip
    assert code == 0
    assert sorted(os.listdir(out)) == ["epochs.csv", "metrics.csv", "summary.csv"]
    summary = aggregate.read_summary(out / "summary.csv")
    assert list(summary.columns) == aggregate.SUMMARY_COLUMNS
    assert set(summary["stage"]) == {"best", "final"}
    assert (summary["n"] == 3).all()
    assert (summary["dev_examples"] == 500).all()
    metrics = pd.read_csv(out / "metrics.csv")
    assert (metrics.loc[metrics["cell"] == "sst-base", "dev_examples_sst"] == 500).all()


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
    from workflow_src.spec.config import TrainConfig

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
