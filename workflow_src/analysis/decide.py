"""Decide the paper's claims and each cell's floors on finished runs: claims.csv, floors.csv.

    python -m workflow_src.analysis.decide --metrics-csv results/cpu/metrics.csv \
        --claims report/claims.yaml --claims-csv results/cpu/claims.csv \
        --floors-csv results/cpu/floors.csv

Reads metrics.csv (workflow_src.analysis.aggregate) for the runs' paths, and each run's
predictions.csv beside its metrics.json; the statistics are workflow_src.analysis.claims' and
floors'. The report and the README read the two CSVs this writes and decide nothing themselves.
"""

from __future__ import annotations

import argparse
import logging
import sys

import pandas as pd

from workflow_src.analysis import claims, floors
from workflow_src.analysis.aggregate import write_csv_atomic

log = logging.getLogger(__name__)


def decide(runs: pd.DataFrame, claims_yaml: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(claims.csv, floors.csv) rows for the runs of metrics.csv."""
    outcomes = claims.load_outcomes(runs["path"])
    reproduced = claims.evaluate_runs(claims.load_claims(claims_yaml), outcomes)
    return claims.claims_frame(reproduced), floors.floors_frame(runs, outcomes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metrics-csv", required=True)
    parser.add_argument("--claims", required=True, help="claims.yaml")
    parser.add_argument("--claims-csv", required=True)
    parser.add_argument("--floors-csv", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        claim_rows, floor_rows = decide(pd.read_csv(args.metrics_csv), args.claims)
    except (claims.ClaimsError, OSError, ValueError) as error:
        log.error("%s", error)
        return 1
    write_csv_atomic(claim_rows, args.claims_csv)
    write_csv_atomic(floor_rows, args.floors_csv)
    log.info("claims -> %s, floors -> %s", args.claims_csv, args.floors_csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
