"""The claims' verdicts as the report shows them, read from claims.csv (decided by the analysis).

claims.csv (workflow_src.analysis.claims.CSV_COLUMNS) holds one row per comparison: its
difference, 95% interval, verdict and the claim's verdict. This module only reads it and groups
it by claim, in the order of report/claims.yaml (which gives each claim's words, the paper's
sentence and each comparison's rule and margin); it decides nothing. Columns a newer analysis
adds are shown when present and left out when absent: `fragile` / `claim_fragile` (a verdict
that a small change of the analysis would flip), `robust_verdict`, `seeds_needed` (for an
inconclusive comparison: the seeds a decision would take, "never" or "> 20").
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from workflow_src.analysis.claims import (
    CONTRADICTED,
    CSV_COLUMNS,
    INCONCLUSIVE,
    MIN_SEEDS,
    REPRODUCED,
    Claim,
    load_claims,
)
from workflow_src.analysis.floors import COLUMNS as FLOOR_CSV_COLUMNS

log = logging.getLogger(__name__)
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE)
# The columns every claims.csv and floors.csv has: the analysis's own lists up to the columns it
# added later (df, seeds_needed, robust_verdict, fragile, ...), which are shown where present, so
# that a reproduction shipped before them still renders.
REQUIRED = CSV_COLUMNS[: CSV_COLUMNS.index("claim_verdict") + 1]
FLOOR_COLUMNS = FLOOR_CSV_COLUMNS[: FLOOR_CSV_COLUMNS.index("expected_to_fail") + 1]
VERDICT_WORDS = {
    REPRODUCED: "were reproduced",
    CONTRADICTED: "were contradicted",
    INCONCLUSIVE: "stay undecided (inconclusive)",
}


class VerdictsError(ValueError):
    """A claims.csv that does not fit claims.yaml."""


def flag(value) -> bool:
    """A CSV boolean (True/False, 1/0, or missing) as a bool."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value)


def text(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class ComparisonView:
    describe: str
    task: str
    op: str
    margin: float
    left: float
    right: float
    difference: float
    low: float
    high: float
    p_value: float
    test: str
    seeds: int
    verdict: str
    fragile: bool = False
    seeds_needed: str = ""
    robust_verdict: str = ""

    @property
    def missing(self) -> bool:
        return math.isnan(self.difference)

    @property
    def interval(self) -> tuple[float, float, float]:
        """The difference and its 95% interval, in points."""
        return self.difference, self.low, self.high


@dataclass
class ClaimView:
    claim: Claim
    verdict: str
    comparisons: list[ComparisonView] = field(default_factory=list)
    fragile: bool = False
    scope: str = ""  # what a claim on a partial grid was not decided on ("" when decided on all)
    # its place in claims.yaml, from 1: the same claim has one number at every scale
    number: int = 0
    known: int = 0  # how many claims claims.yaml has (the paper's findings)

    @property
    def seeds(self) -> int:
        return min((c.seeds for c in self.comparisons), default=0)

    @property
    def indicative(self) -> bool:
        return self.seeds < MIN_SEEDS

    @property
    def supporting(self) -> list[ComparisonView]:
        """The comparisons whose verdict is the claim's."""
        return [c for c in self.comparisons if c.verdict == self.verdict]

    @property
    def key(self) -> ComparisonView | None:
        """The comparison quoted for the claim: the first whose verdict is the claim's (else the
        first), as the README's answer quotes it."""
        return next(iter(self.supporting or self.comparisons), None)

    def quoted(self, describe: str) -> ComparisonView | None:
        """The comparison `describe` where this scale has a number for it that agrees with its
        claim's verdict, else the key: another scale's verdict is shown beside this one's on the
        same comparison where it can be, and always beside a number that supports it."""
        same = [c for c in self.supporting if c.describe == describe and not c.missing]
        return same[0] if same else self.key


def read_claims_csv(path: str | Path) -> pd.DataFrame:
    """claims.csv, refused (naming the file and the columns) when it is another file."""
    frame = pd.read_csv(path, keep_default_na=True, dtype={"seeds_needed": str})
    missing = [column for column in REQUIRED if column not in frame.columns]
    if missing:
        raise VerdictsError(f"{path}: not a claims.csv (missing columns {missing})")
    return frame


def comparison_view(row: dict, claim: Claim, where: str) -> ComparisonView:
    rules = {c.describe(): c for c in claim.comparisons}
    rule = rules.get(row["comparison"])
    if rule is None:
        raise VerdictsError(
            f"{where}: comparison {row['comparison']!r} is not one of claim {claim.id!r} "
            "in claims.yaml (was the claims.csv decided on another claims.yaml?)"
        )
    return ComparisonView(
        describe=row["comparison"],
        task=row["task"],
        op=rule.op,
        margin=rule.margin,
        left=float(row["left"]),
        right=float(row["right"]),
        difference=float(row["difference"]),
        low=float(row["ci_low"]),
        high=float(row["ci_high"]),
        p_value=float(row["p_value"]),
        test=text(row["test"]),
        seeds=int(row["seeds"]),
        verdict=str(row["verdict"]),
        fragile=flag(row.get("fragile")),
        seeds_needed=text(row.get("seeds_needed")),
        robust_verdict=text(row.get("robust_verdict")),
    )


def known_comparison(row: dict, claim: Claim, where: str, strict: bool):
    try:
        return comparison_view(row, claim, where)
    except VerdictsError as error:
        if strict:
            raise
        log.warning("%s", error)
        return None


def claim_views(
    frame: pd.DataFrame, claims: list[Claim], where: str = "claims.csv", strict: bool = True
):
    """One ClaimView per claim of claims.yaml that the CSV holds, in claims.yaml's order. Not
    `strict` (another scale's CSV, decided on an older claims.yaml), rows claims.yaml does not
    know are left out with a warning instead of refused."""
    known = {claim.id: claim for claim in claims}
    unknown = sorted(set(frame["claim"]) - set(known))
    if unknown and strict:
        raise VerdictsError(f"{where}: names claims that claims.yaml lacks: {unknown}")
    if unknown:
        log.warning("%s: left out claims that claims.yaml lacks: %s", where, unknown)
    views = []
    for number, claim in enumerate(claims, start=1):
        rows = frame[frame["claim"] == claim.id].to_dict("records")
        if not rows:
            continue
        views.append(
            ClaimView(
                claim,
                str(rows[0]["claim_verdict"]),
                [
                    view
                    for row in rows
                    if (view := known_comparison(row, claim, where, strict)) is not None
                ],
                fragile=flag(rows[0].get("claim_fragile")),
                scope=text(rows[0].get("scope")),
                number=number,
                known=len(claims),
            )
        )
    return views


def load(path: str | Path, claims_yaml: str | Path, strict: bool = True) -> list[ClaimView]:
    return claim_views(read_claims_csv(path), load_claims(claims_yaml), str(path), strict)


def counts(views: list[ClaimView]) -> dict[str, int]:
    return {verdict: sum(v.verdict == verdict for v in views) for verdict in VERDICTS}


def sentences(views: list[ClaimView], scale: str) -> list[dict]:
    """One sentence per verdict class that has claims: "N of the paper's M findings were
    reproduced at the cpu scale" (at a scale that trains only some of them: "N of the M findings
    that the regime scale trains (of the paper's K) were reproduced there"), with the findings it
    names ({verdict, lead, claims: [(number, text)], fragile, indicative: how many of them})."""
    total = len(views)
    known = max([total, *(view.known for view in views)])
    out = []
    for verdict in VERDICTS:
        chosen = [view for view in views if view.verdict == verdict]
        if not chosen:
            continue
        words = VERDICT_WORDS[verdict]
        if total == known:
            lead = f"{len(chosen)} of the paper's {total} findings {words} at the {scale} scale"
        else:
            lead = (
                f"{len(chosen)} of the {total} findings that the {scale} scale trains "
                f"(of the paper's {known}) {words} there"
            )
        fragile = sum(v.fragile for v in chosen)
        indicative = sum(v.indicative for v in chosen)
        asides = [f"{fragile} of them fragile"] if fragile else []
        if indicative:
            asides.append(f"{indicative} indicative only (fewer than {MIN_SEEDS} seeds)")
        out.append(
            {
                "verdict": verdict,
                "lead": lead + (f" ({'; '.join(asides)})" if asides else ""),
                "claims": [(v.number, v.claim.text) for v in chosen],
                "fragile": fragile,
                "indicative": indicative,
            }
        )
    return out


def decided_otherwise(by_scale: dict[str, list[ClaimView]]) -> list[str]:
    """For each scale after the first (`by_scale`: scale -> its ClaimViews), one sentence naming
    the claims (by number) that it decides otherwise than the first: what a second scale is
    shipped to find. Only claims decided at both count."""
    names = list(by_scale)
    first = {view.claim.id: view for view in by_scale[names[0]]}
    sentences = []
    for name in names[1:]:
        both = [(first[v.claim.id], v) for v in by_scale[name] if v.claim.id in first]
        changed = [
            f"{mine.number} ({mine.verdict} at `{names[0]}`, {other.verdict} at `{name}`)"
            for mine, other in sorted(both, key=lambda pair: pair[0].number)
            if mine.verdict != other.verdict
        ]
        seeds = min((other.seeds for _, other in both), default=0)
        plural = "s" if seeds != 1 else ""
        caveat = f", indicative only ({seeds} seed{plural})" if seeds < MIN_SEEDS else ""
        lead = f"Of the {len(both)} findings decided at both `{names[0]}` and `{name}`{caveat}, "
        if not changed:
            sentences.append(lead + "none is decided otherwise.")
            continue
        verb = "is" if len(changed) == 1 else "are"
        sentences.append(f"{lead}{len(changed)} {verb} decided otherwise: {'; '.join(changed)}.")
    return sentences
