"""A run's state across a kill and its resume: what training changes (`Parts`), how far it has
come (`Progress`), and the checkpoint that holds both.

What a checkpoint holds is `Parts.to_state` (weights, optimiser, scheduler, RNG) and
`Progress.to_state` (epoch, step, history, clocks); their `from_state` read back exactly what
they wrote. `run_identity` is what a checkpoint must match to be resumed: settings, seed and
the code version (record.code_version).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from workflow_src.analysis.metrics import selection_score
from workflow_src.spec.config import TrainConfig
from workflow_src.train import record
from workflow_src.train.build import make_optimizer, make_scheduler

log = logging.getLogger(__name__)


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
    curve: list[dict] = field(default_factory=list)  # curve.Curve's points so far
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
            "history": json.dumps(record.json_ready(self.history)),
            "best_epoch": self.best_epoch or 0,
            "best_predictions": json.dumps(self.best_predictions),
            "wall_seconds": self.wall_seconds(),
            "train_seconds": self.train_seconds,
            "curve": json.dumps(record.json_ready(self.curve)),
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
            curve=json.loads(state.get("curve", "[]")),
            started=started,
        )


def run_identity(cfg: TrainConfig, seed: int) -> dict:
    """What a checkpoint must match to be resumed: settings, seed and code."""
    return {
        "settings": json.dumps(cfg.to_dict(), sort_keys=True),
        "seed": seed,
        "code": record.code_version(),
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
