"""Decide the paper's claims, and check every cell against its floors, on a folder of runs.

    python -m workflow_src.analysis --runs DIR --claims report/claims.yaml --out-dir OUT

DIR holds finished runs at any depth (each a metrics.json with its predictions.csv beside it:
results/runs/<preset>/ or reference/cpu/runs/ for instance); --runs also takes metrics.json
files one by one (what rules/analysis.smk passes). Writes OUT/claims.csv (one row per
comparison of the claims: docs/statistics.md says how each column is computed) and
OUT/floors.csv (each single-task BERT cell against the BiLSTM and the majority class). On runs
of some cells only (a preset's subset, a partial grid), each claim is decided on the comparisons
whose cells all have runs, and its `scope` column says which it was not decided on and why; a
claim with none of its comparisons left is not in claims.csv (the log names it).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from workflow_src.analysis import aggregate, floors
from workflow_src.analysis.claims import Claim, ClaimsError, load_claims
from workflow_src.analysis.outcomes import OutcomesError, find_metrics, load_outcomes
from workflow_src.analysis.statistics import CONFIDENCE
from workflow_src.analysis.verdicts import claims_frame, evaluate_runs

log = logging.getLogger("workflow_src.analysis")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_src.analysis",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--runs", nargs="+", required=True, help="folders of runs, or metrics.json files"
    )
    parser.add_argument("--claims", required=True, help="the claims (report/claims.yaml)")
    parser.add_argument("--out-dir", help="write claims.csv and floors.csv here")
    parser.add_argument("--claims-csv", help="write claims.csv here (instead of --out-dir)")
    parser.add_argument("--floors-csv", help="write floors.csv here (instead of --out-dir)")
    return parser


def outputs(args) -> tuple[Path, Path]:
    out = Path(args.out_dir) if args.out_dir else None
    claims_csv = args.claims_csv or (out / "claims.csv" if out else None)
    floors_csv = args.floors_csv or (out / "floors.csv" if out else None)
    if claims_csv is None or floors_csv is None:
        raise SystemExit("give --out-dir, or both --claims-csv and --floors-csv")
    return Path(claims_csv), Path(floors_csv)


def expected_false_decisions(frame) -> float:
    """At most (1 - CONFIDENCE) / 2 of the decided comparisons are expected to be decided wrong
    (each decision is a one-sided test at that level)."""
    decided = int((frame.verdict != "inconclusive").sum())
    return decided * (1 - CONFIDENCE) / 2


def log_scope(every: list[Claim], decided: list[Claim]) -> None:
    """Name the claims decided on some of their comparisons, and those the runs cannot decide."""
    partial = [claim.id for claim in decided if claim.scope]
    if partial:
        log.info(
            "decided on some of their comparisons (claims.csv's scope): %s", ", ".join(partial)
        )
    kept = {claim.id for claim in decided}
    left_out = [claim.id for claim in every if claim.id not in kept]
    if left_out:
        log.warning("not decided, no runs of their cells: %s", ", ".join(left_out))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    claims_csv, floors_csv = outputs(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        paths = find_metrics(args.runs)
        every = load_claims(args.claims)
        runs, _ = aggregate.load_runs(paths)
        outcomes = load_outcomes(paths)
        claim_list = load_claims(args.claims, cells={cell for cell, _ in outcomes})
        results = evaluate_runs(claim_list, outcomes)
        floor_rows = floors.floors_frame(runs, outcomes)
    except (OutcomesError, ClaimsError, aggregate.MetricsError) as error:
        log.error("%s", error)
        return 1
    frame = claims_frame(results)
    log_scope(every, claim_list)
    aggregate.write_csv_atomic(frame, claims_csv)
    aggregate.write_csv_atomic(floor_rows, floors_csv)
    counts = frame.drop_duplicates("claim").claim_verdict.value_counts().to_dict()
    log.info(
        "%d runs, %d claims (%s), %d comparisons (%s; about %.1f decided wrongly expected at "
        "most), %d fragile -> %s, %s",
        len(runs),
        len(results),
        ", ".join(f"{n} {v}" for v, n in counts.items()),
        len(frame),
        ", ".join(f"{n} {v}" for v, n in frame.verdict.value_counts().items()),
        expected_false_decisions(frame),
        int(frame.fragile.sum()),
        claims_csv,
        floors_csv,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
