"""The claims' verdicts read from claims.csv: grouped by claim, sentences, newer columns."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import REPO_ROOT
from workflow_src.analysis.claims import load_claims
from workflow_src.render import forest, verdicts

SHIPPED = REPO_ROOT / "reference" / "cpu" / "claims.csv"
CLAIMS = REPO_ROOT / "report" / "claims.yaml"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return verdicts.read_claims_csv(SHIPPED)


def test_views_follow_claims_yaml_and_keep_every_comparison(frame):
    views = verdicts.claim_views(frame, load_claims(CLAIMS))
    assert [v.claim.id for v in views] == list(dict.fromkeys(frame["claim"]))
    assert sum(len(v.comparisons) for v in views) == len(frame)
    first = views[0].comparisons[0]
    assert first.op == "within" and first.margin == 2.5 and first.low <= first.high
    shown = [c.fragile for v in views for c in v.comparisons]
    assert shown == [str(f) == "True" for f in frame["fragile"]]  # as the shipped claims.csv says


def test_one_sentence_per_verdict_class_naming_its_findings(frame):
    views = verdicts.claim_views(frame, load_claims(CLAIMS))
    found = verdicts.sentences(views, "cpu")
    per_claim = frame.drop_duplicates("claim").set_index("claim")["claim_verdict"]
    assert [s["verdict"] for s in found] == [v for v in verdicts.VERDICTS if v in set(per_claim)]
    for sentence in found:
        count = int((per_claim == sentence["verdict"]).sum())
        words = verdicts.VERDICT_WORDS[sentence["verdict"]]
        fragile = sum(v.fragile for v in views if v.verdict == sentence["verdict"])
        assert sentence["lead"].startswith(
            f"{count} of the paper's {len(views)} findings {words} at the cpu scale"
        )
        assert (f"({fragile} of them fragile)" in sentence["lead"]) == (fragile > 0)
        numbers = [n for n, _ in sentence["claims"]]
        assert [views[n - 1].verdict for n in numbers] == [sentence["verdict"]] * count


def test_a_scale_that_trains_some_claims_numbers_them_as_claims_yaml_and_says_how_many(frame):
    """A partial grid (the regime: no Quora, no multi-task) decides only some claims: each keeps
    its claims.yaml number, so claim 7 is claim 7 in the README, the report and the forest plot
    of every scale, and the sentences say of how many of the paper's findings they speak."""
    known = load_claims(CLAIMS)
    kept = [claim.id for claim in known][1::2]
    views = verdicts.claim_views(frame[frame["claim"].isin(kept)], known)
    assert [v.number for v in views] == [[c.id for c in known].index(i) + 1 for i in kept]
    found = verdicts.sentences(views, "regime")
    assert sorted(n for s in found for n, _ in s["claims"]) == [v.number for v in views]
    for sentence in found:
        count = sum(v.verdict == sentence["verdict"] for v in views)
        assert sentence["lead"].startswith(
            f"{count} of the {len(views)} findings that the regime scale trains "
            f"(of the paper's {len(known)}) {verdicts.VERDICT_WORDS[sentence['verdict']]} there"
        )


def test_newer_columns_are_shown_when_present(frame):
    """fragile, claim_fragile, robust_verdict and seeds_needed (issue 22's analysis)."""
    richer = frame.assign(
        fragile=False, claim_fragile=False, robust_verdict=frame["verdict"], seeds_needed=""
    )
    richer.loc[0, ["fragile", "claim_fragile", "seeds_needed"]] = [True, True, "> 20"]
    richer["claim_fragile"] = richer["claim"] == richer.loc[0, "claim"]
    views = verdicts.claim_views(richer, load_claims(CLAIMS))
    assert views[0].fragile and not views[1].fragile
    assert views[0].comparisons[0].fragile and views[0].comparisons[0].seeds_needed == "> 20"
    assert "1 of them fragile" in next(
        s["lead"] for s in verdicts.sentences(views, "cpu") if s["verdict"] == views[0].verdict
    )


def test_a_claims_csv_from_another_claims_yaml_is_refused_by_name(frame, tmp_path):
    odd = frame.copy()
    odd.loc[0, "claim"] = "no-such-claim"
    with pytest.raises(verdicts.VerdictsError, match="no-such-claim"):
        verdicts.claim_views(odd, load_claims(CLAIMS))
    odd = frame.copy()
    odd.loc[0, "comparison"] = "|a:sst - b:sst| <= 9"
    with pytest.raises(verdicts.VerdictsError, match="is not one of claim"):
        verdicts.claim_views(odd, load_claims(CLAIMS))
    lenient = verdicts.claim_views(odd, load_claims(CLAIMS), strict=False)  # another scale
    assert sum(len(v.comparisons) for v in lenient) == len(frame) - 1
    path = tmp_path / "other.csv"
    frame.drop(columns=["ci_low"]).to_csv(path, index=False)
    with pytest.raises(verdicts.VerdictsError, match=r"other.csv: not a claims.csv.*ci_low"):
        verdicts.read_claims_csv(path)


def test_the_forest_plot_draws_one_row_per_comparison_and_a_second_scale(frame):
    views = verdicts.claim_views(frame, load_claims(CLAIMS))
    figure = forest.draw({"cpu": views})
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert len(labels) == len(frame)
    assert sum(label.startswith("[") for label in labels) == len(views)
    one = len(figure.axes[0].lines)
    two = len(forest.draw({"cpu": views, "regime": views}).axes[0].lines)
    assert two - one == 2 * len(frame)  # a second interval and marker on every row
    files = forest.render({"cpu": views})
    assert files["png"].startswith(b"\x89PNG") and files["pdf"].startswith(b"%PDF")


@pytest.mark.parametrize(
    ("op", "margin", "band"),
    [("greater", 1, (1, 50)), ("less", 2, (-50, -2)), ("within", 2.5, (-2.5, 2.5)),
     ("not_greater", 1, (-50, 1))],
)  # fmt: skip
def test_the_band_is_where_the_claims_rule_holds(op, margin, band):
    assert forest.holds(op, margin, 50) == band
