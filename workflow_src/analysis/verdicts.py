"""The claims decided on the runs' dev predictions: one row of claims.csv per comparison.

Each comparison's difference gets the interval, p-value and degrees of freedom of the
seeds x examples model (`workflow_src.analysis.statistics`, docs/statistics.md), its verdict
from the interval (`claims.comparison_verdict`), and three readings of how much it rests on:
- robust_verdict: the verdict under the cautious variant of the model (the interaction counted
  in both parts, t at seeds - 1 df) with the margin 10% tighter against the verdict in hand; a
  verdict that differs is fragile;
- seeds_needed: for an inconclusive comparison, the seeds per cell expected to decide it;
- selection: the predictions are the best dev epoch's, chosen on the same dev set; the
  comparison is decided again on each run's last epoch (its per-seed values from metrics.json,
  the example-level variance from the best epoch's predictions, the last epoch's not being kept).
A claim decided on fewer than MIN_SEEDS seeds per cell is indicative; `claims_frame` (from
workflow_src.analysis.claims) gives the rows of claims.csv. No torch.
"""

from __future__ import annotations

import math

import numpy as np

from workflow_src.analysis import statistics
from workflow_src.analysis.claims import (
    INCONCLUSIVE,
    Claim,
    ClaimResult,
    ClaimsError,
    Comparison,
    ComparisonResult,
    Term,
    claim_result,
    claims_frame,
    comparison_verdict,
)
from workflow_src.analysis.outcomes import Outcomes
from workflow_src.analysis.statistics import Estimate, Group, example_scores
from workflow_src.spec.tasks import PRIMARY_METRIC

ACCURACY = {task for task, metric in PRIMARY_METRIC.items() if metric == "accuracy"}
TEST = "t, seeds x examples"


def _aligned(terms: list[Term], outcomes: dict) -> tuple[np.ndarray, list[np.ndarray]]:
    """The gold values and each term's (S, N) predictions on the examples all terms share."""
    common = set.intersection(*(set(outcomes[(t.cell, t.task)].ids) for t in terms))
    if not common:
        raise ClaimsError(f"{', '.join(map(str, terms))}: no dev examples in common")
    gold, predictions = None, []
    for term in terms:
        o = outcomes[(term.cell, term.task)]
        keep = np.array([i in common for i in o.ids])
        gold = o.gold[keep] if gold is None else gold
        predictions.append(o.predictions[:, keep])
    return gold, predictions


def _term_scores(
    comparison: Comparison, outcomes: dict, last: bool
) -> list[tuple[Term, np.ndarray]]:
    """Each term's signed (S, N) scores; `last`: rows shifted to the last epoch's values."""
    out = []
    for task in dict.fromkeys(t.task for t in comparison.terms()):
        terms = [t for t in comparison.terms() if t.task == task]
        gold, predictions = _aligned(terms, outcomes)
        for term, p in zip(terms, predictions, strict=True):
            scores = example_scores(PRIMARY_METRIC[task], p, gold)
            if last:
                final = outcomes[(term.cell, term.task)].final
                scores = scores - scores.mean(1, keepdims=True) + final[:, None]
            out.append((term, term.sign * scores))
    return out


def _group_key(outcome: Outcomes) -> tuple:
    return (outcome.stream, outcome.seeds)


def groups_of(comparison: Comparison, outcomes: dict, last: bool = False) -> list[Group]:
    """The comparison's terms grouped by the seeds they share (`statistics` module doc)."""
    tables: dict[tuple, dict[str, np.ndarray]] = {}
    for term, scores in _term_scores(comparison, outcomes, last):
        group = tables.setdefault(_group_key(outcomes[(term.cell, term.task)]), {})
        group[term.task] = group.get(term.task, 0) + scores
    return [Group(scores) for scores in tables.values()]


def pairing(comparison: Comparison, outcomes: dict) -> str:
    """How the comparison's cells' seeds are treated, in words."""
    keys: dict[tuple, list[str]] = {}
    for term in comparison.terms():
        cells = keys.setdefault(_group_key(outcomes[(term.cell, term.task)]), [])
        if term.cell not in cells:
            cells.append(term.cell)
    if len(keys) == 1:
        return "seed-paired" if len(next(iter(keys.values()))) > 1 else "one cell"
    streams = [dict(stream) for stream, _ in keys]
    differ = [
        f"{name} {' vs '.join(dict.fromkeys(str(s[name]) for s in streams))}"
        for name in streams[0]
        if len({str(s[name]) for s in streams}) > 1
    ]
    if not differ:
        differ = ["different seeds"]
    paired = [", ".join(cells) for cells in keys.values() if len(cells) > 1]
    within = f"; seed-paired within {'; '.join(paired)}" if paired else ""
    return f"unpaired ({', '.join(differ)}){within}"


def selection(comparison: Comparison, outcomes: dict, result_verdict: str) -> str:
    """How the epoch was chosen, and the verdict when each run is read at its last epoch."""
    used = [outcomes[(t.cell, t.task)] for t in comparison.terms()]
    if all(o.best_epochs == o.last_epochs for o in used):
        if max(max(o.last_epochs, default=1) for o in used) == 1:
            return "one epoch (no selection)"
        return "best dev epoch = last epoch in every run"
    if any(o.final is None or np.isnan(o.final).any() for o in used):
        return "best dev epoch (no last-epoch values to check it)"
    est = statistics.estimate(groups_of(comparison, outcomes, last=True), ACCURACY)
    low, high = est.interval()
    last = comparison_verdict(comparison.op, comparison.margin, low, high)
    same = "same" if last == result_verdict else "differs"
    return (
        f"best dev epoch; at the last epoch: {last} ({same}), "
        f"{est.diff:+.2f} [{low:+.2f}, {high:+.2f}]"
    )


def side_value(terms: tuple[Term, ...], outcomes: dict) -> float:
    """A side's value in points: each term's metric on its dev set, averaged over seeds."""
    total = 0.0
    for term in terms:
        o = outcomes[(term.cell, term.task)]
        total += term.sign * float(
            example_scores(PRIMARY_METRIC[term.task], o.predictions, o.gold).mean()
        )
    return total


def decide(comparison: Comparison, est: Estimate) -> tuple[str, float, float, str]:
    """(verdict, low, high, robust verdict) of an estimate."""
    low, high = est.interval()
    found = comparison_verdict(comparison.op, comparison.margin, low, high)
    margin = statistics.cautious_margin(comparison.op, comparison.margin, found)
    robust = comparison_verdict(comparison.op, margin, *est.interval(cautious=True))
    return found, low, high, robust


def run_comparison(comparison: Comparison, outcomes: dict) -> ComparisonResult:
    """One comparison on the runs' predictions: interval, p-value, verdict and its readings."""
    missing = tuple(
        sorted({str(t) for t in comparison.terms() if (t.cell, t.task) not in outcomes})
    )
    if missing:
        nan = math.nan
        return ComparisonResult(comparison, nan, nan, nan, nan, nan, 0, INCONCLUSIVE, missing)
    est = statistics.estimate(groups_of(comparison, outcomes), ACCURACY)
    found, low, high, robust = decide(comparison, est)
    p = statistics.p_value(
        comparison.op, comparison.margin, est.diff, math.sqrt(est.variance), est.df
    )
    return ComparisonResult(
        comparison,
        side_value(comparison.left, outcomes),
        side_value(comparison.right, outcomes),
        est.diff,
        low,
        high,
        min(len(outcomes[(t.cell, t.task)].seeds) for t in comparison.terms()),
        found,
        (),
        p,
        TEST,
        est.df,
        statistics.seeds_needed(comparison.op, comparison.margin, est, found),
        robust,
        pairing(comparison, outcomes),
        selection(comparison, outcomes, found),
    )


def evaluate_runs(claims: list[Claim], outcomes: dict) -> list[ClaimResult]:
    """Every claim against the runs' predictions."""
    return [
        claim_result(claim, tuple(run_comparison(c, outcomes) for c in claim.comparisons))
        for claim in claims
    ]


__all__ = ["claims_frame", "evaluate_runs", "run_comparison"]
