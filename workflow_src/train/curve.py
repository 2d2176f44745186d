"""Within-epoch learning curves: dev metrics every k updates on a fixed small dev sample.

A one-epoch cell has one point per task in metrics.json's `epochs`; the curve gives it
`points` per epoch (issue 25 item 4). Each point is `{"update", "epoch", "dev"}`,
`dev` holding every task's metrics (analysis/metrics.task_metrics) on the same `dev_rows` rows
of its dev split (a fixed-seed sample, data/prepare.subset), kept in metrics.json's `curve`.

Like `tracking`, the curve is not a setting: it changes no result. A point is an inference
pass without dropout or autograd, so it draws nothing from the torch RNG and leaves every
weight, every metric of `epochs`, `best` and `final` as they are without it
(tests/test_golden_metrics.py trains with it on). A finished run is not rerun for it either:
the rule passes it as a resource, not a param (rules/train.smk).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from workflow_src.data.prepare import subset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CurveSettings:
    """`points` per epoch (0: no curve) on the first `dev_rows` rows of a fixed sample of each
    task's dev split."""

    points: int = 0
    dev_rows: int = 64

    def __post_init__(self):
        for name in ("points", "dev_rows"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"curve {name}={value!r}: expected a whole number >= 0")
        if self.points and not self.dev_rows:
            raise ValueError("curve dev_rows=0: a curve needs at least one dev row")


def dev_sample(split, rows: int):
    """The same `rows` examples of a tokenised split at every point (all of them if fewer)."""
    from workflow_src.data.batching import TokenizedSplit

    keep = subset(list(range(len(split))), rows)
    return TokenizedSplit(
        split.task,
        [split.ids[i] for i in keep],
        [split.labels[i] for i in keep],
        [split.tokens[i] for i in keep],
        [split.token_types[i] for i in keep] if split.token_types is not None else None,
        split.views,
    )


class Curve:
    """Decides when a point is due and measures it; `points` (the run's Progress.curve) holds
    them across a kill and its resume."""

    def __init__(self, settings: CurveSettings, dev: dict, updates_per_epoch: int):
        self.every = max(1, updates_per_epoch // settings.points) if settings.points else 0
        self.sample = (
            {task: dev_sample(split, settings.dev_rows) for task, split in dev.items()}
            if self.every
            else {}
        )

    def due(self, update: int) -> bool:
        """True after update number `update` (1-based, counted over the whole run)."""
        return bool(self.every) and update % self.every == 0

    def point(self, model, cfg, device, pad_id: int, update: int, epoch: int) -> dict:
        """One point of the curve; the model trains on after it."""
        from workflow_src.analysis.metrics import task_metrics
        from workflow_src.train.evaluate import predict

        dev = {}
        for task, split in self.sample.items():
            dev[task] = task_metrics(task, predict(model, split, cfg, device, pad_id), split.labels)
        model.train()
        return {"update": update, "epoch": epoch, "dev": dev}

    def record(self, points: list) -> dict | None:
        """metrics.json's `curve`: every k updates on how many dev rows per task, and the
        points; None without a curve."""
        if not self.every:
            return None
        rows = {task: len(split) for task, split in self.sample.items()}
        return {"every_updates": self.every, "dev_rows": rows, "points": points}
