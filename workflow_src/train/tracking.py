"""Optional live tracking of a training run: per-epoch curves for TensorBoard.

Off by default (`tracking: none` in config.yaml). With `tracking: tensorboard` every training
job writes, after each epoch, its mean training loss per task, every dev metric, the learning
rate and the epoch's seconds into `<run dir>/tensorboard/` through torch's SummaryWriter, so a
long run can be watched while it trains:

    tensorboard --logdir results/runs/<preset>

Tracking changes no result: metrics.json stays the record the tables are built from. A resumed
run continues the same curves (events after the last checkpointed epoch are dropped).
"""

from __future__ import annotations

from pathlib import Path

CHOICES = ("none", "tensorboard")
SUBDIR = "tensorboard"


class EpochTracker:
    """Writes one point per epoch per curve; a no-op tracker when tracking is off."""

    def __init__(self, writer=None):
        self.writer = writer

    @classmethod
    def open(cls, tracking: str, run_dir: str | Path, first_epoch: int = 1) -> EpochTracker:
        if tracking not in CHOICES:
            raise ValueError(f"tracking={tracking!r}: expected one of {', '.join(CHOICES)}")
        if tracking == "none":
            return cls()
        from torch.utils.tensorboard import SummaryWriter

        return cls(SummaryWriter(log_dir=str(Path(run_dir) / SUBDIR), purge_step=first_epoch))

    def epoch(self, record: dict, lr: float) -> None:
        """One epoch's record as metrics.json holds it (epoch, train_loss, dev, seconds)."""
        if self.writer is None:
            return
        step = record["epoch"]
        for task, loss in record["train_loss"].items():
            self.writer.add_scalar(f"train_loss/{task}", loss, step)
        for task, metrics in record["dev"].items():
            for metric, value in metrics.items():
                if value is not None:
                    self.writer.add_scalar(f"dev/{task}/{metric}", value, step)
        self.writer.add_scalar("lr", lr, step)
        self.writer.add_scalar("seconds_per_epoch", record["seconds"], step)
        self.writer.flush()  # visible to a watching TensorBoard now, not at the run's end

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
