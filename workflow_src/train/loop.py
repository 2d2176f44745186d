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

Read `run` top to bottom: set-up, `resume`, the loop (one `update_loss` per task batch), then
`metrics_record` and `write_outputs`. What a checkpoint holds is `Parts.to_state` (weights,
optimiser, scheduler, RNG) and `Progress.to_state` (epoch, step, history, clocks); their
`from_state` read back exactly what they wrote. Modules that import torch (batching, model,
smart, checkpoint) are imported inside the functions that need them, so `--help` and a settings
error answer without loading torch.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import math
import os
import platform
import random
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from workflow_src.analysis.metrics import selection_score
from workflow_src.atomic import write_text_atomic
from workflow_src.data.download import read_provenance
from workflow_src.data.read import load_split
from workflow_src.spec.config import TrainConfig
from workflow_src.train.tracking import EpochTracker

log = logging.getLogger("workflow_src.train.loop")

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
    train, dev, skipped = {}, {}, {}
    for task in cfg.tasks:
        for split, store in (("train", train), ("dev", dev)):
            loaded = load_split(cfg.data_dir, task, split, cfg.max_bad_rows)
            skipped[f"{task}/{split}"] = len(loaded.bad_rows)
            store[task] = list(loaded.examples)
    if "quora" in cfg.tasks:
        train["quora"] = quora_sample(cfg, train["quora"])
    for task in cfg.tasks:
        train[task] = subset(train[task], cfg.train_limit)
        dev[task] = subset(dev[task], cfg.dev_limit)
    return train, dev, data_record(cfg, train, dev, skipped)


def data_record(cfg: TrainConfig, train: dict, dev: dict, skipped: dict) -> dict:
    """metrics.json's `data`: examples per task and split, malformed rows, where data came from."""
    provenance = read_provenance(cfg.data_dir)
    standin = "quora" in cfg.tasks and bool(provenance.get("quora_train_standin", False))
    if standin:
        log.warning("Quora train is a stand-in: %s", provenance.get("note", ""))
    return {
        "train_examples": {t: len(train[t]) for t in cfg.tasks},
        "dev_examples": {t: len(dev[t]) for t in cfg.tasks},
        "skipped_rows": skipped,
        "quora_train_standin": standin,
        "provenance": provenance,
    }


def quora_sample(cfg: TrainConfig, rows: list) -> list:
    """Paper 5.3: single-task paraphrase runs use as many Quora pairs as SST has sentences
    (a fixed sample, the same for every seed); every pair otherwise."""
    if cfg.tasks != ("quora",) or not cfg.downsample_quora_to_sst:
        return rows
    sst_size = len(load_split(cfg.data_dir, "sst", "train", cfg.max_bad_rows).examples)
    if len(rows) <= sst_size:
        return rows
    log.info("quora train sampled down to the SST train size: %d pairs", sst_size)
    return [
        rows[i] for i in sorted(random.Random(QUORA_SAMPLE_SEED).sample(range(len(rows)), sst_size))
    ]


@dataclass
class Prepared:
    """A run's tokenised data: what the model, the loop and the record need of it."""

    train: dict  # task -> batching.TokenizedSplit
    dev: dict
    info: dict  # metrics.json's `data`
    vocab_size: int
    pad_id: int


def prepare_data(cfg: TrainConfig, tokens: dict[str, Path] | None) -> Prepared:
    """Tokenised train and dev splits of every task: read from the tokens files the DAG made
    once per task (workflow_src.data.tokens), or without them read the CSVs and tokenise here."""
    if tokens is not None:
        return load_tokenized(cfg, tokens)
    from workflow_src.data.encoders import load_tokenizer

    train_ex, dev_ex, info = load_data(cfg)
    tokenizer = load_tokenizer(cfg.encoder)
    pad_id = tokenizer.pad_token_id or 0
    return Prepared(
        tokenize(cfg, tokenizer, train_ex),
        tokenize(cfg, tokenizer, dev_ex),
        info,
        len(tokenizer),
        pad_id,
    )


def load_tokenized(cfg: TrainConfig, tokens: dict[str, Path]) -> Prepared:
    """The job's rows of each task's tokens file: the same sample, by row index, that
    load_data draws from the examples, so the batches match a run that tokenised itself."""
    from workflow_src.data import tokens as tokens_file
    from workflow_src.data.batching import TokenizedSplit

    missing = sorted(set(cfg.tasks) - set(tokens))
    if missing:
        raise ValueError(f"no tokens file for task(s) {', '.join(missing)}")
    joint = cfg.pair_encoding == "joint"
    out = {"train": {}, "dev": {}}
    skipped = {}
    for task in cfg.tasks:
        meta, splits = tokens_file.load(tokens[task], task, cfg.max_length, joint)
        rows = {
            "train": subset(
                quora_sample(cfg, list(range(len(splits["train"][0])))), cfg.train_limit
            ),
            "dev": subset(list(range(len(splits["dev"][0]))), cfg.dev_limit),
        }
        for split, (ids, labels, toks, types) in splits.items():
            skipped[f"{task}/{split}"] = meta["skipped_rows"][split]
            keep = rows[split]
            out[split][task] = TokenizedSplit(
                task,
                [ids[i] for i in keep],
                [labels[i] for i in keep],
                [toks[i] for i in keep],
                [types[i] for i in keep] if types is not None else None,
                meta["views"],
            )
    info = data_record(cfg, out["train"], out["dev"], skipped)
    return Prepared(out["train"], out["dev"], info, meta["vocab_size"], meta["pad_id"])


# ----------------------------------------------------------------------------- schedule


def plan_epoch(cfg: TrainConfig, lengths: dict, seed: int, epoch: int) -> list[list[tuple]]:
    """Updates of one epoch; each is a list of (task, row indices), its loss the sum over them.

    round_robin: all sst batches, then quora, then sts (paper 4); interleaved: one batch of
    every task that still has batches per update; proportional: all batches in a random order,
    so each task comes up in proportion to its size. Every example is seen once per epoch.
    """
    from workflow_src.data.batching import epoch_rng, train_batches

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


# ----------------------------------------------------------------------------- set-up


def pick_device(cfg: TrainConfig):
    import torch

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda but no CUDA device is available")
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def set_up_torch(cfg: TrainConfig):
    """The device, with torch's threads set and, on CPU, deterministic kernels (a resumed run
    then matches an uninterrupted one exactly)."""
    import torch

    torch.set_num_threads(cfg.threads)
    device = pick_device(cfg)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    return device


def build_model(cfg: TrainConfig, tokenizer=None, vocab: tuple[int, int] | None = None):
    """(model, tokenizer) of a TrainConfig; heads are initialised from the torch RNG.

    `vocab` (size, pad id), when the data came tokenised, spares loading the tokenizer: the
    tokenizer returned is then None.

    Here rather than in model.py, so that model.py never imports lstm.py (which imports
    model.mean_pool): the encoders and heads form no import circle.
    """
    from workflow_src.data.encoders import load_tokenizer
    from workflow_src.train.lstm import BiLSTMEncoder
    from workflow_src.train.model import (
        MultitaskModel,
        TransformerEncoder,
        apply_finetune,
        load_transformer,
    )

    if vocab is None:
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg.encoder)
        vocab = (len(tokenizer), tokenizer.pad_token_id or 0)
    if cfg.model == "bilstm":
        encoder = BiLSTMEncoder(
            vocab_size=vocab[0],
            embedding_dim=cfg.lstm_embedding_dim,
            hidden_dim=cfg.lstm_hidden_dim,
            dropout=cfg.dropout,
            pooling=cfg.pooling,
            pad_id=vocab[1],
        )
    else:
        encoder = TransformerEncoder(load_transformer(cfg.encoder), cfg.pooling)
        apply_finetune(encoder, cfg.finetune)
    views = 2 if cfg.pair_encoding == "separate" else 1
    model = MultitaskModel(encoder, cfg.tasks, views, cfg.sts_head, cfg.dropout)
    return model, tokenizer


def tokenize(cfg: TrainConfig, tokenizer, examples: dict) -> dict:
    """Token ids of every task's examples (batching.TokenizedSplit by task)."""
    from workflow_src.data.batching import tokenize_split

    joint = cfg.pair_encoding == "joint"
    return {t: tokenize_split(t, examples[t], tokenizer, cfg.max_length, joint) for t in cfg.tasks}


def parameter_groups(cfg: TrainConfig, trainable: dict) -> list[dict]:
    """The encoder's parameters at `lr`; the task heads' (`heads.*`) at `head_lr` when set."""
    if cfg.head_lr is None:
        return [{"params": list(trainable.values())}]
    encoder = [p for name, p in trainable.items() if not name.startswith("heads.")]
    heads = [p for name, p in trainable.items() if name.startswith("heads.")]
    return [
        group
        for group in ({"params": encoder}, {"params": heads, "lr": cfg.head_lr})
        if group["params"]
    ]


def make_optimizer(cfg: TrainConfig, trainable: dict, device):
    """Adam (L2 weight decay) or AdamW (decoupled), fused kernels where torch has them."""
    import torch

    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    groups = parameter_groups(cfg, trainable)
    try:
        return cls(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return cls(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=device.type == "cuda")


def make_scheduler(cfg: TrainConfig, optimizer, total_steps: int):
    import torch

    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)


# ----------------------------------------------------------------------------- run state


@dataclass
class Parts:
    """What training changes: the trainable weights, optimiser, scheduler and SMART's teacher."""

    model: object
    trainable: dict  # name -> parameter that trains (frozen ones come back from the encoder)
    optimizer: object
    scheduler: object
    teacher: object | None  # smart.MomentumTeacher when SMART's Bregman term is on
    # torch.amp.GradScaler: scales fp16 losses so small gradients do not underflow; a no-op
    # (enabled=False) in bf16 and fp32, whose exponent range needs none.
    scaler: object

    @classmethod
    def create(cls, cfg: TrainConfig, model, device, total_steps: int) -> Parts:
        import torch

        from workflow_src.data.batching import resolve_precision
        from workflow_src.train.smart import MomentumTeacher

        trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
        optimizer = make_optimizer(cfg, trainable, device)
        scheduler = make_scheduler(cfg, optimizer, total_steps)
        teacher = None
        if cfg.smart.enabled and cfg.smart.bregman:
            smart = cfg.smart
            teacher = MomentumTeacher(
                model, smart.beta_early, smart.beta_late, smart.beta_switch_fraction
            )
        fp16 = resolve_precision(cfg.precision, device) == "fp16"
        scaler = torch.amp.GradScaler(device.type, enabled=fp16)
        return cls(model, trainable, optimizer, scheduler, teacher, scaler)

    def backward(self, loss) -> None:
        self.scaler.scale(loss).backward()

    def step(self, step: int, total_steps: int) -> None:
        """One update of the weights from the gradients gathered since zero_grad (an fp16 step
        whose gradients overflowed is skipped and the scale lowered)."""
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.teacher is not None:
            self.teacher.update(self.model, step, total_steps)

    def tensors(self) -> dict:
        """The checkpoint's weights: trainable parameters, and the teacher's prefixed teacher."""
        tensors = dict(self.trainable)
        if self.teacher is not None:
            tensors.update({f"teacher.{k}": v for k, v in self.teacher.state_dict().items()})
        return tensors

    def to_state(self) -> dict:
        import torch

        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }

    def from_state(self, tensors: dict, state: dict) -> None:
        """Put back what `tensors()` and `to_state()` saved."""
        import torch

        with torch.no_grad():
            params = dict(self.model.named_parameters())
            for name in self.trainable:
                params[name].copy_(tensors[name])
        if self.teacher is not None:
            prefix = "teacher."
            self.teacher.load_state_dict(
                {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            )
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"].cpu())


@dataclass
class Progress:
    """How far a run has come, across a kill and its resume."""

    epoch: int = 0  # last complete epoch
    step: int = 0  # updates done
    history: list[dict] = field(default_factory=list)  # one epoch_record per epoch
    best_epoch: int | None = None  # the epoch with the best selection_score so far
    best_predictions: dict = field(default_factory=dict)  # its dev predictions by task
    earlier_wall: float = 0.0  # wall seconds of earlier attempts, up to their last checkpoint
    train_seconds: float = 0.0  # in training updates only (no evaluation), all attempts
    resumed_from: int | None = None  # the epoch this attempt resumed after
    started: float = field(default_factory=time.perf_counter)  # this attempt's start

    def wall_seconds(self) -> float:
        return self.earlier_wall + time.perf_counter() - self.started

    def record_epoch(self, record: dict, predictions: dict) -> bool:
        """Add a finished epoch; True when it is the best so far (the first wins a tie)."""
        self.history.append(record)
        self.epoch = record["epoch"]
        best = self.best_epoch
        if best is None or selection_score(record["dev"]) > selection_score(
            self.history[best - 1]["dev"]
        ):
            self.best_epoch, self.best_predictions = self.epoch, predictions
            return True
        return False

    def to_state(self) -> dict:
        return {
            "epoch": self.epoch,
            "step": self.step,
            "history": json.dumps(json_ready(self.history)),
            "best_epoch": self.best_epoch or 0,
            "best_predictions": json.dumps(self.best_predictions),
            "wall_seconds": self.wall_seconds(),
            "train_seconds": self.train_seconds,
        }

    @classmethod
    def from_state(cls, state: dict, started: float) -> Progress:
        """The progress `to_state()` saved; this attempt started at `started`."""
        return cls(
            epoch=state["epoch"],
            step=state["step"],
            history=json.loads(state["history"]),
            best_epoch=state["best_epoch"] or None,
            best_predictions=json.loads(state["best_predictions"]),
            earlier_wall=state["wall_seconds"],
            train_seconds=state["train_seconds"],
            resumed_from=state["epoch"],
            started=started,
        )


def run_identity(cfg: TrainConfig, seed: int) -> dict:
    """What a checkpoint must match to be resumed: settings, seed and code."""
    return {
        "settings": json.dumps(cfg.to_dict(), sort_keys=True),
        "seed": seed,
        "code": code_version(),
    }


def resume(run_dir: Path, identity: dict, parts: Parts, device, started: float) -> Progress:
    """Progress of the newest checkpoint in run_dir, with `parts` put back as it saved them;
    a fresh Progress when there is none, or when it is for other settings, seed or code."""
    from workflow_src.train import checkpoint

    found = checkpoint.load_latest(run_dir, device)
    if found is None:
        return Progress(started=started)
    _, tensors, state = found
    if state.get("settings") != identity["settings"] or state.get("seed") != identity["seed"]:
        log.warning("checkpoint in %s is for other settings or seed; starting afresh", run_dir)
        checkpoint.remove(run_dir)
        return Progress(started=started)
    if state.get("code") != identity["code"]:
        log.warning(
            "checkpoint in %s was written by other code (workflow_src or torch/transformers "
            "changed since); starting afresh",
            run_dir,
        )
        checkpoint.remove(run_dir)
        return Progress(started=started)
    parts.from_state(tensors, state)
    progress = Progress.from_state(state, started)
    log.info("resumed after epoch %d (update %d)", progress.epoch, progress.step)
    return progress


def save_checkpoint(run_dir: Path, identity: dict, parts: Parts, progress: Progress) -> None:
    from workflow_src.train import checkpoint

    state = {**identity, **progress.to_state(), **parts.to_state()}
    checkpoint.save(run_dir, progress.epoch, parts.tensors(), state)


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


# ----------------------------------------------------------------------------- evaluation


def predict(model, split, cfg: TrainConfig, device, pad_id: int) -> list:
    """Predictions of one tokenised split in file order, without dropout or autograd (leaves
    the model in eval mode)."""
    import torch

    from workflow_src.data.batching import autocast, collate, eval_batches
    from workflow_src.train.model import TASK_SPECS

    model.eval()
    predictions = [None] * len(split)
    with torch.inference_mode():
        for index in eval_batches(split.lengths(), cfg.eval_batch_size):
            batch = collate(split, index, pad_id).to(device)
            with autocast(device, cfg.precision):
                out = model(batch)
            for i, p in zip(index, TASK_SPECS[split.task].predict(out), strict=True):
                predictions[i] = p
    return predictions


def evaluate(model, dev_tok: dict, cfg: TrainConfig, device, pad_id: int) -> tuple[dict, dict]:
    """Dev metrics and predictions (file order) of every task; the model trains on after."""
    from workflow_src.analysis.metrics import task_metrics

    predictions = {
        task: predict(model, split, cfg, device, pad_id) for task, split in dev_tok.items()
    }
    model.train()
    metrics = {
        task: task_metrics(task, predictions[task], split.labels) for task, split in dev_tok.items()
    }
    return metrics, predictions


# ----------------------------------------------------------------------------- the run


def run(cfg: TrainConfig, seed: int, run_dir: Path, tracking="none", tokens=None) -> dict:
    """Train, evaluate each epoch, checkpoint, and write metrics.json + predictions.csv.

    `tracking` (tracking.py) only mirrors each epoch's record to TensorBoard: not a setting,
    since it changes no result (a run resumes whether or not it is tracked). `tokens`: task ->
    its tokens file (tokens.py), as the DAG passes them; without, the run tokenises itself.
    """
    started = time.perf_counter()
    import torch

    from workflow_src.data.batching import autocast, collate
    from workflow_src.train import checkpoint

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = set_up_torch(cfg)
    log.info(
        "run %s seed %d on %s (%d threads) -> %s", cfg.run_name, seed, device, cfg.threads, run_dir
    )

    # ---- data, model, optimiser: the same for a fresh and a resumed run
    data = prepare_data(cfg, tokens)
    train_tok, dev_tok, data_info, pad_id = data.train, data.dev, data.info, data.pad_id
    torch.manual_seed(seed)  # the heads' initial weights
    model, _ = build_model(cfg, vocab=(data.vocab_size, pad_id))
    model.to(device)
    lengths = {t: train_tok[t].lengths() for t in cfg.tasks}
    steps_per_epoch = len(plan_epoch(cfg, lengths, seed, 1))
    total_steps = steps_per_epoch * cfg.epochs
    parts = Parts.create(cfg, model, device, total_steps)
    log.info(
        "%s: %d parameters, %d trainable; %d updates per epoch",
        cfg.model,
        sum(p.numel() for p in model.parameters()),
        sum(p.numel() for p in parts.trainable.values()),
        steps_per_epoch,
    )

    # ---- resume from the last complete epoch, if run_dir has one for these settings
    identity = run_identity(cfg, seed)
    progress = resume(run_dir, identity, parts, device, started)
    first_epoch = progress.epoch + 1
    if progress.epoch == 0:
        checkpoint.remove_best(run_dir)  # a fresh start: no earlier run's weights stay behind
    tracker = EpochTracker.open(tracking, run_dir, first_epoch)

    # ---- the loop
    model.train()
    examples_seen = sum(len(train_tok[t]) for t in cfg.tasks) * progress.epoch
    for epoch in range(first_epoch, cfg.epochs + 1):
        epoch_start = time.perf_counter()
        # Dropout and SMART noise are a function of (seed, epoch): a resumed run matches.
        torch.manual_seed(seed * 1000 + epoch)
        losses, smart_stats = TaskLosses(cfg.tasks), BatchMeans()
        bar = progress_bar(plan_epoch(cfg, lengths, seed, epoch), epoch, cfg.epochs)
        for update in bar:
            parts.optimizer.zero_grad(set_to_none=True)
            for task, index in update:
                batch = collate(train_tok[task], index, pad_id).to(device)
                with autocast(device, cfg.precision):
                    loss, total, stats = update_loss(model, batch, cfg.smart, parts.teacher)
                # Backward per task: the gradient of the summed loss, without holding every graph.
                parts.backward(total)
                losses.add(task, loss.item(), len(index))
                if stats is not None:
                    smart_stats.add(stats)
                examples_seen += len(index)
            parts.step(progress.step, total_steps)
            progress.step += 1
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
        bar.close()
        progress.train_seconds += time.perf_counter() - epoch_start

        dev_metrics, predictions = evaluate(model, dev_tok, cfg, device, pad_id)
        seconds = time.perf_counter() - epoch_start
        record = epoch_record(epoch, losses.means(), dev_metrics, seconds, smart_stats.means())
        if progress.record_epoch(record, predictions) and cfg.keep_best:
            checkpoint.save_best(run_dir, model, epoch, identity["settings"])
        log.info(
            "epoch %d: train loss %s dev %s (%.1fs)",
            epoch,
            json.dumps(record["train_loss"]),
            json.dumps(dev_metrics),
            record["seconds"],
        )
        save_checkpoint(run_dir, identity, parts, progress)
        tracker.epoch(record, parts.scheduler.get_last_lr()[0])
    tracker.close()

    metrics = metrics_record(cfg, seed, progress, data_info, device, examples_seen)
    write_outputs(run_dir, metrics, dev_tok, progress.best_predictions)
    if not cfg.keep_checkpoints:
        checkpoint.remove(run_dir)
    log.info("final dev metrics: %s", json.dumps(metrics["final"]))
    return metrics


# ----------------------------------------------------------------------------- the record


def epoch_record(
    epoch: int, train_loss: dict, dev: dict, seconds: float, smart: dict | None = None
) -> dict:
    """One entry of metrics.json's `epochs`: mean training loss and dev metrics per task, and
    with SMART on its means over the epoch's batches (adv_loss, delta_inf, embed_abs_mean)."""
    record = {"epoch": epoch, "train_loss": train_loss, "dev": dev, "seconds": seconds}
    if smart is not None:
        record["smart"] = smart
    return record


def compute_record(cfg: TrainConfig, progress: Progress, device, examples_seen: int) -> dict:
    """metrics.json's `compute`: time, throughput, memory and where the run ran."""
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
    cfg: TrainConfig, seed: int, progress: Progress, data_info: dict, device, examples_seen: int
) -> dict:
    """The whole metrics.json of a finished run, strict JSON (NaN -> null)."""
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


def code_version() -> str:
    """sha256 of every Python file of the package (at any depth) and the torch/transformers
    versions.

    Stored in every checkpoint: a resume continues only under the code that began the run, so
    an edit between a kill and its rerun cannot yield metrics that are half one version, half
    another.
    """
    import torch

    digest = hashlib.sha256(f"{torch.__version__} {package_version('transformers')}".encode())
    package = Path(__file__).resolve().parents[1]
    for source in sorted(package.rglob("*.py")):
        name = source.relative_to(package).as_posix()
        digest.update(name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def peak_memory_mb(device) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


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
        tokens = None
        if args.tokens:
            tokens = dict(item.split("=", 1) for item in args.tokens)
            tokens = {task: Path(path) for task, path in tokens.items()}
    except (OSError, ValueError, TypeError) as exc:
        log.error("bad settings: %s", exc)
        return 2
    run(cfg, args.seed, args.run_dir, "tensorboard" if args.tensorboard else "none", tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
