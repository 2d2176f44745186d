"""The runs' dev predictions, read for the claims and floors: one `Outcomes` per (cell, task).

Each run is a metrics.json and the predictions.csv beside it (task, id, prediction, gold: the
best epoch's dev predictions). Besides the predictions, an Outcomes keeps what the statistics
need from metrics.json: the random stream the cell draws from a seed (`stream`: seed-paired
cells share it) and each seed's primary metric at its last and its best epoch (the last-epoch
check of best-epoch selection). Every problem names the file. No torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from workflow_src.spec.tasks import PRIMARY_METRIC

PREDICTION_COLUMNS = ("task", "id", "prediction", "gold")


class OutcomesError(ValueError):
    """A run's files cannot be read for the claims (names the file and the problem)."""


@dataclass(frozen=True)
class Outcomes:
    """One cell's dev predictions on one task: every seed on the same examples."""

    seeds: tuple[int, ...]
    ids: tuple[str, ...]  # sorted example ids
    gold: np.ndarray  # (N,)
    predictions: np.ndarray  # (S, N), rows in `seeds` order
    stream: tuple = ()  # what a seed fixes in this cell: cells with equal streams pair by seed
    final: np.ndarray | None = None  # (S,) primary metric at the last epoch, points
    best_epochs: tuple[int, ...] = ()  # per seed: the epoch the predictions are from
    last_epochs: tuple[int, ...] = ()  # per seed: the last epoch trained


def stream_key(record: dict) -> tuple:
    """What the seed fixes the same way in two cells of this key: the heads' initial weights
    (their shapes: the tasks and the STS head), the batch order (batch size) and the model."""
    settings, run = record.get("settings", {}), record["run"]
    tasks = tuple(run.get("tasks", settings.get("tasks", ())))
    return (
        ("model", str(run.get("model", settings.get("model", "bert")))),
        ("batch size", settings.get("batch_size")),
        ("tasks", "+".join(tasks)),
        ("STS head", settings.get("sts_head") if "sts" in tasks else None),
    )


def find_metrics(paths) -> list[Path]:
    """metrics.json files: each path a file, or a folder searched at any depth."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(path.rglob("metrics.json")))
        elif path.is_file():
            found.append(path)
        else:
            raise OutcomesError(f"{path}: no such file or folder")
    if not found:
        raise OutcomesError(f"no metrics.json under {', '.join(map(str, paths))}")
    return found


def _read_predictions(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise OutcomesError(f"{path}: predictions file is missing (the claims need it)")
    try:
        frame = pd.read_csv(path, dtype={"id": str, "task": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise OutcomesError(f"{path}: not a readable CSV ({error})") from error
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise OutcomesError(f"{path}: missing columns {missing}")
    for column in ("prediction", "gold"):
        if not pd.api.types.is_numeric_dtype(frame[column]) or frame[column].isna().any():
            raise OutcomesError(f"{path}: column {column!r} must hold a number on every row")
    return frame


def _epoch_value(record: dict, task: str, which: str) -> float:
    """A seed's primary metric in points at the last epoch ("final") or its best ("best")."""
    value = record.get(which, {}).get(task, {}).get(PRIMARY_METRIC[task])
    return math.nan if value is None else float(value) * 100


def _read_run(path: Path) -> tuple[dict, pd.DataFrame]:
    try:
        record = json.loads(path.read_text())
        run = record["run"]
        int(run["seed"]), str(run["cell"])
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise OutcomesError(f"{path}: not a run's metrics.json ({error!r})") from error
    return record, _read_predictions(path.parent / "predictions.csv")


def load_outcomes(metrics_paths) -> dict[tuple[str, str], Outcomes]:
    """(cell, task) -> its runs' predictions, from each metrics.json and the predictions.csv
    beside it; the seeds of a cell must share their dev examples."""
    runs: dict[tuple[str, str], dict[int, tuple[dict, pd.DataFrame, Path]]] = {}
    for path in map(Path, metrics_paths):
        record, frame = _read_run(path)
        cell, seed = str(record["run"]["cell"]), int(record["run"]["seed"])
        for task, rows in frame.groupby("task"):
            if task not in PRIMARY_METRIC:
                raise OutcomesError(f"{path.parent / 'predictions.csv'}: unknown task {task!r}")
            by_seed = runs.setdefault((cell, str(task)), {})
            if seed in by_seed:
                raise OutcomesError(
                    f"{path}: {cell} seed {seed} already read from {by_seed[seed][2]}"
                )
            by_seed[seed] = (record, rows.sort_values("id"), path)
    return {key: _outcomes(key, by_seed) for key, by_seed in runs.items()}


def _outcomes(key: tuple[str, str], by_seed: dict) -> Outcomes:
    cell, task = key
    seeds = tuple(sorted(by_seed))
    _, first, _ = by_seed[seeds[0]]
    ids = tuple(first["id"])
    for seed in seeds[1:]:
        if tuple(by_seed[seed][1]["id"]) != ids:
            raise OutcomesError(
                f"{by_seed[seed][2]}: {cell} seeds {seeds[0]} and {seed} have different "
                f"{task} dev examples"
            )
    streams = {stream_key(by_seed[s][0]) for s in seeds}
    if len(streams) > 1:
        raise OutcomesError(f"{cell}: its seeds were trained with different settings: {streams}")
    records = [by_seed[s][0] for s in seeds]
    return Outcomes(
        seeds,
        ids,
        first["gold"].to_numpy(float),
        np.stack([by_seed[s][1]["prediction"].to_numpy(float) for s in seeds]),
        streams.pop(),
        np.array([_epoch_value(r, task, "final") for r in records]),
        tuple(int(r.get("best_epoch") or len(r.get("epochs", [])) or 1) for r in records),
        tuple(len(r.get("epochs", [])) or 1 for r in records),
    )
