"""Every run's metrics.json -> tidy CSVs: one row per run, per-epoch curves, and a per-cell summary.

`summary.csv` holds, per stage ("final": last epoch, "best": best epoch), cell, task and metric:
the mean over seeds, the sample sd (blank when n = 1), n, the dev examples N the metric was
computed on, and a 95% interval of the mean that counts both sources of noise:
- the seeds: sd^2 / n, with n - 1 degrees of freedom;
- the dev sample, which every seed shares (so it does not shrink with n): the metric's sampling
  variance on N examples, p(1 - p) / N for accuracy and the delta-method Fisher variance
  (1 - r^2)^2 / (N - 3) for Pearson and Spearman r, taken as known (infinite degrees of freedom).
The interval is mean +- q * sqrt(sd^2 / n + dev_var), q the t quantile at the Welch-Satterthwaite
degrees of freedom (the normal quantile when n = 1 or the seeds agree exactly), clipped to the
metric's range. One seed therefore still gets an interval from its examples. Metrics without a
closed-form sampling variance (F1, macro F1) count the seeds only: with one seed their interval is
the point itself. The summary is a pure function of the runs: no random draws.

No torch here: this reads files only. A missing or malformed metrics file is a `MetricsError`
that names the file and the problem.

Command line (what `rules/aggregate.smk` calls):
    python -m workflow_src.analysis.aggregate --runs results/runs/quick/*/seed*/metrics.json \
        --metrics-csv results/metrics.csv --summary-csv results/summary.csv \
        --epochs-csv results/epochs.csv
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from scipy import stats

from workflow_src.analysis import run_files
from workflow_src.atomic import write_text_atomic

log = logging.getLogger(__name__)

STAGES = ("final", "best")
CONFIDENCE = 0.95
SUMMARY_COLUMNS = [
    "stage",
    "cell",
    "task",
    "metric",
    "n",
    "mean",
    "sd",
    "dev_examples",
    "ci_low",
    "ci_high",
]
# each metric's range, to clip its interval
METRIC_BOUNDS = {"pearson": (-1.0, 1.0), "spearman": (-1.0, 1.0)}
UNIT_BOUNDS = (0.0, 1.0)
EPOCH_COLUMNS = ["cell", "seed", "epoch", "task", "metric", "value", "train_loss", "seconds"]
# compute.* and provenance fields copied into metrics.csv, with the column they become
COMPUTE_FIELDS = (
    "wall_seconds",
    "train_seconds",
    "train_examples_per_second",
    "peak_memory_mb",
    "device",
    "gpu_name",
    "threads",
    "slurm_job_id",
    "resumed_from_epoch",
)


class MetricsError(ValueError):
    """A metrics.json file is missing or does not follow the schema."""


# ----------------------------------------------------------------------------- writing


def write_csv_atomic(frame: pd.DataFrame, path: str | Path) -> None:
    write_text_atomic(path, frame.to_csv(index=False, lineterminator="\n"))


# ----------------------------------------------------------------------------- reading


def _require(mapping, key: str, kind, path, where: str):
    if not isinstance(mapping, dict) or key not in mapping:
        raise MetricsError(f"{path}: missing key '{where}{key}'")
    value = mapping[key]
    if kind is not None and not isinstance(value, kind):
        raise MetricsError(f"{path}: '{where}{key}' should be {kind}, got {type(value).__name__}")
    return value


def _check_scores(scores, path, where: str) -> None:
    """{task: {metric: number}} with finite numbers."""
    if not isinstance(scores, dict) or not scores:
        raise MetricsError(f"{path}: '{where}' should map each trained task to its metrics")
    for task, metrics in scores.items():
        if not isinstance(metrics, dict):
            raise MetricsError(f"{path}: '{where}.{task}' should map metric names to numbers")
        for metric, value in metrics.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise MetricsError(f"{path}: '{where}.{task}.{metric}' is not a number: {value!r}")
            if not math.isfinite(value):
                raise MetricsError(f"{path}: '{where}.{task}.{metric}' is not finite: {value!r}")


def load_run(path: str | Path) -> dict:
    """Read and check one metrics.json; every problem names the file."""
    path = Path(path)
    if not path.is_file():
        raise MetricsError(f"{path}: metrics file is missing")
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MetricsError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(record, dict):
        raise MetricsError(f"{path}: top level should be a JSON object")
    run = _require(record, "run", dict, path, "")
    _require(run, "cell", str, path, "run.")
    seed = _require(run, "seed", int, path, "run.")
    if isinstance(seed, bool):
        raise MetricsError(f"{path}: 'run.seed' should be an integer")
    _require(run, "tasks", list, path, "run.")
    for stage in STAGES:
        _check_scores(_require(record, stage, dict, path, ""), path, stage)
    epochs = _require(record, "epochs", list, path, "")
    for index, epoch in enumerate(epochs):
        _require(epoch, "epoch", int, path, f"epochs[{index}].")
        _check_scores(_require(epoch, "dev", dict, path, f"epochs[{index}]."), path, "dev")
    _require(record, "compute", dict, path, "")
    try:  # an accuracy of 1.7 is refused, naming the file and the remedy
        run_files.check_ranges(record, path)
    except run_files.RunFileError as error:
        raise MetricsError(str(error)) from None
    return record


# ----------------------------------------------------------------------------- tidy frames


def run_row(record: dict, path: str | Path) -> dict:
    """One metrics.csv row: identity, every final/best metric, compute, data, provenance and
    the run's settings."""
    run = record["run"]
    row = {
        "path": str(path),
        "preset": run.get("preset"),
        "cell": run["cell"],
        "seed": run["seed"],
        "model": run.get("model"),
        "encoder": run.get("encoder"),
        "tasks": "+".join(run["tasks"]),
        "epochs": len(record["epochs"]),
    }
    for stage in STAGES:
        for task, metrics in record[stage].items():
            for metric, value in metrics.items():
                row[f"{stage}_{task}_{metric}"] = value
    compute = record.get("compute", {})
    for key in COMPUTE_FIELDS:
        row[key] = compute.get(key)
    data = record.get("data", {})
    row["quora_train_standin"] = bool(data.get("quora_train_standin", False))
    for task, count in data.get("train_examples", {}).items():
        row[f"train_examples_{task}"] = count
    for task, count in data.get("dev_examples", {}).items():
        row[f"dev_examples_{task}"] = count
    provenance = record.get("provenance", {})
    for name, version in provenance.get("versions", {}).items():
        row[f"version_{name}"] = version
    row["git_commit"] = provenance.get("git_commit")
    row["smart_enabled"] = bool(record.get("smart", {}).get("enabled", False))
    row.update(setting_columns(record.get("settings", {}), row))
    return row


def setting_columns(settings: dict, row: dict) -> dict:
    """Every training setting of the run as a column (lr, dropout, finetune, sts_head, ...;
    SMART's as smart_<name>), so an analysis of metrics.csv needs no join with metrics.json.
    Names the row already has (preset, model, encoder, epochs) keep the row's value."""
    columns = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            columns.update({f"{key}_{k}": v for k, v in value.items() if f"{key}_{k}" not in row})
        elif key not in row:
            columns[key] = "+".join(map(str, value)) if isinstance(value, list) else value
    return columns


def epoch_rows(record: dict) -> list[dict]:
    """Long per-epoch dev metrics of one run, with that task's train loss."""
    run = record["run"]
    rows = []
    for epoch in record["epochs"]:
        losses = epoch.get("train_loss", {}) or {}
        for task, metrics in epoch["dev"].items():
            for metric, value in metrics.items():
                rows.append(
                    {
                        "cell": run["cell"],
                        "seed": run["seed"],
                        "epoch": epoch["epoch"],
                        "task": task,
                        "metric": metric,
                        "value": value,
                        "train_loss": losses.get(task),
                        "seconds": epoch.get("seconds"),
                    }
                )
    return rows


def load_runs(paths: Iterable[str | Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, epochs) frames of the given metrics files, sorted by cell and seed."""
    runs, epochs = [], []
    seen: dict[tuple[str, int], str] = {}
    for path in paths:
        record = load_run(path)
        key = (record["run"]["cell"], record["run"]["seed"])
        if key in seen:
            raise MetricsError(f"{path}: run {key} already read from {seen[key]}")
        seen[key] = str(path)
        runs.append(run_row(record, path))
        epochs.extend(epoch_rows(record))
    if not runs:
        raise MetricsError("no metrics files given")
    run_frame = pd.DataFrame(runs).sort_values(["cell", "seed"], kind="stable")
    epoch_frame = pd.DataFrame(epochs, columns=EPOCH_COLUMNS)
    epoch_frame = epoch_frame.sort_values(["cell", "seed", "task", "metric", "epoch"])
    return run_frame.reset_index(drop=True), epoch_frame.reset_index(drop=True)


def dev_variance(metric: str, value: float, n_examples: float | None) -> float | None:
    """Sampling variance of a metric computed on n_examples dev examples: binomial for
    accuracy, delta-method Fisher for Pearson/Spearman r; None without a closed form or N."""
    if n_examples is None or not math.isfinite(n_examples):
        return None
    if metric == "accuracy" and n_examples >= 1:
        return value * (1 - value) / n_examples
    if metric in ("pearson", "spearman") and n_examples > 3:
        return (1 - value**2) ** 2 / (n_examples - 3)
    return None


def mean_interval(
    mean: float, sd: float, n: int, dev_var: float | None, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Interval of a mean over n seeds (sd: their sample sd, unused when n = 1):
    var = sd^2/n + dev_var, Welch-Satterthwaite degrees of freedom (seeds: n - 1; the dev
    variance: infinite), so the normal quantile when n = 1 or the seeds agree exactly."""
    seed_var = sd**2 / n if n > 1 else 0.0
    total = seed_var + (dev_var or 0.0)
    if total == 0.0:
        return mean, mean
    tail = 1 - (1 - confidence) / 2
    if seed_var == 0.0:
        q = float(stats.norm.ppf(tail))
    else:
        df = total**2 / (seed_var**2 / (n - 1))
        q = float(stats.t.ppf(tail, df))
    half = q * math.sqrt(total)
    return mean - half, mean + half


def cell_interval(
    metric: str, mean: float, sd: float, n: int, n_examples: float | None
) -> tuple[float, float]:
    """A cell's 95% interval of one metric on n_examples dev examples (None: seeds only),
    clipped to the metric's range."""
    low, high = mean_interval(mean, sd, n, dev_variance(metric, mean, n_examples))
    bottom, top = METRIC_BOUNDS.get(metric, UNIT_BOUNDS)
    return max(low, bottom), min(high, top)


def dev_count(group: pd.DataFrame, task: str) -> float | None:
    """The dev examples N of a cell's runs for a task (one dev set, so the runs agree; their
    mean otherwise); None where no run recorded it."""
    column = f"dev_examples_{task}"
    if column not in group:
        return None
    counts = group[column].dropna().to_numpy(dtype=float)
    return float(counts.mean()) if len(counts) else None


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Per stage, cell, task and metric: n, mean, sd, dev examples and the 95% interval."""
    rows = []
    metric_columns = [c for c in runs.columns if c.split("_", 1)[0] in STAGES]
    for cell, runs_of_cell in runs.groupby("cell", sort=True):  # split once, not per column
        for column in metric_columns:
            stage, task, metric = column.split("_", 2)
            group = runs_of_cell[runs_of_cell[column].notna()]
            if group.empty:
                continue
            values = group[column].to_numpy(dtype=float)
            n, mean = len(values), float(values.mean())
            sd = float(values.std(ddof=1)) if n > 1 else math.nan
            count = dev_count(group, task)
            low, high = cell_interval(metric, mean, sd, n, count)
            rows.append(
                {
                    "stage": stage,
                    "cell": cell,
                    "task": task,
                    "metric": metric,
                    "n": n,
                    "mean": mean,
                    "sd": sd,
                    "dev_examples": math.nan if count is None else count,
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    frame = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    frame["dev_examples"] = frame["dev_examples"].round().astype("Int64")
    return frame.sort_values(["stage", "cell", "task", "metric"]).reset_index(drop=True)


def read_summary(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"stage": str, "cell": str, "task": str, "metric": str})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="+", required=True, help="metrics.json files")
    parser.add_argument("--metrics-csv", required=True, help="one row per run")
    parser.add_argument("--summary-csv", required=True, help="per stage, cell, task, metric")
    parser.add_argument("--epochs-csv", required=True, help="per-epoch dev metrics, long")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        runs, epochs = load_runs(args.runs)
    except MetricsError as error:
        log.error("%s", run_files.with_remedy(str(error)))
        return 1
    summary = summarize(runs)
    write_csv_atomic(runs, args.metrics_csv)
    write_csv_atomic(epochs, args.epochs_csv)
    write_csv_atomic(summary, args.summary_csv)
    log.info(
        "%d runs of %d cells -> %s, %s, %s",
        len(runs),
        runs["cell"].nunique(),
        args.metrics_csv,
        args.summary_csv,
        args.epochs_csv,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
