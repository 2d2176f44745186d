"""Optional TensorBoard curves of a training run (workflow_src/train/tracking.py)."""

from __future__ import annotations

import pytest

from workflow_src.train import tracking


def scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


RECORD = {
    "epoch": 2,
    "train_loss": {"sst": 1.25, "sts": 2.5},
    "dev": {"sst": {"accuracy": 0.4, "macro_f1": 0.3}, "sts": {"pearson": 0.7, "spearman": None}},
    "seconds": 12.0,
}


def test_tensorboard_tracking_writes_every_curve_of_an_epoch(tmp_path):
    tracker = tracking.EpochTracker.open("tensorboard", tmp_path)
    tracker.epoch(RECORD, lr=1e-5)
    tracker.close()
    curves = scalars(tmp_path / "tensorboard")
    assert curves["train_loss/sst"] == [(2, 1.25)]
    assert curves["dev/sts/pearson"] == [(2, pytest.approx(0.7))]
    assert "dev/sts/spearman" not in curves  # undefined values are left out, not plotted as 0
    assert curves["lr"] == [(2, pytest.approx(1e-5))]
    assert curves["seconds_per_epoch"] == [(2, 12.0)]


def test_tracking_is_off_by_default_and_writes_nothing(tmp_path):
    tracker = tracking.EpochTracker.open("none", tmp_path)
    tracker.epoch(RECORD, lr=1e-5)
    tracker.close()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="tracking='wandb'"):
        tracking.EpochTracker.open("wandb", tmp_path)
