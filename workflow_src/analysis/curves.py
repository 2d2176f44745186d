"""Within-epoch learning curves of every run -> curves.csv (one row per point, task and metric).

A run records dev metrics every k updates on a fixed small dev sample in metrics.json's
`curve` ({"every_updates", "dev_rows", "points": [{"update", "epoch", "dev": {task: {metric:
value}}}]}), so that a one-epoch cell still has a learning curve. Runs without one (every run
trained before curves existed) add no rows; the report draws the curves of the runs that have
them (workflow_src.render.plots.curve_plot against the update). A point's metric may be null: r
is undefined where a head predicts one constant on the sample (a STS head early in training);
it becomes an empty value, which the plot leaves as a gap.

    python -m workflow_src.analysis.curves --runs results/runs/cpu/*/seed*/metrics.json \
        --output results/cpu/curves.csv
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

import pandas as pd

from workflow_src.analysis.aggregate import MetricsError, load_run, write_csv_atomic

log = logging.getLogger(__name__)

COLUMNS = ["cell", "seed", "update", "epoch", "task", "metric", "value", "dev_rows"]


def curve_rows(record: dict, path: str | Path = "metrics.json") -> list[dict]:
    """The long rows of one run's curve (none without one); a malformed curve names the file."""
    curve = record.get("curve")
    if not curve:
        return []
    run = record["run"]
    try:
        dev_rows = curve.get("dev_rows", {})
        return [
            {
                "cell": run["cell"],
                "seed": run["seed"],
                "update": int(point["update"]),
                "epoch": int(point["epoch"]),
                "task": task,
                "metric": metric,
                "value": math.nan if value is None else float(value),
                "dev_rows": dev_rows.get(task),
            }
            for point in curve["points"]
            for task, metrics in point["dev"].items()
            for metric, value in metrics.items()
        ]
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise MetricsError(f"{path}: malformed `curve` ({error!r})") from error


def curves_frame(paths) -> pd.DataFrame:
    rows = [row for path in paths for row in curve_rows(load_run(path), path)]
    return pd.DataFrame(rows, columns=COLUMNS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="*", default=[], help="metrics.json files")
    parser.add_argument("--output", required=True, help="curves.csv")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        frame = curves_frame(args.runs)
    except MetricsError as error:
        log.error("%s", error)
        return 1
    write_csv_atomic(frame, args.output)
    log.info("curves -> %s (%d points of %d runs)", args.output, len(frame), frame.cell.nunique())
    return 0


if __name__ == "__main__":
    sys.exit(main())
