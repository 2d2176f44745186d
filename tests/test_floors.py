"""Every single-task BERT cell against the BiLSTM and the majority class, with intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workflow_src.analysis import floors
from workflow_src.analysis.outcomes import Outcomes
from workflow_src.analysis.statistics import example_scores

N = 1000
IDS = tuple(f"id{i:04d}" for i in range(N))
RNG = np.random.default_rng(0)
SST_GOLD = RNG.choice(5, N, p=[0.1, 0.25, 0.2, 0.3, 0.15]).astype(float)  # majority: 3, 30%
STS_GOLD = RNG.uniform(0, 5, N)


def sst_outcomes(right: float, seeds=(1, 2, 3), seed: int = 1) -> Outcomes:
    """SST predictions right on a fraction `right` of the examples (other examples off by one)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in seeds:
        prediction = (SST_GOLD + 1) % 5
        hit = rng.random(N) < right
        prediction[hit] = SST_GOLD[hit]
        rows.append(prediction)
    return Outcomes(tuple(seeds), IDS, SST_GOLD, np.stack(rows))


def sts_outcomes(noise: float, seeds=(1, 2, 3)) -> Outcomes:
    rng = np.random.default_rng(7)
    rows = [STS_GOLD + rng.normal(0, noise, N) for _ in seeds]
    return Outcomes(tuple(seeds), IDS, STS_GOLD, np.stack(rows))


def runs_frame(cells: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """metrics.csv's columns that floors reads: cell -> (model, tasks)."""
    return pd.DataFrame(
        [{"cell": c, "model": m, "tasks": t} for c, (m, t) in cells.items() for _ in range(3)]
    )


def test_the_majority_class_is_the_most_frequent_dev_label_and_r_0_for_sts():
    sst = floors.majority_outcomes(sst_outcomes(0.5), "sst")
    assert sst.seeds == (1, 2, 3) and set(sst.predictions.ravel()) == {3.0}
    assert (sst.predictions == SST_GOLD).mean() == pytest.approx((SST_GOLD == 3).mean())
    tie = Outcomes((1,), ("a", "b", "c", "d"), np.array([2.0, 0.0, 2.0, 0.0]), np.zeros((1, 4)))
    assert floors.majority_outcomes(tie, "quora").predictions.tolist() == [[0.0] * 4]  # lower
    sts = floors.majority_outcomes(sts_outcomes(1.0), "sts")
    assert example_scores("pearson", sts.predictions, STS_GOLD).mean(1).tolist() == [0.0] * 3


def test_single_task_bert_cells_leave_out_the_bilstm_and_the_multitask_runs():
    runs = runs_frame(
        {
            "sst-base": ("bert", "sst"),
            "sst-bilstm": ("bilstm", "sst"),
            "multitask-additive": ("bert", "sst+quora+sts"),
            "sts-base": ("bert", "sts"),
        }
    )
    assert floors.single_task_bert_cells(runs) == [("sst-base", "sst"), ("sts-base", "sts")]


def test_a_trained_cell_clears_a_cell_at_the_floor_is_unclear_and_a_broken_one_is_below():
    outcomes = {
        ("sst-bilstm", "sst"): sst_outcomes(0.30, seed=1),
        ("sst-base", "sst"): sst_outcomes(0.50, seed=2),  # 50% against 30% and 30%
        ("sst-lr1e-6", "sst"): sst_outcomes(0.30, seed=3),  # at both floors
        ("sst-dropout0.1", "sst"): sst_outcomes(0.05, seed=4),  # far below both
        ("sts-bilstm", "sts"): sts_outcomes(20.0),  # r about 0.07
        ("sts-base", "sts"): sts_outcomes(1.0),  # r about 0.8
    }
    cells = ["sst-base", "sst-lr1e-6", "sst-dropout0.1", "sts-base"]
    runs = runs_frame({c: ("bert", c.split("-")[0]) for c in cells})
    frame = floors.floors_frame(runs, outcomes).set_index(["cell", "floor"])
    assert list(frame.columns) == [c for c in floors.COLUMNS if c not in ("cell", "floor")]
    assert frame.loc[("sst-base", "sst-bilstm"), "verdict"] == floors.CLEARS
    assert frame.loc[("sst-base", floors.MAJORITY), "verdict"] == floors.CLEARS
    assert frame.loc[("sst-base", floors.MAJORITY), "floor_value"] == pytest.approx(
        100 * (SST_GOLD == 3).mean()
    )
    assert frame.loc[("sst-lr1e-6", "sst-bilstm"), "verdict"] == floors.UNCLEAR
    assert frame.loc[("sst-dropout0.1", floors.MAJORITY), "verdict"] == floors.BELOW
    assert frame.loc[("sts-base", floors.MAJORITY), "floor_value"] == 0.0
    assert frame.loc[("sts-base", floors.MAJORITY), "verdict"] == floors.CLEARS
    row = frame.loc[("sst-base", "sst-bilstm")]
    assert row.ci_low < row.difference < row.ci_high and row.seeds == 3
    assert row.df > 1 and row.fragile in (True, False)


def test_the_interval_widens_with_the_spread_between_seeds():
    """Same mean accuracy, seeds far apart: the seed variance enters the interval."""
    steady = sst_outcomes(0.45)
    spread = Outcomes(
        steady.seeds,
        IDS,
        SST_GOLD,
        np.stack([sst_outcomes(r, seeds=(1,), seed=9).predictions[0] for r in (0.30, 0.45, 0.60)]),
    )
    widths = []
    for cell_outcomes in (steady, spread):
        outcomes = {("sst-base", "sst"): cell_outcomes, ("sst-bilstm", "sst"): sst_outcomes(0.3)}
        frame = floors.floors_frame(runs_frame({"sst-base": ("bert", "sst")}), outcomes)
        row = frame[frame.floor == floors.MAJORITY].iloc[0]
        widths.append(row.ci_high - row.ci_low)
    assert widths[1] > 2 * widths[0]


def test_expected_failures_are_shown_but_not_counted_and_missing_floors_say_no_runs():
    outcomes = {
        ("sst-base", "sst"): sst_outcomes(0.5, seed=2),
        ("sst-finetune-none", "sst"): sst_outcomes(0.05, seed=3),
    }
    runs = runs_frame({"sst-base": ("bert", "sst"), "sst-finetune-none": ("bert", "sst")})
    frame = floors.floors_frame(runs, outcomes)
    assert set(frame.loc[frame.floor == "sst-bilstm", "verdict"]) == {floors.NO_RUNS}
    failing = frame[frame.cell == "sst-finetune-none"]
    assert failing.expected_to_fail.all()
    assert failing.loc[failing.floor == floors.MAJORITY, "verdict"].item() == floors.BELOW
    short = floors.shortfalls(frame)
    assert list(short.cell) == ["sst-base"] and list(short.verdict) == [floors.NO_RUNS]
    assert floors.summary(frame) == (
        "1 of the 1 single-task BERT cells that should train do not clear both floors "
        "(sst-base vs sst-bilstm: no runs)."
    )
    cleared = frame[frame.cell != "sst-base"]
    assert (
        floors.summary(cleared)
        == "All 0 single-task BERT cells that should train clear both floors."
    )
