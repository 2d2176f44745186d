"""The paper's findings, checked against the reproduced runs.

Claims live in `report/claims.yaml`, each a list of comparisons between cells on a task's primary
metric, in percentage points (the format is documented at the top of that file). A comparison's
difference `left - right` gets a 95% bootstrap interval: every cell's seeds are resampled
independently (one draw per cell, shared by all its tasks, so a multi-task run's tasks stay
paired), from a generator seeded by the claim and comparison. The verdict reads the whole
interval: reproduced when all of it satisfies the comparison, contradicted when all of it
violates it, inconclusive when it straddles the line. With a single seed the interval is the
point itself, so verdicts then rest on one run each; the report says so.

No torch here; `workflow_src.report` renders the results.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from workflow_src.aggregate import CONFIDENCE, N_BOOTSTRAP, key_seed
from workflow_src.grid import PRIMARY_METRIC, TASKS, Table

OPS = {
    "greater": "left > right + {m}",
    "less": "left < right - {m}",
    "within": "|left - right| <= {m}",
    "not_greater": "left <= right + {m}",
}
REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"


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


@dataclass(frozen=True)
class ComparisonResult:
    comparison: Comparison
    left: float  # point estimates (mean over seeds), percentage points
    right: float
    diff: float
    low: float  # bootstrap interval of the difference
    high: float
    n: int  # fewest seeds behind any term
    verdict: str
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClaimResult:
    claim: Claim
    verdict: str
    results: tuple[ComparisonResult, ...]

    @property
    def n(self) -> int:
        return min((r.n for r in self.results), default=0)


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
            )
        )
    return claims


# ----------------------------------------------------------------------------- values


def run_values(runs: pd.DataFrame, stage: str = "best") -> dict[tuple[str, str], np.ndarray]:
    """(cell, task) -> primary-metric values over seeds, in percent, from metrics.csv rows."""
    values = {}
    for task, metric in PRIMARY_METRIC.items():
        column = f"{stage}_{task}_{metric}"
        if column not in runs.columns:
            continue
        for cell, series in runs.sort_values("seed").groupby("cell")[column]:
            series = series.dropna()
            if len(series):
                values[(str(cell), task)] = series.to_numpy(dtype=float) * 100
    return values


def paper_values(
    tables: dict[int, Table], paper: dict, numbers
) -> dict[tuple[str, str], np.ndarray]:
    """(cell, task) -> the paper's value, looked up in `numbers` in order (first match wins)."""
    values: dict[tuple[str, str], np.ndarray] = {}
    for number in numbers:
        table, printed = tables[number], paper["tables"][number]
        for row in table.rows:
            for column, cell in zip(table.columns, row.cells, strict=True):
                value = paper_value(printed, row.label, column)
                if value is not None:
                    values.setdefault((cell, row.task), np.array([value]))
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


def evaluate_comparison(
    comparison: Comparison,
    values: dict[tuple[str, str], np.ndarray],
    seed: int,
    n_boot: int = N_BOOTSTRAP,
) -> ComparisonResult:
    missing = tuple(sorted({str(t) for t in comparison.terms() if (t.cell, t.task) not in values}))
    if missing:
        nan = math.nan
        return ComparisonResult(comparison, nan, nan, nan, nan, nan, 0, INCONCLUSIVE, missing)

    def point(terms) -> float:
        return float(sum(t.sign * values[(t.cell, t.task)].mean() for t in terms))

    left, right = point(comparison.left), point(comparison.right)
    cells = sorted({t.cell for t in comparison.terms()})
    sizes = {
        cell: {len(values[(t.cell, t.task)]) for t in comparison.terms() if t.cell == cell}
        for cell in cells
    }
    n = min(min(s) for s in sizes.values())
    if all(max(s) == 1 for s in sizes.values()):
        low = high = left - right
    else:
        rng = np.random.default_rng(seed)
        draws = {cell: rng.integers(0, max(s), size=(n_boot, max(s))) for cell, s in sizes.items()}
        diff = np.zeros(n_boot)
        for term in comparison.terms():
            sample = values[(term.cell, term.task)]
            diff += term.sign * sample[draws[term.cell] % len(sample)].mean(axis=1)
        tail = (1 - CONFIDENCE) / 2 * 100
        low, high = (float(x) for x in np.percentile(diff, [tail, 100 - tail]))
    verdict = comparison_verdict(comparison.op, comparison.margin, low, high)
    return ComparisonResult(comparison, left, right, left - right, low, high, n, verdict)


def evaluate(
    claims: list[Claim],
    values: dict[tuple[str, str], np.ndarray],
    n_boot: int = N_BOOTSTRAP,
    base_seed: int = 0,
) -> list[ClaimResult]:
    """Each claim's verdict: reproduced when at least `at_least` comparisons are reproduced,
    contradicted when too many are contradicted for that to be possible, else inconclusive."""
    outcomes = []
    for claim in claims:
        results = tuple(
            evaluate_comparison(c, values, key_seed(base_seed, claim.id, str(i)), n_boot)
            for i, c in enumerate(claim.comparisons)
        )
        verdicts = [r.verdict for r in results]
        if verdicts.count(REPRODUCED) >= claim.at_least:
            verdict = REPRODUCED
        elif verdicts.count(CONTRADICTED) > len(verdicts) - claim.at_least:
            verdict = CONTRADICTED
        else:
            verdict = INCONCLUSIVE
        outcomes.append(ClaimResult(claim, verdict, results))
    return outcomes


def evaluate_on_paper(claims: list[Claim], tables: dict[int, Table], paper: dict):
    """Each claim checked against the paper's own numbers from its `paper_tables`."""
    return [
        evaluate([claim], paper_values(tables, paper, claim.paper_tables))[0] for claim in claims
    ]
