"""A user's finished runs of a preset against the shipped reproduction of the same preset.

Per cell and task (primary metric, best epoch, in percentage points): the difference of the
means over seeds, user minus shipped, with a 95% interval that the shipped seeds' spread allows:

  * both sets with two or more seeds: Welch's t interval on the two sets' per-seed values;
  * one user seed: the shipped seeds' sd as the spread of a run, s * sqrt(1/m + 1/n), with a
    t quantile on the shipped seeds' n - 1 degrees of freedom;
  * one shipped seed: no interval (nothing says how far a rerun may land).

A difference is flagged when its interval excludes zero: the user's runs lie outside what the
shipped seeds' spread allows. The claims' verdicts on both sets come from each set's claims.csv
(the analysis decides them; this module reads them). What differs between the two sets'
machines and settings (precision, device, CPU, threads, library versions, any training
setting) is read from metrics.csv's columns, which come from each run's compute and provenance.

    python -m workflow_src.analysis.compare --metrics-csv results/cpu/metrics.csv \
        --shipped-metrics-csv reference/cpu/metrics.csv --output results/cpu/compare.csv \
        [--machines-csv results/cpu/compare-machines.csv]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from workflow_src.analysis.aggregate import CONFIDENCE, write_csv_atomic
from workflow_src.spec.tasks import PRIMARY_METRIC

log = logging.getLogger(__name__)

COLUMNS = [
    "cell",
    "task",
    "metric",
    "user_mean",
    "user_seeds",
    "shipped_mean",
    "shipped_sd",
    "shipped_seeds",
    "difference",
    "ci_low",
    "ci_high",
    "basis",
    "outside",
]
MACHINE_COLUMNS = ("device", "gpu_name", "cpu_model", "cpu", "threads", "precision")
IGNORED_SETTINGS = {"path", "preset", "cell", "seed", "run_name", "data_dir", "slurm_job_id"}
TIMINGS = {"wall_seconds", "train_seconds", "train_examples_per_second", "peak_memory_mb"}
RUN_FACTS = TIMINGS | {"resumed_from_epoch", "slurm_job_id"}
DIFFERENCE_COLUMNS = ["what", "user", "shipped"]


class CompareError(ValueError):
    """Two sets of runs that cannot be compared."""


def shipped_input(folder: str, name: str, preset: str) -> str:
    """`folder/name` of the shipped reproduction to compare with (a rule's input), or an
    error saying what to do when none is shipped there."""
    path = f"{folder}/{name}"
    if not Path(path).exists():
        raise CompareError(
            f"compare: {path} does not exist. `snakemake compare` sets your runs of preset "
            f"{preset} against a shipped reproduction of it: ship one (--config "
            f"preset={preset} ship_reference=True), pick a preset shipped in reference/, or "
            "name a folder with --config compare_to=DIR."
        )
    return path


def seed_values(runs: pd.DataFrame, stage: str = "best") -> dict[tuple[str, str], np.ndarray]:
    """(cell, task) -> the per-seed primary metric in percent, over the runs of metrics.csv."""
    values = {}
    for task, metric in PRIMARY_METRIC.items():
        column = f"{stage}_{task}_{metric}"
        if column not in runs.columns:
            continue
        for cell, group in runs.dropna(subset=[column]).groupby("cell"):
            values[(str(cell), task)] = 100 * group[column].to_numpy(dtype=float)
    return values


def difference_interval(user: np.ndarray, shipped: np.ndarray) -> tuple[float, float, str]:
    """(low, high, basis) of the 95% interval of mean(user) - mean(shipped)."""
    diff = float(user.mean() - shipped.mean())
    if len(shipped) < 2:
        return math.nan, math.nan, "one shipped seed: no spread to compare with"
    alpha = 1 - CONFIDENCE
    if len(user) >= 2:
        if user.std() == 0 and shipped.std() == 0:
            return diff, diff, "every seed identical on both sides"
        result = stats.ttest_ind(user, shipped, equal_var=False)
        interval = result.confidence_interval(CONFIDENCE)
        return float(interval.low), float(interval.high), "Welch t on both sets' seeds"
    spread = float(shipped.std(ddof=1)) * math.sqrt(1 / len(user) + 1 / len(shipped))
    half = float(stats.t.ppf(1 - alpha / 2, len(shipped) - 1)) * spread
    return diff - half, diff + half, "the shipped seeds' spread (one user seed)"


def compare_cells(user_runs: pd.DataFrame, shipped_runs: pd.DataFrame, stage="best"):
    """One row per (cell, task) both sets ran (COLUMNS), in the shipped runs' order."""
    user, shipped = seed_values(user_runs, stage), seed_values(shipped_runs, stage)
    common = [key for key in shipped if key in user]
    if not common:
        raise CompareError(
            "the two sets of runs share no cell: compare runs of the same preset "
            f"(user cells: {sorted({c for c, _ in user})[:5]}..., "
            f"shipped cells: {sorted({c for c, _ in shipped})[:5]}...)"
        )
    rows = []
    for cell, task in common:
        mine, theirs = user[(cell, task)], shipped[(cell, task)]
        low, high, basis = difference_interval(mine, theirs)
        rows.append(
            {
                "cell": cell,
                "task": task,
                "metric": PRIMARY_METRIC[task],
                "user_mean": float(mine.mean()),
                "user_seeds": len(mine),
                "shipped_mean": float(theirs.mean()),
                "shipped_sd": float(theirs.std(ddof=1)) if len(theirs) > 1 else math.nan,
                "shipped_seeds": len(theirs),
                "difference": float(mine.mean() - theirs.mean()),
                "ci_low": low,
                "ci_high": high,
                "basis": basis,
                "outside": bool(not math.isnan(low) and not low <= 0 <= high),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def distinct(runs: pd.DataFrame, column: str) -> str:
    if column not in runs.columns:
        return "not recorded"
    values = sorted({str(v) for v in runs[column].dropna()})
    return ", ".join(values) if values else "not recorded"


def with_compute(runs: pd.DataFrame) -> pd.DataFrame:
    """metrics.csv's rows with each run's compute block (metrics.json beside it) as columns:
    the precision it ran at (the setting may say "auto"), the CPU where the run records it."""
    facts = []
    for path in runs["path"]:
        try:
            record = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            facts.append({})
            continue
        compute = record.get("compute") or {}
        facts.append({k: v for k, v in compute.items() if k not in RUN_FACTS})
    extra = pd.DataFrame(facts, index=runs.index)
    return runs.drop(columns=[c for c in extra.columns if c in runs.columns]).join(extra)


def setting_differences(user_runs: pd.DataFrame, shipped_runs: pd.DataFrame) -> list[dict]:
    """What differs between the two sets' machines, library versions and settings:
    {"what", "user", "shipped"} for every such column whose values differ (compute blocks
    read from the runs' metrics.json where metrics.csv's paths lead to them), and the CPU
    model as "not recorded" when neither set's runs record one."""
    user_runs, shipped_runs = with_compute(user_runs), with_compute(shipped_runs)
    versions = sorted(
        {c for c in (*user_runs.columns, *shipped_runs.columns) if c.startswith("version_")}
    )
    compute = sorted(
        {c for frame in (user_runs, shipped_runs) for c in frame.columns if c in MACHINE_COLUMNS}
        | {c for c in (*user_runs.columns, *shipped_runs.columns) if c.startswith("cpu")}
    )
    machine = [*dict.fromkeys([*MACHINE_COLUMNS, *compute]), *versions, "git_commit"]
    rows = []
    for column in machine:
        mine, theirs = distinct(user_runs, column), distinct(shipped_runs, column)
        if mine != theirs:
            rows.append({"what": column.removeprefix("version_"), "user": mine, "shipped": theirs})
    if not any(c.startswith("cpu") for c in (*user_runs.columns, *shipped_runs.columns)):
        rows.append({"what": "cpu model", "user": "not recorded", "shipped": "not recorded"})
    numeric = {"seed", "epochs"}
    settings = [
        c
        for c in shipped_runs.columns
        if c in user_runs.columns
        and c not in IGNORED_SETTINGS | set(machine) | numeric
        and not c.startswith(("final_", "best_", "dev_examples_", "train_examples_"))
        and c not in RUN_FACTS
    ]
    for column in settings:
        mine, theirs = distinct(user_runs, column), distinct(shipped_runs, column)
        if mine != theirs:
            rows.append({"what": column, "user": mine, "shipped": theirs})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--metrics-csv", required=True, help="the user's runs (metrics.csv)")
    parser.add_argument(
        "--shipped-metrics-csv", required=True, help="the shipped runs' metrics.csv"
    )
    parser.add_argument("--stage", choices=("best", "final"), default="best")
    parser.add_argument("--output", required=True, help="compare.csv")
    parser.add_argument("--machines-csv", help="also write what differs between the machines")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        user, shipped = pd.read_csv(args.metrics_csv), pd.read_csv(args.shipped_metrics_csv)
        frame = compare_cells(user, shipped, args.stage)
    except (CompareError, OSError) as error:
        log.error("%s", error)
        return 1
    if args.machines_csv:
        differences = pd.DataFrame(setting_differences(user, shipped), columns=DIFFERENCE_COLUMNS)
        write_csv_atomic(differences, args.machines_csv)
    write_csv_atomic(frame, args.output)
    log.info("compare -> %s (%d of %d outside)", args.output, frame.outside.sum(), len(frame))
    return 0


if __name__ == "__main__":
    sys.exit(main())
