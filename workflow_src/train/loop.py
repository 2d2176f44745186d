"""Train and evaluate one cell with one seed: the single loop for every task and cell.

    python -m workflow_src.train --settings-json '{"tasks": ["sst"], ...}' --seed 1 --run-dir DIR
    python -m workflow_src.train --settings cell.json --seed 1 --run-dir DIR

Writes into DIR (each file to a temporary name first, then renamed): metrics.json (schema in
README / issue 3), predictions.csv (task, id, prediction, gold; dev, of the best epoch: the one
metrics.json's `best` and so the tables report), best.safetensors (that epoch's weights, only
with keep_best), and checkpoint/ at the end of every epoch (removed after success unless
keep_checkpoints). The best epoch is one epoch for every task: the best primary metric, or for a
multi-task run the best mean of the tasks' primary metrics. A restarted job with
the same DIR, settings and seed resumes after the last complete epoch and ends with the same
metrics as an uninterrupted run on CPU: batch order derives from (seed, epoch), the torch RNG is
re-seeded from (seed, epoch), and weights, optimiser, scheduler and teacher come back exactly.
Logging goes to stderr (the rule redirects it into the job's log), with a tqdm bar.

Read `run` top to bottom: set-up (data/prepare.py, build.py), `resume` (state.py), the epochs
(`train_epoch`: one `update_loss` per task batch; then evaluate.py), then the record
(record.py). Modules that import torch (batching, model, smart, checkpoint) are imported inside
the functions that need them, so `--help` and a settings error answer without loading torch.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from functools import partial
from pathlib import Path

from workflow_src.data.prepare import Prepared, plan_epoch, prepare_data
from workflow_src.spec.config import TrainConfig
from workflow_src.train.build import build_model, set_up_torch
from workflow_src.train.curve import Curve, CurveSettings
from workflow_src.train.evaluate import evaluate
from workflow_src.train.record import epoch_record, metrics_record, write_outputs
from workflow_src.train.state import Parts, Progress, resume, run_identity, save_checkpoint
from workflow_src.train.tracking import EpochTracker

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- the run


def run(
    cfg: TrainConfig,
    seed: int,
    run_dir: Path,
    tracking="none",
    tokens=None,
    curve: CurveSettings | None = None,
) -> dict:
    """Train, evaluate each epoch, checkpoint, and write metrics.json + predictions.csv.

    `tracking` (tracking.py) only mirrors each epoch's record to TensorBoard and `curve`
    (curve.py) adds dev points within epochs: neither is a setting, since neither changes a
    result (a run resumes whether or not it has them). `tokens`: task -> its tokens file
    (data/tokens.py), as the DAG passes them; without, the run tokenises itself.
    """
    started = time.perf_counter()
    import torch

    from workflow_src.train import checkpoint

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = set_up_torch(cfg)
    log.info(
        "run %s seed %d on %s (%d threads) -> %s", cfg.run_name, seed, device, cfg.threads, run_dir
    )

    # ---- data, model, optimiser: the same for a fresh and a resumed run
    data = prepare_data(cfg, tokens)
    torch.manual_seed(seed)  # the heads' initial weights
    model, _ = build_model(cfg, vocab=(data.vocab_size, data.pad_id))
    model.to(device)
    lengths = {t: data.train[t].lengths() for t in cfg.tasks}
    total_steps = len(plan_epoch(cfg, lengths, seed, 1)) * cfg.epochs
    parts = Parts.create(cfg, model, device, total_steps)
    curve_points = Curve(curve or CurveSettings(), data.dev, total_steps // cfg.epochs)
    log_size(cfg, parts, total_steps // cfg.epochs)

    # ---- resume from the last complete epoch, if run_dir has one for these settings
    identity = run_identity(cfg, seed)
    progress = resume(run_dir, identity, parts, device, started)
    if progress.epoch == 0:
        checkpoint.remove_best(run_dir)  # a fresh start: no earlier run's weights stay behind
    tracker = EpochTracker.open(tracking, run_dir, progress.epoch + 1)

    # ---- the epochs: train, evaluate, keep the best, checkpoint
    model.train()
    examples_seen = sum(len(data.train[t]) for t in cfg.tasks) * progress.epoch
    for epoch in range(progress.epoch + 1, cfg.epochs + 1):
        epoch_start = time.perf_counter()
        # Dropout and SMART noise are a function of (seed, epoch): a resumed run matches.
        torch.manual_seed(seed * 1000 + epoch)
        plan = plan_epoch(cfg, lengths, seed, epoch)
        losses, smart_stats, curve_seconds = train_epoch(
            cfg, data, parts, progress, plan, epoch, total_steps, device, curve_points
        )
        examples_seen += sum(len(index) for update in plan for _, index in update)
        progress.train_seconds += time.perf_counter() - epoch_start - curve_seconds

        dev_metrics, predictions = evaluate(model, data.dev, cfg, device, data.pad_id)
        seconds = time.perf_counter() - epoch_start
        record = epoch_record(epoch, losses.means(), dev_metrics, seconds, smart_stats.means())
        if progress.record_epoch(record, predictions) and cfg.keep_best:
            checkpoint.save_best(run_dir, model, epoch, identity["settings"])
        log.info("epoch %d: train loss %s dev %s (%.1fs)", *epoch_summary(record))
        save_checkpoint(run_dir, identity, parts, progress)
        tracker.epoch(record, parts.scheduler.get_last_lr()[0])
    tracker.close()

    # ---- the record
    curve_record = curve_points.record(progress.curve)
    metrics = metrics_record(cfg, seed, progress, data.info, device, examples_seen, curve_record)
    write_outputs(run_dir, metrics, data.dev, progress.best_predictions)
    if not cfg.keep_checkpoints:
        checkpoint.remove(run_dir)
    log.info("final dev metrics: %s", json.dumps(metrics["final"]))
    return metrics


def log_size(cfg: TrainConfig, parts: Parts, updates_per_epoch: int) -> None:
    log.info(
        "%s: %d parameters, %d trainable; %d updates per epoch",
        cfg.model,
        sum(p.numel() for p in parts.model.parameters()),
        sum(p.numel() for p in parts.trainable.values()),
        updates_per_epoch,
    )


def epoch_summary(record: dict) -> tuple:
    """(epoch, train losses, dev metrics, seconds) of an epoch record, for the log."""
    return (
        record["epoch"],
        json.dumps(record["train_loss"]),
        json.dumps(record["dev"]),
        record["seconds"],
    )


def train_epoch(
    cfg: TrainConfig,
    data: Prepared,
    parts: Parts,
    progress: Progress,
    plan: list,
    epoch: int,
    total_steps: int,
    device,
    curve: Curve,
) -> tuple[TaskLosses, BatchMeans, float]:
    """One epoch's updates in `plan` order (each the summed loss of its task batches), with a
    curve point after every `curve.every`-th; returns the epoch's per-task training losses,
    SMART's statistics and the seconds its curve points took."""
    from workflow_src.data.batching import autocast, collate

    losses, smart_stats = TaskLosses(cfg.tasks), BatchMeans()
    curve_seconds = 0.0
    bar = progress_bar(plan, epoch, cfg.epochs)
    for update in bar:
        parts.optimizer.zero_grad(set_to_none=True)
        for task, index in update:
            batch = collate(data.train[task], index, data.pad_id).to(device)
            with autocast(device, cfg.precision):
                loss, total, stats = update_loss(parts.model, batch, cfg.smart, parts.teacher)
            # Backward per task: the gradient of the summed loss, without holding every graph.
            parts.backward(total)
            losses.add(task, loss.item(), len(index))
            if stats is not None:
                smart_stats.add(stats)
        parts.step(progress.step, total_steps)
        progress.step += 1
        if curve.due(progress.step):
            point_start = time.perf_counter()
            point = curve.point(parts.model, cfg, device, data.pad_id, progress.step, epoch)
            progress.curve.append(point)
            curve_seconds += time.perf_counter() - point_start
        bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    bar.close()
    return losses, smart_stats, curve_seconds


# ----------------------------------------------------------------------------- one update


def update_loss(model, batch, smart, teacher):
    """(task loss, loss to minimise, SMART's statistics or None) of one batch: the task's own
    loss plus, with SMART on, the smoothness and Bregman terms, all through the batch's head."""
    from workflow_src.spec.tasks import TASK
    from workflow_src.train.model import TASK_SPECS
    from workflow_src.train.smart import DropoutReplay, bregman_term, smoothness_term

    kind = TASK[batch.task].output
    embeds = model.embed(batch)  # (views*B, T, E): the embedding layer's output
    # Taken before the clean pass: SMART's perturbed passes replay its dropout masks.
    replay = DropoutReplay(embeds.device) if smart.enabled else None
    out = model(batch, embeds)
    loss = TASK_SPECS[batch.task].loss(out.float(), batch.labels)
    if not smart.enabled:
        return loss, loss, None
    # partial(model, batch): embedding output -> output of this batch's own head, always
    term = smoothness_term(
        partial(model, batch), embeds, out, kind, smart, replay, batch.attention_mask
    )
    total = loss + term.loss
    if teacher is not None:
        total = total + bregman_term(out, teacher(batch), kind, smart.bregman_weight)
    return loss, total, term.stats()


class TaskLosses:
    """Per-task mean training loss of one epoch, weighted by examples."""

    def __init__(self, tasks: tuple[str, ...]):
        self.sum = dict.fromkeys(tasks, 0.0)
        self.count = dict.fromkeys(tasks, 0)

    def add(self, task: str, loss: float, examples: int) -> None:
        self.sum[task] += loss * examples
        self.count[task] += examples

    def means(self) -> dict[str, float]:
        return {t: self.sum[t] / max(1, self.count[t]) for t in self.sum}


class BatchMeans:
    """Means over one epoch's batches of named values (SMART's statistics)."""

    def __init__(self):
        self.sum: dict[str, float] = {}
        self.batches = 0

    def add(self, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.sum[name] = self.sum.get(name, 0.0) + value
        self.batches += 1

    def means(self) -> dict[str, float] | None:
        return {k: v / self.batches for k, v in self.sum.items()} if self.batches else None


def progress_bar(plan: list, epoch: int, epochs: int):
    from tqdm import tqdm

    return tqdm(
        plan,
        desc=f"epoch {epoch}/{epochs}",
        file=sys.stderr,
        mininterval=1.0 if sys.stderr.isatty() else 30.0,
        dynamic_ncols=True,
    )


# ----------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_src.train",
        description="Train and evaluate one cell of the grid with one seed.",
    )
    settings = parser.add_mutually_exclusive_group(required=True)
    settings.add_argument("--settings-json", help="the TrainConfig as a JSON object")
    settings.add_argument("--settings", type=Path, help="a JSON file holding the TrainConfig")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--run-dir", type=Path, required=True, help="output folder of this run")
    parser.add_argument(
        "--tensorboard",
        type=int,
        choices=(0, 1),
        default=0,
        help="1: per-epoch curves into RUN_DIR/tensorboard/ (config.yaml tracking; tracking.py)",
    )
    parser.add_argument(
        "--curve-points",
        type=int,
        default=0,
        help="dev points per epoch on a fixed dev sample, into metrics.json's curve (0: none; "
        "a preset's curve_points; curve.py)",
    )
    parser.add_argument(
        "--curve-dev-rows",
        type=int,
        default=CurveSettings.dev_rows,
        help="dev rows per task each curve point is measured on (a preset's curve_dev_rows)",
    )
    parser.add_argument(
        "--tokens",
        nargs="+",
        metavar="TASK=FILE",
        help="each task's tokens file (python -m workflow_src.data.tokens split); without, the run "
        "reads the CSVs and tokenises itself",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        text = args.settings_json if args.settings_json is not None else args.settings.read_text()
        cfg = TrainConfig.from_dict(json.loads(text))
        curve = CurveSettings(args.curve_points, args.curve_dev_rows)
        tokens = None
        if args.tokens:
            tokens = dict(item.split("=", 1) for item in args.tokens)
            tokens = {task: Path(path) for task, path in tokens.items()}
    except (OSError, ValueError, TypeError) as exc:
        log.error("bad settings: %s", exc)
        return 2
    tracking = "tensorboard" if args.tensorboard else "none"
    run(cfg, args.seed, args.run_dir, tracking, tokens, curve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
