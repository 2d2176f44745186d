"""The paper's findings as data: the claims' language, and claims checked on the paper's numbers.

Claims live in `report/claims.yaml`, each a list of comparisons between cells on a task's primary
metric, in percentage points (the format is documented at the top of that file). This module
reads them (`load_claims`; for runs of some cells only, what those decide: `Claim.scope`, the
claims.csv column, says what a claim was not decided on), holds the verdict rules (`comparison_verdict`, `claim_result`) and
checks each claim against the paper's printed values (`evaluate_on_paper`: one number per cell,
so the interval is the point itself).

Against the runs: `workflow_src.analysis.verdicts` (the statistics: `workflow_src.analysis.
statistics`; reading the runs: `workflow_src.analysis.outcomes`). No torch here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import yaml

from workflow_src.analysis.statistics import CONTRADICTED, INCONCLUSIVE, REPRODUCED, verdict
from workflow_src.spec import selection
from workflow_src.spec.grid import Table
from workflow_src.spec.tasks import TASKS

OPS = {
    "greater": "left > right + {m}",
    "less": "left < right - {m}",
    "within": "|left - right| <= {m}",
    "not_greater": "left <= right + {m}",
}
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE)
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
    "df",  # degrees of freedom of the interval's t
    "seeds_needed",  # inconclusive: seeds per cell expected to decide it ("> 20", "never")
    "robust_verdict",  # under the cautious variant and a margin 10% tighter
    "fragile",  # verdict != robust_verdict
    "claim_fragile",  # the claim's verdict flips under the cautious variant
    "pairing",  # how the cells' seeds are treated
    "selection",  # how the epoch was chosen, and the verdict at the last epoch
    "scope",  # "" when decided on all its comparisons, else which the runs lack (selection)
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
    scope: str = ""  # "" when decided on all its comparisons, else what was left out and why


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
    p_value: float = math.nan  # of "the comparison fails at its margin" (statistics.p_value)
    test: str = ""  # which test
    df: float = math.inf  # degrees of freedom of the interval
    seeds_needed: str = ""  # inconclusive: the seeds expected to decide it
    robust_verdict: str = ""  # the cautious variant's verdict ("" on the paper's numbers)
    pairing: str = ""
    selection: str = ""

    @property
    def fragile(self) -> bool:
        return bool(self.robust_verdict) and self.robust_verdict != self.verdict


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

    @property
    def robust_verdict(self) -> str:
        """The claim's verdict from its comparisons' robust verdicts."""
        verdicts = [r.robust_verdict or r.verdict for r in self.results]
        return claim_verdict(self.claim, verdicts) if self.results else self.verdict

    @property
    def fragile(self) -> bool:
        return self.robust_verdict != self.verdict


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


def _document(path: str | Path) -> list:
    """The `claims` list of a claims.yaml; a file that is not one is a ClaimsError naming it."""
    try:
        document = yaml.safe_load(Path(path).read_text())
    except OSError as error:
        raise ClaimsError(f"{path}: cannot read ({error.strerror})") from error
    except yaml.YAMLError as error:
        raise ClaimsError(f"{path}: not valid YAML ({error})") from error
    entries = document.get("claims") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ClaimsError(f"{path}: should hold `claims:`, a list of mappings")
    return entries


def _comparisons(spec: dict, where: str, known_cells) -> list[Comparison]:
    if not isinstance(spec, dict) or spec.get("op") not in OPS:
        op = spec.get("op") if isinstance(spec, dict) else spec
        raise ClaimsError(f"{where}: op must be one of {sorted(OPS)}, got {op!r}")
    missing = [key for key in ("left", "right") if not isinstance(spec.get(key), str)]
    if missing:
        raise ClaimsError(f"{where}: a comparison lacks {' and '.join(missing)}: {spec}")
    comparisons = []
    for task in spec.get("tasks", TASKS):
        comparison = Comparison(
            task,
            parse_side(spec["left"], task),
            spec["op"],
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
    return comparisons


def load_claims(path: str | Path, known_cells=None, cells=None) -> list[Claim]:
    """Read claims.yaml; with `known_cells`, every cell named must be one of them.

    With `cells` (those that have runs), each claim is decided on what runs of them can decide
    (`workflow_src.spec.selection.restrict_claims`): it keeps the comparisons whose cells all
    have runs, its `at_least` capped at their number, and its `scope` says what was left out;
    a claim with no comparison left is left out. The whole file is checked first."""
    entries = _document(path)
    claims = [_claim(entry, path, known_cells) for entry in entries]
    if cells is None:
        return claims
    document, notes = selection.restrict_claims({"claims": entries}, cells)
    return [
        replace(_claim(entry, path, None), scope=notes.get(str(entry["id"]), ""))
        for entry in document["claims"]
    ]


def _claim(entry: dict, path: str | Path, known_cells) -> Claim:
    """One entry of claims.yaml as a Claim; a ClaimsError names the file and the claim."""
    where = f"{path}: claim {entry.get('id', '?')!r}"
    if "id" not in entry or "text" not in entry:
        raise ClaimsError(f"{where}: every claim needs an `id` and a `text`")
    try:
        comparisons = [
            c for s in entry.get("compare", []) for c in _comparisons(s, where, known_cells)
        ]
    except ClaimsError as error:
        raise ClaimsError(
            str(error) if str(error).startswith(str(path)) else f"{where}: {error}"
        ) from None
    if not comparisons:
        raise ClaimsError(f"{where}: no comparisons")
    at_least = int(entry.get("at_least", len(comparisons)))
    if not 1 <= at_least <= len(comparisons):
        raise ClaimsError(f"{where}: at_least must be 1..{len(comparisons)}")
    return Claim(
        str(entry["id"]),
        str(entry["text"]),
        str(entry.get("source", "")),
        tuple(int(n) for n in entry.get("paper_tables", ())),
        tuple(comparisons),
        at_least,
        str(entry.get("quote", "")),
    )


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
    """Reproduced when all of [low, high] satisfies the comparison, contradicted when all of it
    violates it, inconclusive when it straddles the line."""
    if op not in OPS:
        raise ClaimsError(f"unknown op {op!r}")
    return verdict(op, margin, low, high)


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


def claim_verdict(claim: Claim, verdicts: list[str]) -> str:
    """Reproduced when at least `at_least` comparisons are reproduced, contradicted when too
    many are contradicted for that to be possible, else inconclusive."""
    if verdicts.count(REPRODUCED) >= claim.at_least:
        return REPRODUCED
    if verdicts.count(CONTRADICTED) > len(verdicts) - claim.at_least:
        return CONTRADICTED
    return INCONCLUSIVE


def claim_result(claim: Claim, results: tuple[ComparisonResult, ...]) -> ClaimResult:
    """The claim's verdict (`claim_verdict`) from its comparisons' results."""
    return ClaimResult(claim, claim_verdict(claim, [r.verdict for r in results]), results)


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
            "df": r.df,
            "seeds_needed": r.seeds_needed,
            "robust_verdict": r.robust_verdict or r.verdict,
            "fragile": r.fragile,
            "claim_fragile": claim.fragile,
            "pairing": r.pairing,
            "selection": r.selection,
            "scope": claim.claim.scope,
        }
        for claim in results
        for r in claim.results
    ]
    return pd.DataFrame(rows, columns=CSV_COLUMNS)
