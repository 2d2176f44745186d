"""The tiny training cases whose metric values tests/golden/tiny_metrics_*.json keep.

Shared by the generator (tests/golden/make_tiny_metrics.py, which trains them with the code of
an earlier commit) and the test (tests/test_golden_metrics.py, which trains them with the code
of the checkout). No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent
SHIPPED_TASKS = ("sst", "sts")  # the shipped CS224N files have no quora-train


@dataclass(frozen=True)
class Case:
    name: str  # tiny_metrics_<name>.json
    cell: str  # the grid cell whose tiny-preset settings it trains
    note: str
    overrides: dict = field(default_factory=dict)  # on top of the tiny preset, to stay fast
    seed: int = 1


CASES = (
    Case("sst-base", "sst-base", "one task, one epoch"),
    Case(
        "multitask-additive",
        "multitask-additive",
        "the multi-task loop (round robin) on sst and sts, two epochs (a best and a final one),"
        " best weights kept",
        {"epochs": 2},
    ),
    # SMART's numbers moved with issue 23's fix (SMART as its references compute it): this
    # case was regenerated at 22b4b8b, the merge of that fix, whose train/loop.py was still one
    # file, so it too checks that the split of the loop moves no number. Regenerate it only
    # for a change meant to move SMART's numbers (make_tiny_metrics.py --only multitask-smart).
    Case(
        "multitask-smart",
        "multitask-smart",
        "SMART (as issue 23 fixed it) on sst and sts, one epoch of one update per task",
        {"epochs": 1, "train_limit": 16},
    ),
)


def golden_path(name: str) -> Path:
    return GOLDEN / f"tiny_metrics_{name}.json"


def case_settings(case: Case, config_path: Path) -> dict:
    """The cell's settings at the tiny preset, in fp32 on the CPU, with the case's overrides,
    on the shipped tasks only; data_dir left to the caller."""
    import yaml

    from workflow_src.spec import grid

    config = yaml.safe_load(config_path.read_text())
    config["preset"] = "tiny"
    settings = grid.cell_settings(config, case.cell)
    settings.update(precision="fp32", device="cpu", threads=1, **case.overrides)
    settings["tasks"] = [t for t in settings["tasks"] if t in SHIPPED_TASKS]
    settings.pop("data_dir")
    return settings


def values(metrics: dict) -> dict:
    """What a refactor must leave alone in a metrics.json: every metric of every task, epoch
    by epoch (train loss, dev metrics, SMART's statistics), best and final, the best epoch and
    the examples each split held. Timings, commit, code hash and paths aside."""
    return {
        "best": metrics["best"],
        "best_epoch": metrics["best_epoch"],
        "final": metrics["final"],
        "epochs": [
            {key: value for key, value in epoch.items() if key != "seconds"}
            for epoch in metrics["epochs"]
        ],
        "train_examples": metrics["data"]["train_examples"],
        "dev_examples": metrics["data"]["dev_examples"],
    }
