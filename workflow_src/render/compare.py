"""Your runs against the shipped reproduction of the same preset, as one HTML page.

Reads compare.csv (workflow_src.analysis.compare: per cell and task, the difference of the
means with its 95% interval and whether it lies outside what the shipped seeds' spread
allows), both sets' claims.csv (each decided by the analysis) and compare-machines.csv (what differs
between their machines, library versions and settings, from the same analysis). It decides nothing: it
puts the two sets side by side and says in its first sentence whether they agree.

    python -m workflow_src.render.compare --compare-csv results/cpu/compare.csv \
        --claims-csv results/cpu/claims.csv --shipped-claims-csv reference/cpu/claims.csv \
        --machines-csv results/cpu/compare-machines.csv \
        --claims report/claims.yaml --preset cpu --shipped-name reference/cpu \
        --output results/cpu/compare.html
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime

import pandas as pd

from workflow_src.analysis.claims import load_claims
from workflow_src.analysis.compare import COLUMNS, DIFFERENCE_COLUMNS
from workflow_src.atomic import write_text_atomic
from workflow_src.render import verdicts
from workflow_src.render.report import environment

TEMPLATE = "compare.html.j2"
log = logging.getLogger(__name__)


class CompareRenderError(ValueError):
    """A compare.csv or claims.csv this page cannot show."""


def read_compare_csv(path) -> pd.DataFrame:
    frame = pd.read_csv(path)
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise CompareRenderError(f"{path}: not a compare.csv (missing columns {missing})")
    frame["outside"] = frame["outside"].map(verdicts.flag)
    return frame


def claim_rows(mine: list[verdicts.ClaimView], theirs: list[verdicts.ClaimView]) -> list[dict]:
    """One row per claim either set decided, in claims.yaml's order: both verdicts."""
    shipped = {view.claim.id: view for view in theirs}
    rows = []
    for view in mine:
        other = shipped.get(view.claim.id)
        rows.append(
            {
                "number": view.number,
                "text": view.claim.text,
                "user": view.verdict,
                "user_fragile": view.fragile,
                "shipped": other.verdict if other else "not decided",
                "shipped_fragile": bool(other and other.fragile),
                "same": bool(other and other.verdict == view.verdict),
            }
        )
    return rows


def headline(cells: pd.DataFrame, claims: list[dict], preset: str, shipped_name: str) -> str:
    outside = int(cells["outside"].sum())
    same = sum(row["same"] for row in claims)
    cell_part = (
        f"all {len(cells)} cell and task means lie within what the shipped seeds' spread allows"
        if outside == 0
        else f"{outside} of {len(cells)} cell and task means lie outside what the shipped "
        "seeds' spread allows"
    )
    return (
        f"Your {preset} runs against {shipped_name}: {cell_part}, and {same} of "
        f"{len(claims)} claims get the same verdict on both sets."
    )


def render(args) -> str:
    claims = load_claims(args.claims)
    cells = read_compare_csv(args.compare_csv)
    mine = verdicts.claim_views(verdicts.read_claims_csv(args.claims_csv), claims)
    theirs = verdicts.claim_views(verdicts.read_claims_csv(args.shipped_claims_csv), claims)
    rows = claim_rows(mine, theirs)
    differences = pd.read_csv(args.machines_csv, dtype=str, keep_default_na=False)
    missing = [c for c in DIFFERENCE_COLUMNS if c not in differences.columns]
    if missing:
        raise CompareRenderError(f"{args.machines_csv}: missing columns {missing}")
    return (
        environment()
        .get_template(TEMPLATE)
        .render(
            title=f"Your {args.preset} runs against the shipped reproduction",
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            headline=headline(cells, rows, args.preset, args.shipped_name),
            shipped_name=args.shipped_name,
            cells=cells.to_dict("records"),
            claims=rows,
            differences=differences.to_dict("records"),
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--compare-csv", required=True)
    parser.add_argument("--claims-csv", required=True, help="your runs' claims.csv")
    parser.add_argument("--shipped-claims-csv", required=True)
    parser.add_argument(
        "--machines-csv", required=True, help="what differs between the two sets' machines"
    )
    parser.add_argument("--claims", required=True, help="claims.yaml")
    parser.add_argument("--preset", required=True)
    parser.add_argument("--shipped-name", required=True, help="the shipped folder, as shown")
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        page = render(args)
    except (CompareRenderError, verdicts.VerdictsError, OSError) as error:
        log.error("%s", error)
        return 1
    write_text_atomic(args.output, page)
    log.info("compare -> %s", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
