"""Train and evaluate one cell with one seed: the single loop for every task and cell.

    python -m workflow_src.train --settings-json '{"tasks": ["sst"], ...}' --seed 1 --run-dir DIR
    python -m workflow_src.train --settings cell.json --seed 1 --run-dir DIR

Writes into DIR (each file to a temporary name first, then renamed): metrics.json (schema in
README / issue 3), predictions.csv (task, id, prediction, gold; dev, last epoch), and checkpoint/
at the end of every epoch (removed after success unless keep_checkpoints). A restarted job with
the same DIR, settings and seed resumes after the last complete epoch and ends with the same
metrics as an uninterrupted run on CPU: batch order derives from (seed, epoch), the torch RNG is
re-seeded from (seed, epoch), and weights, optimiser, scheduler and teacher come back exactly.
Logging goes to stderr (the rule redirects it into the job's log), with a tqdm bar.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import sys
import time
from pathlib import Path

from .atomic import write_text_atomic
from .config import TrainConfig

log = logging.getLogger("workflow_src.train")

QUORA_SAMPLE_SEED = 2023  # fixed: the downsampled Quora subset is the same for every seed
SUBSET_SEED = 2024  # fixed: train_limit / dev_limit keep the same rows for every seed and cell


# ----------------------------------------------------------------------------- data


def subset(rows: list, limit: int | None) -> list:
    """`limit` rows drawn at random (fixed seed), kept in file order; all rows without a limit.

    Not the first `limit` rows: ids-sst-train.csv holds mostly positive sentences first and
    mostly negative ones after row 4000, so a prefix would train on one sentiment only.
    """
    if limit is None or len(rows) <= limit:
        return rows
    return [rows[i] for i in sorted(random.Random(SUBSET_SEED).sample(range(len(rows)), limit))]


def load_data(cfg: TrainConfig) -> tuple[dict, dict, dict]:
    """(train examples by task, dev examples by task, the `data` block of metrics.json)."""
    from .data import load_split, read_provenance

    train, dev, skipped = {}, {}, {}
    for task in cfg.tasks:
        for split, store in (("train", train), ("dev", dev)):
            loaded = load_split(cfg.data_dir, task, split, cfg.max_bad_rows)
            skipped[f"{task}/{split}"] = len(loaded.bad_rows)
            store[task] = list(loaded.examples)
    if cfg.tasks == ("quora",) and cfg.downsample_quora_to_sst:
        # Paper 5.3: single-task paraphrase runs use as many Quora pairs as SST has sentences.
        sst_size = len(load_split(cfg.data_dir, "sst", "train", cfg.max_bad_rows).examples)
        if len(train["quora"]) > sst_size:
            keep = sorted(
                random.Random(QUORA_SAMPLE_SEED).sample(range(len(train["quora"])), sst_size)
            )
            train["quora"] = [train["quora"][i] for i in keep]
            log.info("quora train sampled down to the SST train size: %d pairs", sst_size)
    for task in cfg.tasks:
        train[task] = subset(train[task], cfg.train_limit)
        dev[task] = subset(dev[task], cfg.dev_limit)
    provenance = read_provenance(cfg.data_dir)
    standin = "quora" in cfg.tasks and bool(provenance.get("quora_train_standin", False))
    if standin:
        log.warning("Quora train is a stand-in: %s", provenance.get("note", ""))
    info = {
        "train_examples": {t: len(train[t]) for t in cfg.tasks},
        "dev_examples": {t: len(dev[t]) for t in cfg.tasks},
        "skipped_rows": skipped,
        "quora_train_standin": standin,
        "provenance": provenance,
    }
    return train, dev, info


# ----------------------------------------------------------------------------- schedule


def plan_epoch(cfg: TrainConfig, lengths: dict, seed: int, epoch: int) -> list[list[tuple]]:
    """Updates of one epoch; each is a list of (task, row indices), its loss the sum over them.

    round_robin: all sst batches, then quora, then sts (paper 4); interleaved: one batch of
    every task that still has batches per update; proportional: all batches in a random order,
    so each task comes up in proportion to its size. Every example is seen once per epoch.
    """
    from .batching import epoch_rng, train_batches

    per_task = {
        t: train_batches(
            lengths[t], cfg.batch_size, epoch_rng(seed, epoch, t), cfg.length_bucketing
        )
        for t in cfg.tasks
    }
    if cfg.task_schedule == "round_robin":
        return [[(t, b)] for t in cfg.tasks for b in per_task[t]]
    if cfg.task_schedule == "interleaved":
        longest = max(len(b) for b in per_task.values())
        return [
            [(t, per_task[t][i]) for t in cfg.tasks if i < len(per_task[t])] for i in range(longest)
        ]
    pool = [[(t, b)] for t in cfg.tasks for b in per_task[t]]
    epoch_rng(seed, epoch, "schedule").shuffle(pool)
    return pool


# ----------------------------------------------------------------------------- helpers


def pick_device(cfg: TrainConfig):
    import torch

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda but no CUDA device is available")
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def make_optimizer(cfg: TrainConfig, params: list, device):
    """Adam (L2 weight decay) or AdamW (decoupled), fused kernels where torch has them."""
    import torch

    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    try:
        return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=device.type == "cuda")


def make_scheduler(cfg: TrainConfig, optimizer, total_steps: int):
    import torch

    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


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
    import subprocess

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


def code_version() -> str:
    """sha256 of this package's source and the torch/transformers versions.

    Stored in every checkpoint: a resume continues only under the code that began the run, so
    an edit between a kill and its rerun cannot yield metrics that are half one version, half
    another.
    """
    import hashlib

    import torch
    import transformers

    digest = hashlib.sha256(f"{torch.__version__} {transformers.__version__}".encode())
    for source in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def peak_memory_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def predictions_csv(dev_tok: dict, predictions: dict) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["task", "id", "prediction", "gold"])
    for task, split in dev_tok.items():
        for row_id, pred, gold in zip(split.ids, predictions[task], split.labels, strict=True):
            writer.writerow([task, row_id, pred, gold])
    return buffer.getvalue()


# ----------------------------------------------------------------------------- evaluation


def evaluate(model, dev_tok: dict, cfg: TrainConfig, device, pad_id: int) -> tuple[dict, dict]:
    """Dev metrics and predictions (file order) of every task, without dropout or autograd."""
    import torch

    from .batching import autocast, collate, eval_batches
    from .metrics import task_metrics
    from .model import TASK_SPECS

    model.eval()
    metrics, predictions = {}, {}
    with torch.inference_mode():
        for task, split in dev_tok.items():
            preds = [None] * len(split)
            for index in eval_batches(split.lengths(), cfg.eval_batch_size):
                batch = collate(split, index, pad_id).to(device)
                with autocast(device, cfg.precision):
                    out = model(batch)
                for i, p in zip(index, TASK_SPECS[task].predict(out), strict=True):
                    preds[i] = p
            metrics[task] = task_metrics(task, preds, split.labels)
            predictions[task] = preds
    model.train()
    return metrics, predictions


# ----------------------------------------------------------------------------- the run


def run(cfg: TrainConfig, seed: int, run_dir: Path) -> dict:
    """Train, evaluate each epoch, checkpoint, and write metrics.json + predictions.csv."""
    started = time.perf_counter()
    import platform

    import torch
    import transformers
    from tqdm import tqdm

    from . import checkpoint
    from .batching import autocast, collate, tokenize_split
    from .metrics import primary
    from .model import TASK_SPECS, build_model
    from .smart import MomentumTeacher, bregman_term, smoothness_regularizer

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    device = pick_device(cfg)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    log.info(
        "run %s seed %d on %s (%d threads) -> %s", cfg.run_name, seed, device, cfg.threads, run_dir
    )

    train_ex, dev_ex, data_info = load_data(cfg)
    torch.manual_seed(seed)
    model, tokenizer = build_model(cfg)
    model.to(device)
    pad_id = tokenizer.pad_token_id or 0
    joint = cfg.pair_encoding == "joint"
    train_tok = {
        t: tokenize_split(t, train_ex[t], tokenizer, cfg.max_length, joint) for t in cfg.tasks
    }
    dev_tok = {t: tokenize_split(t, dev_ex[t], tokenizer, cfg.max_length, joint) for t in cfg.tasks}
    lengths = {t: train_tok[t].lengths() for t in cfg.tasks}
    steps_per_epoch = len(plan_epoch(cfg, lengths, seed, 1))
    total_steps = steps_per_epoch * cfg.epochs

    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    log.info(
        "%s: %d parameters, %d trainable; %d updates per epoch",
        cfg.model,
        sum(p.numel() for p in model.parameters()),
        sum(p.numel() for _, p in trainable),
        steps_per_epoch,
    )
    optimizer = make_optimizer(cfg, [p for _, p in trainable], device)
    scheduler = make_scheduler(cfg, optimizer, total_steps)
    smart = cfg.smart
    teacher = None
    if smart.enabled and smart.bregman:
        teacher = MomentumTeacher(
            model, smart.beta_early, smart.beta_late, smart.beta_switch_fraction
        )

    # ---- resume from the last complete epoch, if this run dir has one for these settings
    start_epoch, step, history, resumed_from, prior_wall, train_seconds = 1, 0, [], None, 0.0, 0.0
    code = code_version()
    found = checkpoint.load_latest(run_dir, device)
    if found is not None:
        epoch_done, tensors, state = found
        if (
            state.get("settings") != json.dumps(cfg.to_dict(), sort_keys=True)
            or state.get("seed") != seed
        ):
            log.warning("checkpoint in %s is for other settings or seed; starting afresh", run_dir)
            checkpoint.remove(run_dir)
        elif state.get("code") != code:
            log.warning(
                "checkpoint in %s was written by other code (workflow_src or torch/transformers "
                "changed since); starting afresh",
                run_dir,
            )
            checkpoint.remove(run_dir)
        else:
            with torch.no_grad():
                params = dict(model.named_parameters())
                for name, _ in trainable:
                    params[name].copy_(tensors[name])
            if teacher is not None:
                teacher.load_state_dict(
                    {k[8:]: v for k, v in tensors.items() if k.startswith("teacher.")}
                )
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"].cpu())
            step, history = state["step"], json.loads(state["history"])
            prior_wall, train_seconds = state["wall_seconds"], state["train_seconds"]
            start_epoch = resumed_from = epoch_done
            start_epoch += 1
            log.info("resumed after epoch %d (update %d of %d)", epoch_done, step, total_steps)

    # ---- the loop
    model.train()
    examples_seen = sum(len(train_tok[t]) for t in cfg.tasks) * (start_epoch - 1)
    for epoch in range(start_epoch, cfg.epochs + 1):
        epoch_start = time.perf_counter()
        # Dropout and SMART noise are a function of (seed, epoch): a resumed run matches.
        torch.manual_seed(seed * 1000 + epoch)
        loss_sum = dict.fromkeys(cfg.tasks, 0.0)
        loss_count = dict.fromkeys(cfg.tasks, 0)
        plan = plan_epoch(cfg, lengths, seed, epoch)
        bar = tqdm(
            plan,
            desc=f"epoch {epoch}/{cfg.epochs}",
            file=sys.stderr,
            mininterval=1.0 if sys.stderr.isatty() else 30.0,
            dynamic_ncols=True,
        )
        for update in bar:
            optimizer.zero_grad(set_to_none=True)
            for task, index in update:
                spec = TASK_SPECS[task]
                batch = collate(train_tok[task], index, pad_id).to(device)
                with autocast(device, cfg.precision):
                    embeds = model.embed(batch)  # (views*B, T, E)
                    out = model(batch, embeds)
                    loss = spec.loss(out.float(), batch.labels)
                    total = loss
                    if smart.enabled:

                        def forward(e, batch=batch):  # this task's own head, always
                            return model(batch, e)

                        total = total + smoothness_regularizer(
                            forward, embeds, out, spec.kind, smart
                        )
                        if teacher is not None:
                            total = total + bregman_term(
                                out, teacher(batch), spec.kind, smart.bregman_weight
                            )
                # Backward per task: the gradient of the summed loss, without holding every graph.
                total.backward()
                loss_sum[task] += loss.item() * len(index)
                loss_count[task] += len(index)
                examples_seen += len(index)
            optimizer.step()
            scheduler.step()
            if teacher is not None:
                teacher.update(model, step, total_steps)
            step += 1
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        bar.close()
        epoch_train = time.perf_counter() - epoch_start
        train_seconds += epoch_train

        dev_metrics, predictions = evaluate(model, dev_tok, cfg, device, pad_id)
        history.append(
            {
                "epoch": epoch,
                "train_loss": {t: loss_sum[t] / max(1, loss_count[t]) for t in cfg.tasks},
                "dev": dev_metrics,
                "seconds": time.perf_counter() - epoch_start,
            }
        )
        log.info(
            "epoch %d: train loss %s dev %s (%.1fs)",
            epoch,
            json.dumps(history[-1]["train_loss"]),
            json.dumps(dev_metrics),
            history[-1]["seconds"],
        )
        tensors = {name: p for name, p in trainable}
        if teacher is not None:
            tensors.update({f"teacher.{k}": v for k, v in teacher.state_dict().items()})
        checkpoint.save(
            run_dir,
            epoch,
            tensors,
            {
                "settings": json.dumps(cfg.to_dict(), sort_keys=True),
                "seed": seed,
                "code": code,
                "epoch": epoch,
                "step": step,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "history": json.dumps(json_ready(history)),
                "wall_seconds": prior_wall + time.perf_counter() - started,
                "train_seconds": train_seconds,
            },
        )

    if start_epoch > cfg.epochs:  # resumed after the last epoch: outputs were not yet written
        _, predictions = evaluate(model, dev_tok, cfg, device, pad_id)
    history = json.loads(json.dumps(json_ready(history)))  # one form, fresh or resumed
    final = history[-1]["dev"]
    best = {}
    for task in cfg.tasks:
        top = max(
            history,
            key=lambda h, t=task: primary(
                t, {k: (math.nan if v is None else v) for k, v in h["dev"][t].items()}
            ),
        )
        best[task] = top["dev"][task]

    slurm_job = os.environ.get("SLURM_JOB_ID")
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
        "final": final,
        "best": best,
        "epochs": history,
        "data": data_info,
        "compute": {
            "wall_seconds": prior_wall + time.perf_counter() - started,
            "train_seconds": train_seconds,
            "train_examples_per_second": examples_seen / train_seconds if train_seconds else 0.0,
            "peak_memory_mb": peak_memory_mb(device),
            "device": device.type,
            "gpu_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "threads": cfg.threads,
            "slurm_job_id": slurm_job,
            "resumed_from_epoch": resumed_from,
        },
        "provenance": {
            "versions": {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "python": platform.python_version(),
            },
            "git_commit": git_commit(),
        },
        "smart": cfg.to_dict()["smart"],
    }
    metrics = json_ready(metrics)
    write_text_atomic(run_dir / "predictions.csv", predictions_csv(dev_tok, predictions))
    write_text_atomic(
        run_dir / "metrics.json", json.dumps(metrics, indent=2, allow_nan=False) + "\n"
    )
    if not cfg.keep_checkpoints:
        checkpoint.remove(run_dir)
    log.info("final dev metrics: %s", json.dumps(final))
    return metrics


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
    except (OSError, ValueError, TypeError) as exc:
        log.error("bad settings: %s", exc)
        return 2
    run(cfg, args.seed, args.run_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
