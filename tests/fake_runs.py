"""Fake-but-valid runs (metrics.json and predictions.csv) for every cell, so tables, claims and
reports test without training.

Values sit near the paper's numbers (so claims and deltas look realistic) plus a deterministic
per-seed jitter. The best (last) epoch's metrics are computed from predictions.csv, as a real
run's are: DEV_SIZE dev examples per task, with the same ids and gold values for every cell.
`python -m tests.fake_runs --root results/runs --preset quick --seeds 1 2 3` writes them by hand.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np
import yaml

from workflow_src.analysis.claims import paper_values
from workflow_src.analysis.metrics import selection_score, task_metrics
from workflow_src.spec.grid import MULTITASK, build_cells, build_tables

REPO = Path(__file__).resolve().parents[1]
PAPER_RESULTS = REPO / "report" / "paper_results.yaml"
CONFIG = REPO / "config.yaml"
SECONDARY = {"sst": "macro_f1", "quora": "f1", "sts": "spearman"}
PRIMARY = {"sst": "accuracy", "quora": "accuracy", "sts": "pearson"}
DEV_SIZE = 200


def load_config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def paper_point(grid: dict) -> dict[tuple[str, str], float]:
    """(cell, task) -> a plausible fraction, from the paper where it has the cell."""
    paper = yaml.safe_load(PAPER_RESULTS.read_text())
    paper["tables"] = {int(k): v for k, v in paper["tables"].items()}
    values = paper_values(build_tables(grid), paper, [4, 3, 5, 6, 7, 8, 9, 2])
    return {key: float(v) / 100 for key, v in values.items()}


def dev_gold(task: str) -> np.ndarray:
    """The task's fake dev labels: the same for every cell and seed."""
    rng = np.random.default_rng(list(task.encode()))
    if task == "sst":
        return rng.integers(0, 5, DEV_SIZE)
    if task == "quora":
        return rng.integers(0, 2, DEV_SIZE).astype(float)
    return np.round(rng.uniform(0, 5, DEV_SIZE), 1)


def fake_predictions(task: str, target: float, rng) -> list:
    """Dev predictions whose primary metric is `target` (accuracy to 1/DEV_SIZE, Pearson exactly)."""
    gold = dev_gold(task)
    if task == "sts":
        z = (gold - gold.mean()) / gold.std()
        noise = rng.normal(size=DEV_SIZE)
        noise -= noise.mean() + (noise @ z) / DEV_SIZE * z  # orthogonal to the gold scores
        noise /= noise.std()
        return (2.5 + target * z + np.sqrt(1 - target**2) * noise).tolist()
    right = rng.permutation(DEV_SIZE) < round(target * DEV_SIZE)
    wrong = (gold + 1) % 5 if task == "sst" else 1 - gold
    return [int(v) for v in np.where(right, gold, wrong)]


def predictions_csv(predictions: dict[str, list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["task", "id", "prediction", "gold"])
    for task, values in predictions.items():
        for i, (value, gold) in enumerate(zip(values, dev_gold(task).tolist(), strict=True)):
            writer.writerow([task, f"{task}{i:04d}", value, gold])
    return buffer.getvalue()


def fake_record(
    cell, tasks, preset: str, seed: int, base: dict, *, standin: bool, epochs: int, gpu_name=None
) -> tuple[dict, dict[str, list]]:
    """(metrics.json, the best epoch's dev predictions by task) of one fake run."""
    rng = np.random.default_rng([seed, *cell.id.encode()])
    history = []
    targets = {
        task: min(0.99, max(0.01, base.get((cell.id, task), 0.5) + rng.normal(0, 0.006)))
        for task in tasks
    }
    for epoch in range(1, epochs + 1):
        dev = {}
        for task in tasks:
            value = targets[task] - 0.04 * (epochs - epoch) / max(1, epochs)
            dev[task] = {PRIMARY[task]: value, SECONDARY[task]: value * 0.9}
        history.append(
            {
                "epoch": epoch,
                "train_loss": {task: 1.5 / epoch for task in tasks},
                "dev": dev,
                "seconds": 10.0 + epoch,
            }
        )
    final = history[-1]["dev"]
    predictions = {task: fake_predictions(task, targets[task], rng) for task in tasks}
    gold = {task: dev_gold(task).tolist() for task in tasks}
    history[-1]["dev"] = {task: task_metrics(task, predictions[task], gold[task]) for task in tasks}
    best_epoch = 1 + max(range(len(history)), key=lambda i: selection_score(history[i]["dev"]))
    assert best_epoch == epochs, "the fake runs improve every epoch"
    best = history[best_epoch - 1]["dev"]  # one epoch for every task, as train.py picks it
    record = {
        "run": {
            "cell": cell.id,
            "preset": preset,
            "seed": seed,
            "tasks": list(tasks),
            "model": cell.overrides.get("model", "bert"),
            "encoder": "embedded",
        },
        "settings": {"run_name": cell.id, "seed": seed, **cell.overrides},
        "final": final,
        "best": best,
        "best_epoch": best_epoch,
        "epochs": history,
        "data": {
            "train_examples": {task: 1000 for task in tasks},
            "dev_examples": {task: 500 for task in tasks},
            "skipped_rows": {"quora/dev": 2},
            "quora_train_standin": standin and "quora" in tasks,
            "provenance": {},
        },
        "compute": {
            "wall_seconds": 30.0 + len(tasks) * 10,
            "train_seconds": 25.0,
            "train_examples_per_second": 120.0,
            "peak_memory_mb": 900.0,
            "device": "cuda" if gpu_name else "cpu",
            "gpu_name": gpu_name,
            "threads": 1,
            "slurm_job_id": None,
            "resumed_from_epoch": None,
        },
        "provenance": {
            "versions": {"torch": "2.13.0", "transformers": "5.24.0", "python": "3.11.2"},
            "git_commit": "0123456789abcdef",
        },
        "smart": {"enabled": cell.id == f"{MULTITASK}-smart"},
    }
    return record, predictions


def write_fake_runs(
    root: str | Path,
    preset: str = "quick",
    seeds=(1,),
    grid: dict | None = None,
    *,
    standin: bool = False,
    epochs: int = 3,
    cells=None,
    gpu_name=None,
) -> list[Path]:
    """Write `<root>/<preset>/<cell>/seed<k>/metrics.json` and predictions.csv for every cell
    (or `cells`); returns the metrics.json paths."""
    grid = grid or load_config()["grid"]
    base = paper_point(grid)
    paths = []
    for cell in build_cells(grid).values():
        if cells is not None and cell.id not in cells:
            continue
        for seed in seeds:
            record, predictions = fake_record(
                cell,
                cell.tasks,
                preset,
                seed,
                base,
                standin=standin,
                epochs=epochs,
                gpu_name=gpu_name,
            )
            path = Path(root) / preset / cell.id / f"seed{seed}" / "metrics.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.parent / "predictions.csv").write_text(predictions_csv(predictions))
            path.write_text(json.dumps(record, indent=1))
            paths.append(path)
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="results/runs")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--standin", action="store_true")
    args = parser.parse_args()
    for path in write_fake_runs(args.root, args.preset, args.seeds, standin=args.standin):
        print(path)
