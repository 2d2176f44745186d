"""A finished run's metrics.json checked on the way in: readable JSON, every metric in its range.

A run folder that a job left truncated, that a disk or a copy damaged, or that someone edited
must not reach the tables silently: an accuracy of 1.7 or a Pearson r of -3 is refused, naming
the file, the key and the value, with the remedy (delete that run's folder and run Snakemake
again: that run alone is trained again, every other run is kept). The workflow checks the runs it
will read while it builds the DAG (rules/common.smk), so a damaged run is named before anything
runs; aggregation checks each file again as it reads it (aggregate.load_run).

No torch here (analysis reads files only).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

# Every metric a run reports, and the closed interval it lives in.
METRIC_RANGES = {
    "accuracy": (0.0, 1.0),
    "f1": (0.0, 1.0),
    "macro_f1": (0.0, 1.0),
    "pearson": (-1.0, 1.0),
    "spearman": (-1.0, 1.0),
}
STAGES = ("best", "final")


class RunFileError(ValueError):
    """A metrics.json is unreadable or holds an impossible value; the message names the file
    and the remedy."""


def remedy(path: str | Path) -> str:
    folder = Path(path).parent
    return (
        f"Delete the run's folder {folder}/ and run snakemake again: that run alone is trained "
        "again, every other run is kept."
    )


def with_remedy(message: str) -> str:
    """An error about one run's file ("<path>: ...") with the remedy, once."""
    if "run snakemake again" in message:
        return message
    return f"{message}. {remedy(message.split(': ', 1)[0])}"


def read_json(path: str | Path) -> dict:
    """The JSON object in `path`, or RunFileError naming the file and the remedy."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunFileError(f"{path}: unreadable ({error}). {remedy(path)}") from None
    if not isinstance(record, dict):
        raise RunFileError(f"{path}: the top level is not a JSON object. {remedy(path)}")
    return record


def scores_of(record: dict) -> list[tuple[str, object]]:
    """(where, {task: {metric: value}}) for the best and final scores and every epoch's dev."""
    found = [(stage, record.get(stage)) for stage in STAGES]
    epochs = record.get("epochs")
    for index, epoch in enumerate(epochs if isinstance(epochs, list) else []):
        found.append(
            (f"epochs[{index}].dev", epoch.get("dev") if isinstance(epoch, dict) else None)
        )
    return found


def check_ranges(record: dict, path: str | Path) -> None:
    """RunFileError for the first metric that is not a number in its range (METRIC_RANGES)."""
    for where, scores in scores_of(record):
        if not isinstance(scores, dict):
            raise RunFileError(
                f"{path}: '{where}' is missing or not an object of task scores. {remedy(path)}"
            )
        for task, metrics in scores.items():
            if not isinstance(metrics, dict):
                raise RunFileError(f"{path}: '{where}.{task}' is not an object. {remedy(path)}")
            for metric, value in metrics.items():
                check_value(value, METRIC_RANGES.get(metric), f"{where}.{task}.{metric}", path)


def check_value(value, bounds: tuple[float, float] | None, key: str, path) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RunFileError(f"{path}: '{key}' is {value!r}, not a finite number. {remedy(path)}")
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise RunFileError(
            f"{path}: '{key}' is {value!r}, outside [{bounds[0]:g}, {bounds[1]:g}]. {remedy(path)}"
        )


def validate(path: str | Path) -> dict:
    """One metrics.json read and checked: its record, or RunFileError (file, key, remedy)."""
    record = read_json(path)
    check_ranges(record, path)
    return record


def problems(paths) -> list[str]:
    """The error of every file in `paths` that exists and does not validate (missing files are
    the DAG's to plan, not a problem here)."""
    found = []
    for path in paths:
        if Path(path).is_file():
            try:
                validate(path)
            except RunFileError as error:
                found.append(str(error))
    return found
