"""Claims against runs: intervals over dev examples and seeds, p-values, verdicts, claims.csv.

Synthetic predictions on 400 dev examples, the quick preset's dev size.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from tests.conftest import REPO_ROOT
from workflow_src.analysis import claims, verdicts
from workflow_src.analysis.claims import Claim, Comparison, parse_side
from workflow_src.analysis.outcomes import Outcomes, OutcomesError, load_outcomes
from workflow_src.spec.grid import build_cells

N = 400
CONFIG = yaml.safe_load((REPO_ROOT / "config.yaml").read_text())
IDS = tuple(f"id{i:04d}" for i in range(N))


def comparison(task: str, left: str, right: str, op: str = "greater", margin: float = 0.0):
    return Comparison(task, parse_side(left, task), op, parse_side(right, task), margin)


def accuracy_pair(differ: int, seed: int = 0):
    """Gold SST labels and two prediction vectors: `b` right on 250 examples, `a` on the same
    250 plus `differ` more."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 5, N).astype(float)
    b = gold.copy()
    wrong = rng.choice(N, 150, replace=False)
    b[wrong] = (gold[wrong] + 1) % 5
    a = b.copy()
    a[wrong[:differ]] = gold[wrong[:differ]]
    return gold, a, b


def outcomes_of(task, gold, stream=("bert",), **cells):
    """cell name -> (S, N) predictions (or one (N,) vector) as Outcomes, all of one stream
    (seed-paired) unless `stream` says otherwise per cell."""
    out = {}
    for cell, predictions in cells.items():
        predictions = np.atleast_2d(predictions).astype(float)
        seeds = tuple(range(1, len(predictions) + 1))
        key = stream.get(cell, ("bert",)) if isinstance(stream, dict) else stream
        out[(f"{task}-{cell}", task)] = Outcomes(seeds, IDS, gold, predictions, key)
    return out


def statistics_of(comparison_, out):
    return verdicts.run_comparison(comparison_, out)


def verdict(st, op="greater", margin=0.0):
    return claims.comparison_verdict(op, margin, st.low, st.high)


def test_accuracy_cells_differing_on_2_of_400_examples_are_inconclusive():
    gold, a, b = accuracy_pair(differ=2)
    st = statistics_of(comparison("sst", "sst-a", "sst-b"), outcomes_of("sst", gold, a=a, b=b))
    assert st.diff == pytest.approx(0.5)
    assert st.low < 0 < st.high
    assert verdict(st) == claims.INCONCLUSIVE
    assert verdict(st, "less") == claims.INCONCLUSIVE
    assert st.p_value > 0.05 and st.test == verdicts.TEST


@pytest.mark.parametrize("half", [0, 5, 30, 75])
def test_no_accuracy_difference_under_half_a_point_is_decided_at_400_examples(half):
    """Against margin 0, two cells whose discordant examples are nearly balanced (net 0 or 1,
    under 0.5 points at N = 400) are inconclusive, however many examples they differ on."""
    gold = np.zeros(N)
    for a_only, b_only in ((half, half), (half + 1, half), (half, half + 1)):
        a, b = np.zeros(N), np.zeros(N)  # prediction 0 is right
        b[:a_only] = 1  # only a is right here
        a[a_only : a_only + b_only] = 1  # only b is right here
        st = statistics_of(comparison("sst", "sst-a", "sst-b"), outcomes_of("sst", gold, a=a, b=b))
        assert abs(st.diff) < 0.5
        assert verdict(st) == verdict(st, "less") == claims.INCONCLUSIVE, (a_only, b_only)


def test_accuracy_cells_differing_on_60_of_400_examples_are_decided():
    gold, a, b = accuracy_pair(differ=60)
    out = outcomes_of("sst", gold, a=a, b=b)
    st = statistics_of(comparison("sst", "sst-a", "sst-b"), out)
    assert st.diff == pytest.approx(15.0)
    assert verdict(st) == claims.REPRODUCED
    assert verdict(st, "less") == claims.CONTRADICTED
    assert st.p_value < 1e-10


def test_identical_predictions_still_get_an_interval_of_about_two_examples():
    """Agresti-Min: agreement on every example is not certainty about the cells."""
    gold, a, _ = accuracy_pair(differ=0)
    st = statistics_of(comparison("sst", "sst-a", "sst-b"), outcomes_of("sst", gold, a=a, b=a))
    assert st.diff == 0.0 and st.p_value == 1.0
    assert st.high == pytest.approx(-st.low)
    assert 100 / N < st.high < 2 * 100 / N
    assert verdict(st) == claims.INCONCLUSIVE


def pearson_pair(fixed: int, seed: int = 0):
    """STS gold scores, a noisy prediction `b`, and `a` = `b` with `fixed` examples exact."""
    rng = np.random.default_rng(seed)
    gold = rng.uniform(0, 5, N)
    b = gold + rng.normal(0, 2.0, N)
    a = b.copy()
    a[:fixed] = gold[:fixed]
    return gold, a, b


def test_pearson_cells_differing_on_2_of_400_examples_are_inconclusive():
    gold, a, b = pearson_pair(fixed=2)
    st = statistics_of(comparison("sts", "sts-a", "sts-b"), outcomes_of("sts", gold, a=a, b=b))
    assert abs(st.diff) < 0.5
    assert verdict(st) == claims.INCONCLUSIVE
    assert st.p_value > 0.1


def test_pearson_cells_differing_on_60_of_400_examples_are_decided():
    gold, a, b = pearson_pair(fixed=60)
    out = outcomes_of("sts", gold, a=a, b=b)
    st = statistics_of(comparison("sts", "sts-a", "sts-b"), out)
    r = [stats.pearsonr(x, gold).statistic * 100 for x in (a, b)]
    assert st.diff == pytest.approx(r[0] - r[1])
    assert verdict(st) == claims.REPRODUCED
    assert verdict(st, "less") == claims.CONTRADICTED
    assert st.p_value < 0.01


def test_three_paired_seeds_widen_the_interval_by_their_spread_with_t_at_2_df():
    """Seeds that disagree add their variance with seeds - 1 = 2 degrees of freedom: the t
    interval of the per-seed differences (a's lead over b: 7.5, 15 and 0 points)."""
    gold, a, b = accuracy_pair(differ=30)
    _, a_more, _ = accuracy_pair(differ=60)
    out = outcomes_of("sst", gold, a=np.stack([a, a_more, b]), b=np.stack([b, b, b]))
    st = statistics_of(comparison("sst", "sst-a", "sst-b"), out)
    per_seed = np.array([7.5, 15.0, 0.0])
    assert st.diff == pytest.approx(per_seed.mean())
    standard_error = per_seed.std(ddof=1) / math.sqrt(3)
    assert st.high - st.diff > 0.9 * stats.t.ppf(0.975, 2) * standard_error
    assert st.diff - st.low == pytest.approx(st.high - st.diff)
    assert verdict(st) == claims.INCONCLUSIVE
    assert st.n == 3 and 1.5 < st.df < 4 and st.pairing == "seed-paired"


def test_cells_of_different_streams_are_unpaired_and_say_why():
    gold, a, b = accuracy_pair(differ=30)
    _, a_more, _ = accuracy_pair(differ=60)
    streams = {"a": (("model", "bert"),), "b": (("model", "bilstm"),)}
    out = outcomes_of("sst", gold, streams, a=np.stack([a, a_more, b]), b=np.stack([b, a, b]))
    st = statistics_of(comparison("sst", "sst-a", "sst-b"), out)
    assert st.pairing == "unpaired (model bert vs bilstm)"
    paired = statistics_of(
        comparison("sst", "sst-a", "sst-b"),
        outcomes_of("sst", gold, a=np.stack([a, a_more, b]), b=np.stack([b, a, b])),
    )
    assert paired.diff == pytest.approx(st.diff) and paired.high - paired.low != st.high - st.low


def test_terms_on_two_tasks_add_their_variances():
    """A gain on STS against a gain on SST: independent dev sets, so the variances add."""
    gold_sts, a_sts, b_sts = pearson_pair(fixed=60)
    gold_sst, a_sst, b_sst = accuracy_pair(differ=2)
    out = {
        **outcomes_of("sts", gold_sts, a=a_sts, b=b_sts),
        **outcomes_of("sst", gold_sst, a=a_sst, b=b_sst),
    }
    both = Comparison(
        "sst",
        parse_side("sts-a:sts - sts-b:sts", "sts"),
        "greater",
        parse_side("sst-a:sst - sst-b:sst", "sst"),
        0.0,
    )
    st = statistics_of(both, out)
    alone = [statistics_of(comparison(t, f"{t}-a", f"{t}-b"), out) for t in ("sts", "sst")]
    assert st.diff == pytest.approx(alone[0].diff - alone[1].diff)
    half = [(x.high - x.low) / 2 for x in alone]
    assert (st.high - st.low) / 2 == pytest.approx(math.hypot(*half), rel=0.05)


def test_claims_csv_has_one_row_per_comparison_and_flags_fewer_than_three_seeds():
    gold, a, b = accuracy_pair(differ=60)
    out = outcomes_of("sst", gold, a=a, b=b)
    claim = Claim(
        "a-beats-b",
        "a beats b",
        "",
        (),
        (comparison("sst", "sst-a", "sst-b"), comparison("sst", "sst-a", "sst-c")),
        at_least=1,
    )
    (result,) = verdicts.evaluate_runs([claim], out)
    assert result.verdict == claims.REPRODUCED and result.indicative
    frame = verdicts.claims_frame([result])
    assert list(frame.columns) == claims.CSV_COLUMNS
    assert frame["verdict"].tolist() == [claims.REPRODUCED, claims.INCONCLUSIVE]
    assert frame["indicative"].tolist() == [True, True]
    assert frame.loc[0, "left"] - frame.loc[0, "right"] == pytest.approx(15.0)
    assert frame.loc[1, "test"] == "missing: sst-c:sst"
    assert frame.loc[0, "seeds_needed"] == "" and frame.loc[0, "robust_verdict"] == "reproduced"
    assert frame.loc[0, "selection"] == "one epoch (no selection)"
    assert not frame.loc[0, "fragile"] and not frame.loc[0, "claim_fragile"]


def write_run(root, cell, seed, rows):
    folder = root / cell / f"seed{seed}"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"run": {"cell": cell, "seed": seed}}))
    lines = ["task,id,prediction,gold"] + [",".join(map(str, row)) for row in rows]
    (folder / "predictions.csv").write_text("\n".join(lines) + "\n")
    return folder / "metrics.json"


def test_outcomes_are_read_beside_each_metrics_file_and_aligned_by_id(tmp_path):
    paths = [
        write_run(tmp_path, "multitask-additive", 1, [("sst", "b", 1, 1), ("sst", "a", 2, 0)]),
        write_run(tmp_path, "multitask-additive", 2, [("sst", "a", 0, 0), ("sst", "b", 1, 1)]),
    ]
    (key,) = load_outcomes(paths)
    outcome = load_outcomes(paths)[key]
    assert key == ("multitask-additive", "sst") and outcome.seeds == (1, 2)
    assert outcome.ids == ("a", "b") and outcome.gold.tolist() == [0, 1]
    assert outcome.predictions.tolist() == [[2, 1], [0, 1]]
    paths.append(write_run(tmp_path, "multitask-additive", 3, [("sst", "c", 0, 0)]))
    with pytest.raises(OutcomesError, match=r"seed3.*different sst dev examples"):
        load_outcomes(paths)
    (paths[0].parent / "predictions.csv").write_text("task,id,prediction\nsst,a,1\n")
    with pytest.raises(OutcomesError, match=r"seed1/predictions.csv: missing columns \['gold'\]"):
        load_outcomes(paths[:1])


@pytest.mark.parametrize(
    ("op", "margin", "low", "high", "verdict"),
    [
        ("greater", 0, 0.5, 2.0, "reproduced"),
        ("greater", 0, -2.0, -0.5, "contradicted"),
        ("greater", 0, -0.5, 2.0, "inconclusive"),
        ("less", 5, -9.0, -6.0, "reproduced"),
        ("less", 5, -4.0, -1.0, "contradicted"),
        ("within", 2, -1.0, 1.5, "reproduced"),
        ("within", 2, 2.5, 4.0, "contradicted"),
        ("within", 2, 1.0, 3.0, "inconclusive"),
        ("not_greater", 1, -3.0, 0.5, "reproduced"),
        ("not_greater", 1, 1.5, 3.0, "contradicted"),
    ],
)
def test_verdict_reads_the_whole_interval(op, margin, low, high, verdict):
    assert claims.comparison_verdict(op, margin, low, high) == verdict


def test_a_claim_needs_at_least_its_count_of_reproduced_comparisons():
    """at_least 2 of 3: two decided and one inconclusive is reproduced; one contradicted too
    many makes it contradicted."""
    gold, a, b = accuracy_pair(differ=60)
    _, c, _ = accuracy_pair(differ=2)
    out = {**outcomes_of("sst", gold, a=a, b=b, c=c), **outcomes_of("quora", gold, a=a, b=b)}
    comparisons = (
        comparison("sst", "sst-a", "sst-b"),
        comparison("sst", "sst-c", "sst-b"),
        comparison("quora", "quora-a", "quora-b"),
    )
    claim = Claim("c", "text", "", (), comparisons, at_least=2)
    (result,) = verdicts.evaluate_runs([claim], out)
    assert [r.verdict for r in result.results] == ["reproduced", "inconclusive", "reproduced"]
    assert result.verdict == "reproduced"
    swapped = tuple(replace(c, left=c.right, right=c.left) for c in comparisons)
    reversed_claim = Claim("r", "text", "", (), swapped, at_least=2)
    (result,) = verdicts.evaluate_runs([reversed_claim], out)
    assert result.verdict == "contradicted"


def test_claim_with_missing_runs_is_inconclusive_and_says_which():
    (claim,) = [
        c
        for c in claims.load_claims(REPO_ROOT / "report/claims.yaml")
        if c.id == "multitask-lifts-sts"
    ]
    gold, a, _ = pearson_pair(fixed=0)
    (result,) = verdicts.evaluate_runs([claim], outcomes_of("sts", gold, base=a))
    assert result.verdict == "inconclusive"
    assert result.results[0].missing == ("multitask-additive:sts",)


def test_claims_name_only_cells_of_the_grid():
    cells = set(build_cells(CONFIG["grid"]))
    assert claims.load_claims(REPO_ROOT / "report/claims.yaml", known_cells=cells)
    with pytest.raises(claims.ClaimsError, match="unknown cells"):
        claims.load_claims(REPO_ROOT / "report/claims.yaml", known_cells={"sst-base"})


def test_the_command_decides_the_claims_on_any_folder_of_runs(tmp_path, caplog):
    """`python -m workflow_src.analysis --runs DIR`: claims.csv and floors.csv from a folder of
    runs (fake runs of every cell, 2 seeds), with the columns the report reads."""
    from tests.fake_runs import write_fake_runs
    from workflow_src.analysis import __main__ as command
    from workflow_src.analysis import floors

    write_fake_runs(tmp_path / "runs", "quick", [1, 2])
    out = tmp_path / "out"
    argv = ["--runs", str(tmp_path / "runs"), "--claims", str(REPO_ROOT / "report/claims.yaml")]
    assert command.main([*argv, "--out-dir", str(out)]) == 0
    frame = pd.read_csv(out / "claims.csv", keep_default_na=False)
    assert list(frame.columns) == claims.CSV_COLUMNS
    assert len(frame) > 40 and frame.indicative.all()  # two seeds
    assert not frame.test.str.startswith("missing").any()
    decided = frame.verdict != "inconclusive"
    assert (frame.loc[decided, "seeds_needed"] == "").all()
    assert (frame.loc[~decided, "seeds_needed"] != "").all()
    assert (frame.fragile == (frame.verdict != frame.robust_verdict)).all()
    assert set(pd.read_csv(out / "floors.csv").columns) == set(floors.COLUMNS)
    (tmp_path / "runs" / "quick" / "sst-base" / "seed1" / "predictions.csv").unlink()
    assert command.main([*argv, "--out-dir", str(tmp_path / "again")]) == 1
    assert "sst-base/seed1/predictions.csv: predictions file is missing" in caplog.text
    assert not (tmp_path / "again").exists()


def test_the_command_explains_itself():
    from workflow_src.analysis import __main__ as command

    text = command.parser().format_help()
    assert "--runs" in text and "--out-dir" in text and "claims.csv" in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("claims: [", "not valid YAML"),
        ("just text", "should hold `claims:`"),
        ("claims:\n  - {id: a, compare: []}", "claim 'a': every claim needs an `id` and a `text`"),
        ("claims:\n  - {id: a, text: t, compare: [{op: more, left: x, right: y}]}", "op must be"),
        ("claims:\n  - {id: a, text: t, compare: [{op: greater, left: sst-base}]}", "lacks right"),
        ("claims:\n  - {id: a, text: t, compare: [{op: less, left: 'x:imdb', right: c}]}", "task"),
    ],
)
def test_a_claims_file_that_breaks_the_format_is_an_error_naming_file_and_claim(
    tmp_path, text, message
):
    path = tmp_path / "claims.yaml"
    path.write_text(text)
    with pytest.raises(claims.ClaimsError, match=str(path)) as error:
        claims.load_claims(path)
    assert message in str(error.value)


def test_a_best_epoch_that_is_not_the_last_is_checked_at_the_last_epoch():
    """Runs whose best dev epoch came before their last: the comparison is decided again on the
    last epoch's values (metrics.json's final), here 15 points lower, which undoes it."""
    gold, a, b = accuracy_pair(differ=60)
    seeds = (1, 2, 3)
    best = np.stack([a, a, a])
    out = {
        ("sst-a", "sst"): Outcomes(
            seeds, IDS, gold, best, ("bert",), np.full(3, 62.5), (2, 2, 2), (3, 3, 3)
        ),
        ("sst-b", "sst"): Outcomes(
            seeds, IDS, gold, np.stack([b, b, b]), ("bert",), np.full(3, 62.5), (3, 3, 3), (3, 3, 3)
        ),
    }
    result = statistics_of(comparison("sst", "sst-a", "sst-b"), out)
    assert result.verdict == claims.REPRODUCED
    assert result.selection.startswith("best dev epoch; at the last epoch: inconclusive (differs)")
    assert "+0.00 [" in result.selection


def test_on_the_shipped_runs_cells_sharing_a_random_stream_pair_by_seed():
    """reference/cpu: sts-adamw and sts-base draw the same stream (their per-seed values
    correlate +1.00), so paired by seed the AdamW difference is known to about +-0.06 points
    (unpaired it was +-3.1); an STS head or the BiLSTM changes the stream: unpaired."""
    runs = REPO_ROOT / "reference" / "cpu" / "runs"
    cells = ("sts-base", "sts-adamw", "sts-head-multiply", "sts-bilstm")
    paths = [runs / cell / f"seed{seed}" / "metrics.json" for cell in cells for seed in (1, 2, 3)]
    if not all(path.is_file() for path in paths):
        pytest.skip("reference/cpu runs not shipped in this checkout")
    out = load_outcomes(paths)
    adamw = statistics_of(comparison("sts", "sts-adamw", "sts-base", "not_greater", 1.0), out)
    assert adamw.pairing == "seed-paired" and adamw.verdict == claims.REPRODUCED
    assert -0.1 < adamw.low < adamw.high < 0.1
    head = statistics_of(comparison("sts", "sts-head-multiply", "sts-base"), out)
    assert head.pairing == "unpaired (STS head multiply vs concat)"
    bilstm = statistics_of(comparison("sts", "sts-base", "sts-bilstm"), out)
    assert bilstm.pairing == "unpaired (model bert vs bilstm, batch size 8 vs 64)"
