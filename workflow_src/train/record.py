"""The run record: metrics.json (epochs, compute, provenance), predictions.csv and the code
version a checkpoint is tied to."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import os
import platform
import resource
import subprocess
from pathlib import Path

from workflow_src.atomic import write_text_atomic
from workflow_src.spec.config import TrainConfig

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parents[1]  # workflow_src/


def epoch_record(
    epoch: int, train_loss: dict, dev: dict, seconds: float, smart: dict | None = None
) -> dict:
    """One entry of metrics.json's `epochs`: mean training loss and dev metrics per task, and
    with SMART on its means over the epoch's batches (adv_loss, delta_inf, embed_abs_mean)."""
    record = {"epoch": epoch, "train_loss": train_loss, "dev": dev, "seconds": seconds}
    if smart is not None:
        record["smart"] = smart
    return record


def compute_record(cfg: TrainConfig, progress, device, examples_seen: int) -> dict:
    """metrics.json's `compute`: time, throughput, memory and where the run ran. `progress`: the
    run's state.Progress (not imported: state imports this module)."""
    import torch

    from workflow_src.data.batching import resolve_precision

    train_seconds = progress.train_seconds
    return {
        "precision": resolve_precision(cfg.precision, device),  # what `auto` chose here
        "wall_seconds": progress.wall_seconds(),
        "train_seconds": train_seconds,
        "train_examples_per_second": examples_seen / train_seconds if train_seconds else 0.0,
        "peak_memory_mb": peak_memory_mb(device),
        "device": device.type,
        "gpu_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "threads": cfg.threads,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "resumed_from_epoch": progress.resumed_from,
    }


def package_version(name: str) -> str:
    """An installed package's version from its metadata, without importing it (importing
    transformers costs a job about a CPU-second; a BiLSTM job never needs it)."""
    from importlib.metadata import version

    return version(name)


def provenance_record() -> dict:
    import torch

    return {
        "versions": {
            "torch": torch.__version__,
            "transformers": package_version("transformers"),
            "python": platform.python_version(),
        },
        "git_commit": git_commit(),
    }


def metrics_record(
    cfg: TrainConfig,
    seed: int,
    progress,
    data_info: dict,
    device,
    examples_seen: int,
    curve: dict | None = None,
) -> dict:
    """The whole metrics.json of a finished run (`progress`: its state.Progress), strict JSON
    (NaN -> null); `curve` (curve.Curve.record) under its own key, only where one was kept."""
    history = json.loads(json.dumps(json_ready(progress.history)))  # one form, fresh or resumed
    metrics = {
        "run": {
            "cell": cfg.run_name,
            "preset": cfg.preset,
            "seed": seed,
            "tasks": list(cfg.tasks),
            "model": cfg.model,
            "encoder": cfg.encoder,
        },
        "settings": cfg.to_dict(),
        "final": history[-1]["dev"],
        "best": history[progress.best_epoch - 1]["dev"],
        "best_epoch": progress.best_epoch,
        "epochs": history,
        "data": data_info,
        "compute": compute_record(cfg, progress, device, examples_seen),
        "provenance": provenance_record(),
        "smart": cfg.to_dict()["smart"],
    }
    if curve is not None:
        metrics["curve"] = curve
    return json_ready(metrics)


def write_outputs(run_dir: Path, metrics: dict, dev_tok: dict, predictions: dict) -> None:
    """predictions.csv, then metrics.json (whose presence marks the run finished)."""
    write_text_atomic(run_dir / "predictions.csv", predictions_csv(dev_tok, predictions))
    write_text_atomic(
        run_dir / "metrics.json", json.dumps(metrics, indent=2, allow_nan=False) + "\n"
    )


def predictions_csv(dev_tok: dict, predictions: dict) -> str:
    """task, id, prediction, gold of every dev example, in file order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["task", "id", "prediction", "gold"])
    for task, split in dev_tok.items():
        for row_id, pred, gold in zip(split.ids, predictions[task], split.labels, strict=True):
            writer.writerow([task, row_id, pred, gold])
    return buffer.getvalue()


def json_ready(value):
    """NaN/inf -> null, so metrics.json is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def code_version(package: Path = PACKAGE) -> str:
    """sha256 of every Python file of the package (at any depth: its path and its bytes) and the
    torch/transformers versions; `package` is workflow_src/ (a copy of it in the tests).

    Stored in every checkpoint: a resume continues only under the code that began the run, so
    an edit between a kill and its rerun cannot yield metrics that are half one version, half
    another.
    """
    import torch

    digest = hashlib.sha256(f"{torch.__version__} {package_version('transformers')}".encode())
    for source in sorted(package.rglob("*.py")):
        name = source.relative_to(package).as_posix()
        digest.update(name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def peak_memory_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
