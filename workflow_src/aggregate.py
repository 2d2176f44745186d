"""Every run's metrics.json -> tidy CSVs: one row per run, per-epoch curves, and a per-cell summary.

`summary.csv` holds, per stage ("final": last epoch, "best": best epoch), cell, task and metric:
the mean over seeds, the sample sd (blank when n = 1), n, and a 95% percentile-bootstrap interval
of the mean. Each bootstrap draws from its own generator, seeded from `--bootstrap-seed` and the
(stage, cell, task, metric) key, so a summary is identical however many runs sit beside it.
A single run's interval is the point itself.

No torch here: this reads files only. A missing or malformed metrics file is a `MetricsError`
that names the file and the problem.

Command line (what `rules/aggregate.smk` calls):
    python -m workflow_src.aggregate --runs results/runs/quick/*/seed*/metrics.json \
        --metrics-csv results/metrics.csv --summary-csv results/summary.csv \
        --epochs-csv results/epochs.csv [--bootstrap 2000] [--bootstrap-seed 0]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import zlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import write_text_atomic

log = logging.getLogger(__name__)

STAGES = ("final", "best")
N_BOOTSTRAP = 2000
CONFIDENCE = 0.95
SUMMARY_COLUMNS = [
    "stage",
    "cell",
    "task",
    "metric",
    "n",
    "mean",
    "sd",
    "ci_low",
    "ci_high",
    "bootstrap_seed",
]
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


def key_seed(base_seed: int, *key: str) -> int:
    """A generator seed fixed by the key alone (crc32 is stable across runs, unlike hash())."""
    return (base_seed + zlib.crc32("/".join(key).encode())) % (2**32)


def bootstrap_interval(
    values: np.ndarray, seed: int, n_boot: int = N_BOOTSTRAP, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean; a single value is its own interval."""
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def summarize(runs: pd.DataFrame, n_boot: int = N_BOOTSTRAP, base_seed: int = 0) -> pd.DataFrame:
    """Per stage, cell, task and metric: n, mean, sd, 95% bootstrap interval and its seed."""
    rows = []
    metric_columns = [c for c in runs.columns if c.split("_", 1)[0] in STAGES]
    for column in metric_columns:
        stage, task, metric = column.split("_", 2)
        for cell, values in runs.groupby("cell", sort=True)[column]:
            values = values.dropna().to_numpy(dtype=float)
            if len(values) == 0:
                continue
            seed = key_seed(base_seed, stage, str(cell), task, metric)
            low, high = bootstrap_interval(values, seed, n_boot)
            rows.append(
                {
                    "stage": stage,
                    "cell": cell,
                    "task": task,
                    "metric": metric,
                    "n": len(values),
                    "mean": float(values.mean()),
                    "sd": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                    "ci_low": low,
                    "ci_high": high,
                    "bootstrap_seed": seed,
                }
            )
    frame = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return frame.sort_values(["stage", "cell", "task", "metric"]).reset_index(drop=True)


def read_summary(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"stage": str, "cell": str, "task": str, "metric": str})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="+", required=True, help="metrics.json files")
    parser.add_argument("--metrics-csv", required=True, help="one row per run")
    parser.add_argument("--summary-csv", required=True, help="per stage, cell, task, metric")
    parser.add_argument("--epochs-csv", required=True, help="per-epoch dev metrics, long")
    parser.add_argument("--bootstrap", type=int, default=N_BOOTSTRAP, help="resamples")
    parser.add_argument("--bootstrap-seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.bootstrap < 1:
        parser.error("--bootstrap must be at least 1")
    try:
        runs, epochs = load_runs(args.runs)
    except MetricsError as error:
        log.error("%s", error)
        return 1
    summary = summarize(runs, args.bootstrap, args.bootstrap_seed)
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
