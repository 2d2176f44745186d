"""The paper's findings, checked against the reproduced runs and against the paper's own numbers.

Claims live in `report/claims.yaml`, each a list of comparisons between cells on a task's primary
metric, in percentage points (the format is documented at the top of that file).

Against the runs (`evaluate_runs`), from each run's dev predictions: a comparison's difference
`left - right` gets a 95% interval that counts both sources of noise, the dev sample (the cells
paired on the same dev examples) and the seeds, and a paired test of "no difference" with its
p-value (the statistics section below says how). The verdict reads the whole interval:
reproduced when all of it satisfies the comparison, contradicted when all of it violates it,
inconclusive when it straddles the line. A claim decided on fewer than MIN_SEEDS seeds per cell
is indicative. `claims_frame` gives the rows of results/<preset>/claims.csv.

Against the paper (`evaluate_on_paper`): the paper's printed values, one number per cell, so
the interval is the point itself.

No torch here; `workflow_src.render.report` renders the results.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from workflow_src.analysis.aggregate import CONFIDENCE, N_BOOTSTRAP, key_seed
from workflow_src.spec.grid import Table
from workflow_src.spec.tasks import PRIMARY_METRIC, TASKS

OPS = {
    "greater": "left > right + {m}",
    "less": "left < right - {m}",
    "within": "|left - right| <= {m}",
    "not_greater": "left <= right + {m}",
}
REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"
NO_NUMBERS = "no numbers"  # on the paper: a claim made in words, with no table behind it
MIN_SEEDS = 3  # a verdict on fewer seeds per cell is labelled indicative
CSV_COLUMNS = [
    "claim",
    "comparison",
    "task",
    "left",
    "right",
    "difference",
    "ci_low",
    "ci_high",
    "p_value",
    "test",
    "seeds",
    "verdict",
    "indicative",
    "claim_verdict",
]


class ClaimsError(ValueError):
    """claims.yaml does not follow its format."""


@dataclass(frozen=True)
class Term:
    sign: int  # +1 or -1
    cell: str
    task: str

    def __str__(self) -> str:
        return f"{self.cell}:{self.task}"


@dataclass(frozen=True)
class Comparison:
    task: str
    left: tuple[Term, ...]
    op: str
    right: tuple[Term, ...]
    margin: float  # percentage points

    def terms(self) -> tuple[Term, ...]:
        return self.left + tuple(Term(-t.sign, t.cell, t.task) for t in self.right)

    def describe(self) -> str:
        def side(terms):
            text = " ".join(f"{'-' if t.sign < 0 else '+'} {t}" for t in terms)
            return text[2:] if text.startswith("+ ") else text

        rule = OPS[self.op].replace("left", side(self.left)).replace("right", side(self.right))
        return rule.format(m=f"{self.margin:g}")


@dataclass(frozen=True)
class Claim:
    id: str
    text: str
    source: str
    paper_tables: tuple[int, ...]
    comparisons: tuple[Comparison, ...]
    at_least: int  # comparisons that must be reproduced (all of them unless set)
    quote: str = ""  # the paper's own sentence


@dataclass(frozen=True)
class ComparisonResult:
    comparison: Comparison
    left: float  # point estimates (mean over seeds), percentage points
    right: float
    diff: float
    low: float  # 95% interval of the difference (dev examples and seeds)
    high: float
    n: int  # fewest seeds behind any term
    verdict: str
    missing: tuple[str, ...] = ()
    p_value: float = math.nan  # paired test of "no difference" on the dev examples
    test: str = ""  # which test


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    verdict: str
    results: tuple[ComparisonResult, ...]

    @property
    def n(self) -> int:
        return min((r.n for r in self.results), default=0)

    @property
    def indicative(self) -> bool:
        """Decided on fewer than MIN_SEEDS seeds: a hint, not a finding."""
        return self.n < MIN_SEEDS


# ----------------------------------------------------------------------------- loading

_TERM = re.compile(r"^(?P<cell>[A-Za-z0-9.\-]+?)(?::(?P<task>[a-z]+))?$")


def parse_side(text: str, task: str) -> tuple[Term, ...]:
    """'a:sts - b:sts' -> (Term(+1, a, sts), Term(-1, b, sts)); a bare cell takes `task`."""
    tokens = text.replace("{task}", task).split()
    terms, sign = [], 1
    for token in tokens:
        if token in "+-":
            sign = 1 if token == "+" else -1
            continue
        match = _TERM.match(token)
        if not match:
            raise ClaimsError(f"bad term {token!r} in {text!r}")
        term_task = match["task"] or task
        if term_task not in TASKS:
            raise ClaimsError(f"unknown task {term_task!r} in {text!r}")
        terms.append(Term(sign, match["cell"], term_task))
        sign = 1
    if not terms:
        raise ClaimsError(f"empty side {text!r}")
    return tuple(terms)


def load_claims(path: str | Path, known_cells=None) -> list[Claim]:
    """Read claims.yaml; with `known_cells`, every cell named must be one of them."""
    document = yaml.safe_load(Path(path).read_text())
    claims = []
    for entry in document.get("claims", []):
        where = f"{path}: claim {entry.get('id', '?')!r}"
        comparisons = []
        for spec in entry.get("compare", []):
            op = spec.get("op")
            if op not in OPS:
                raise ClaimsError(f"{where}: op must be one of {sorted(OPS)}, got {op!r}")
            for task in spec.get("tasks", TASKS):
                comparison = Comparison(
                    task,
                    parse_side(spec["left"], task),
                    op,
                    parse_side(spec["right"], task),
                    float(spec.get("margin", 0.0)),
                )
                unknown = [
                    t.cell
                    for t in comparison.terms()
                    if known_cells is not None and t.cell not in known_cells
                ]
                if unknown:
                    raise ClaimsError(f"{where}: unknown cells {unknown}")
                comparisons.append(comparison)
        if not comparisons:
            raise ClaimsError(f"{where}: no comparisons")
        at_least = int(entry.get("at_least", len(comparisons)))
        if not 1 <= at_least <= len(comparisons):
            raise ClaimsError(f"{where}: at_least must be 1..{len(comparisons)}")
        claims.append(
            Claim(
                str(entry["id"]),
                str(entry["text"]),
                str(entry.get("source", "")),
                tuple(int(n) for n in entry.get("paper_tables", ())),
                tuple(comparisons),
                at_least,
                str(entry.get("quote", "")),
            )
        )
    return claims


# ----------------------------------------------------------------------------- values


def paper_values(tables: dict[int, Table], paper: dict, numbers) -> dict[tuple[str, str], float]:
    """(cell, task) -> the paper's value, looked up in `numbers` in order (first match wins)."""
    values: dict[tuple[str, str], float] = {}
    for number in numbers:
        table, printed = tables[number], paper["tables"][number]
        for row in table.rows:
            for column, cell in zip(table.columns, row.cells, strict=True):
                value = paper_value(printed, row.label, column)
                if value is not None:
                    values.setdefault((cell, row.task), value)
    return values


def paper_value(printed: dict, row: str, column: str) -> float | None:
    """One value of a paper table (paper_results.yaml layout), or None where it has none."""
    if row not in printed["rows"] or column not in printed["columns"]:
        return None
    return float(printed["rows"][row][printed["columns"].index(column)])


# ----------------------------------------------------------------------------- verdicts


def comparison_verdict(op: str, margin: float, low: float, high: float) -> str:
    if op == "greater":
        satisfied, violated = low > margin, high <= margin
    elif op == "less":
        satisfied, violated = high < -margin, low >= -margin
    elif op == "within":
        satisfied = -margin <= low and high <= margin
        violated = high < -margin or low > margin
    elif op == "not_greater":
        satisfied, violated = high <= margin, low > margin
    else:
        raise ClaimsError(f"unknown op {op!r}")
    return REPRODUCED if satisfied else CONTRADICTED if violated else INCONCLUSIVE


def point_comparison(
    comparison: Comparison, values: dict[tuple[str, str], float]
) -> ComparisonResult:
    """A comparison on one number per cell (the paper's): its interval is the point."""
    missing = tuple(sorted({str(t) for t in comparison.terms() if (t.cell, t.task) not in values}))
    if missing:
        nan = math.nan
        return ComparisonResult(comparison, nan, nan, nan, nan, nan, 0, INCONCLUSIVE, missing)

    def point(terms) -> float:
        return float(sum(t.sign * values[(t.cell, t.task)] for t in terms))

    left, right = point(comparison.left), point(comparison.right)
    diff = left - right
    verdict = comparison_verdict(comparison.op, comparison.margin, diff, diff)
    return ComparisonResult(comparison, left, right, diff, diff, diff, 1, verdict)


def claim_result(claim: Claim, results: tuple[ComparisonResult, ...]) -> ClaimResult:
    """Reproduced when at least `at_least` comparisons are reproduced, contradicted when too
    many are contradicted for that to be possible, else inconclusive."""
    verdicts = [r.verdict for r in results]
    if verdicts.count(REPRODUCED) >= claim.at_least:
        verdict = REPRODUCED
    elif verdicts.count(CONTRADICTED) > len(verdicts) - claim.at_least:
        verdict = CONTRADICTED
    else:
        verdict = INCONCLUSIVE
    return ClaimResult(claim, verdict, results)


def evaluate_on_paper(claims: list[Claim], tables: dict[int, Table], paper: dict):
    """Each claim checked against the paper's own numbers from its `paper_tables`; a claim
    the paper makes in words only (no tables) gets NO_NUMBERS."""
    results = []
    for claim in claims:
        if not claim.paper_tables:
            results.append(ClaimResult(claim, NO_NUMBERS, ()))
            continue
        values = paper_values(tables, paper, claim.paper_tables)
        results.append(
            claim_result(claim, tuple(point_comparison(c, values) for c in claim.comparisons))
        )
    return results


# ----------------------------------------------------------------------------- runs: statistics
#
# A comparison's difference D = sum of sign * metric over its terms (cell, task), in points.
# Two sources of noise, added as variances (Bouthillier et al. 2021, "Accounting for variance
# in machine learning benchmarks"):
#   dev sample  the same dev examples for every cell, so the terms are paired per example.
#               Accuracy: the per-example difference d_i = sum of sign * correct (averaged over
#               seeds), var(d) / N, with half a discordant example added either way
#               (Agresti and Min 2005), so that runs which agree on every example still get an
#               interval of about +-2/N. Pearson: a paired bootstrap over examples.
#               Terms on different tasks' dev sets are independent: their variances add.
#   seeds       per cell, the seeds' values of its part of D; sample variance / n per cell
#               (known only with 2 or more seeds).
# Interval: D +- t(df) * sqrt(V_dev + V_seed), df by Welch-Satterthwaite (effectively normal
# with one seed). The paired test (dev sample only) gives the p-value of "no difference".


@dataclass(frozen=True)
class Outcomes:
    """One cell's dev predictions on one task: every seed on the same examples."""

    seeds: tuple[int, ...]
    ids: tuple[str, ...]  # sorted example ids
    gold: np.ndarray  # (N,)
    predictions: np.ndarray  # (S, N), rows in `seeds` order


@dataclass(frozen=True)
class Statistics:
    """Interval and test of one comparison's difference (points), from predictions."""

    diff: float
    low: float
    high: float
    p_value: float
    test: str  # which paired test gave p_value
    seeds: int  # fewest seeds behind any term
    examples: int  # dev examples of the comparison (summed over its tasks)


def load_outcomes(metrics_paths) -> dict[tuple[str, str], Outcomes]:
    """(cell, task) -> its runs' predictions, from each metrics.json and the predictions.csv
    beside it; the seeds of a cell must share their dev examples."""
    runs: dict[tuple[str, str], dict[int, pd.DataFrame]] = {}
    for path in map(Path, metrics_paths):
        run = json.loads(path.read_text())["run"]
        frame = pd.read_csv(path.parent / "predictions.csv", dtype={"id": str})
        for task, rows in frame.groupby("task"):
            rows = rows.sort_values("id")
            runs.setdefault((str(run["cell"]), str(task)), {})[int(run["seed"])] = rows
    outcomes = {}
    for (cell, task), by_seed in runs.items():
        seeds = tuple(sorted(by_seed))
        first = by_seed[seeds[0]]
        ids = tuple(first["id"])
        for seed in seeds[1:]:
            if tuple(by_seed[seed]["id"]) != ids:
                raise ClaimsError(f"{cell} seeds {seeds[0]} and {seed}: different {task} dev ids")
        predictions = np.stack([by_seed[s]["prediction"].to_numpy(float) for s in seeds])
        outcomes[(cell, task)] = Outcomes(seeds, ids, first["gold"].to_numpy(float), predictions)
    return outcomes


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


def pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair: (..., N), (..., N) -> (...); 0 where a row is constant."""
    x = x - x.mean(-1, keepdims=True)
    y = y - y.mean(-1, keepdims=True)
    denominator = np.sqrt((x * x).sum(-1) * (y * y).sum(-1))
    return np.divide(
        (x * y).sum(-1), denominator, out=np.zeros(denominator.shape), where=denominator > 0
    )


@dataclass(frozen=True)
class _TaskPart:
    """One task's share of a comparison: its dev-sample variance and null draws."""

    diff: float
    variance: float
    examples: int
    per_seed: dict[str, np.ndarray]  # cell -> this part's value of each seed of the cell
    d: np.ndarray | None  # accuracy: per-example differences (for the paired test)
    draws: np.ndarray | None  # pearson: bootstrap draws of the difference


def _accuracy_part(terms, gold, predictions) -> _TaskPart:
    correct = [(p == gold).astype(float) * 100 for p in predictions]  # (S, N) points
    d = sum(t.sign * c.mean(0) for t, c in zip(terms, correct, strict=True))
    n = len(d)
    # Agresti-Min: half an example at +-1 difference and one at 0 (in points: +-100).
    adjusted = (np.sum(d**2) + 100.0**2) / (n + 2) - (np.sum(d) / (n + 2)) ** 2
    per_seed = _per_seed(terms, [c.mean(1) for c in correct])
    return _TaskPart(float(d.mean()), adjusted / (n + 2), n, per_seed, d, None)


def _pearson_part(terms, gold, predictions, rng, n_boot) -> _TaskPart:
    n = len(gold)
    index = rng.integers(0, n, size=(n_boot, n))
    draws = np.zeros(n_boot)
    values = []
    for term, p in zip(terms, predictions, strict=True):
        values.append(pearson_rows(p, gold[None, :]) * 100)  # (S,)
        boot = pearson_rows(p[:, index], gold[index][None, :, :]) * 100  # (S, B)
        draws += term.sign * boot.mean(0)
    diff = float(sum(t.sign * v.mean() for t, v in zip(terms, values, strict=True)))
    per_seed = _per_seed(terms, values)
    return _TaskPart(diff, float(draws.var(ddof=1)), n, per_seed, None, draws)


def _per_seed(terms, values: list[np.ndarray]) -> dict[str, np.ndarray]:
    """cell -> signed sum of its terms' per-seed values."""
    cells: dict[str, np.ndarray] = {}
    for term, v in zip(terms, values, strict=True):
        cells[term.cell] = cells.get(term.cell, 0) + term.sign * v
    return cells


def _seed_variance(parts: list[_TaskPart]) -> tuple[float, float]:
    """(V_seed, its Satterthwaite denominator sum (v_c^2 / (n_c - 1))) over the cells."""
    cells: dict[str, np.ndarray] = {}
    for part in parts:
        for cell, v in part.per_seed.items():
            cells[cell] = cells.get(cell, 0) + v
    variance, denominator = 0.0, 0.0
    for v in cells.values():
        if len(v) >= 2:
            share = float(np.var(v, ddof=1)) / len(v)
            variance += share
            denominator += share**2 / (len(v) - 1)
    return variance, denominator


def paired_test(parts: list[_TaskPart], rng, n_perm: int = 5000) -> tuple[float, str]:
    """p-value of "no difference" on the dev examples, and the test that gave it."""
    if len(parts) > 1:  # independent tasks: a normal test on the summed difference
        diff, variance = sum(p.diff for p in parts), sum(p.variance for p in parts)
        z = abs(diff) / math.sqrt(variance) if variance > 0 else 0.0
        return float(2 * stats.norm.sf(z)) if diff else 1.0, "normal, tasks combined"
    (part,) = parts
    if part.draws is not None:
        extreme = np.abs(part.draws - part.diff) >= abs(part.diff) - 1e-12
        return float((1 + extreme.sum()) / (1 + len(part.draws))), "paired bootstrap"
    d = part.d
    if np.all(np.isin(d, (-100.0, 0.0, 100.0))):  # one seed each side: McNemar, exact
        better, worse = int((d > 0).sum()), int((d < 0).sum())
        p = stats.binomtest(better, better + worse).pvalue if better + worse else 1.0
        return float(p), "McNemar exact"
    observed, count = abs(d.mean()), 0
    for start in range(0, n_perm, 500):  # paired permutation: flip each example's sign
        signs = rng.choice((-1.0, 1.0), size=(min(500, n_perm - start), len(d)))
        count += int((np.abs((signs * d).mean(1)) >= observed - 1e-12).sum())
    return (1 + count) / (1 + n_perm), "paired permutation"


def comparison_statistics(
    comparison: Comparison, outcomes: dict, seed: int, n_boot: int = N_BOOTSTRAP
) -> Statistics:
    """The difference, its interval over dev examples and seeds, and the paired test."""
    rng = np.random.default_rng(seed)
    parts = []
    for task in dict.fromkeys(t.task for t in comparison.terms()):
        terms = [t for t in comparison.terms() if t.task == task]
        gold, predictions = _aligned(terms, outcomes)
        if PRIMARY_METRIC[task] == "accuracy":
            parts.append(_accuracy_part(terms, gold, predictions))
        else:
            parts.append(_pearson_part(terms, gold, predictions, rng, n_boot))
    diff = sum(p.diff for p in parts)
    v_dev = sum(p.variance for p in parts)
    v_seed, seed_denominator = _seed_variance(parts)
    variance = v_dev + v_seed
    n_dev = min(p.examples for p in parts)
    denominator = seed_denominator + v_dev**2 / max(1, n_dev - 1)
    df = variance**2 / denominator if denominator > 0 else math.inf
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * math.sqrt(variance)
    p_value, test = paired_test(parts, rng)
    seeds = min(len(outcomes[(t.cell, t.task)].seeds) for t in comparison.terms())
    return Statistics(
        diff, diff - half, diff + half, p_value, test, seeds, sum(p.examples for p in parts)
    )


def side_value(terms: tuple[Term, ...], outcomes: dict) -> float:
    """A side's value in points: each term's metric on its dev set, averaged over seeds."""
    total = 0.0
    for term in terms:
        o = outcomes[(term.cell, term.task)]
        if PRIMARY_METRIC[term.task] == "accuracy":
            values = (o.predictions == o.gold).mean(1) * 100
        else:
            values = pearson_rows(o.predictions, o.gold[None, :]) * 100
        total += term.sign * float(values.mean())
    return total


def run_comparison(
    comparison: Comparison, outcomes: dict, seed: int, n_boot: int = N_BOOTSTRAP
) -> ComparisonResult:
    """One comparison on the runs' predictions: interval, paired test, verdict."""
    missing = tuple(
        sorted({str(t) for t in comparison.terms() if (t.cell, t.task) not in outcomes})
    )
    if missing:
        nan = math.nan
        return ComparisonResult(comparison, nan, nan, nan, nan, nan, 0, INCONCLUSIVE, missing)
    st = comparison_statistics(comparison, outcomes, seed, n_boot)
    verdict = comparison_verdict(comparison.op, comparison.margin, st.low, st.high)
    left, right = side_value(comparison.left, outcomes), side_value(comparison.right, outcomes)
    return ComparisonResult(
        comparison,
        left,
        right,
        st.diff,
        st.low,
        st.high,
        st.seeds,
        verdict,
        (),
        st.p_value,
        st.test,
    )


def evaluate_runs(
    claims: list[Claim], outcomes: dict, n_boot: int = N_BOOTSTRAP, base_seed: int = 0
) -> list[ClaimResult]:
    """Every claim against the runs' predictions (see the statistics above)."""
    return [
        claim_result(
            claim,
            tuple(
                run_comparison(c, outcomes, key_seed(base_seed, claim.id, str(i)), n_boot)
                for i, c in enumerate(claim.comparisons)
            ),
        )
        for claim in claims
    ]


def claims_frame(results: list[ClaimResult]) -> pd.DataFrame:
    """One row per comparison (CSV_COLUMNS): what results/<preset>/claims.csv holds."""
    rows = [
        {
            "claim": claim.claim.id,
            "comparison": r.comparison.describe(),
            "task": r.comparison.task,
            "left": r.left,
            "right": r.right,
            "difference": r.diff,
            "ci_low": r.low,
            "ci_high": r.high,
            "p_value": r.p_value,
            "test": r.test or ("missing: " + " ".join(r.missing) if r.missing else ""),
            "seeds": r.n,
            "verdict": r.verdict,
            "indicative": r.n < MIN_SEEDS,
            "claim_verdict": claim.verdict,
        }
        for claim in results
        for r in claim.results
    ]
    return pd.DataFrame(rows, columns=CSV_COLUMNS)
