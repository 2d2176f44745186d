"""The default run's time against what it trains: `snakemake cost`'s model for variants of quick.

    python benchmarks/quick_tradeoff.py                       # config.yaml's quick and variants
    python benchmarks/quick_tradeoff.py --quora-train 141506  # with the real quora-train

Each variant is the quick preset with a few keys changed. The estimate is the cost model's
(workflow_src/spec/cost.py, at quick's `cost` block, which benchmarks/cost_fit.py fitted to a
measured DAG), over the 45 runs, plus the other jobs of the DAG (`--other-s`: download, tokens,
tables, reports and Snakemake itself, measured by benchmarks/dag.py). Quora's train split is the
offline stand-in's 14,000 rows unless `--quora-train` says otherwise; only quora-all-data sees it.
Wall on a quiet 2-core machine is CPU-seconds / 2 (benchmarks/RESULTS.md 4.5b: the quick DAG
keeps both cores busy, within 3%).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workflow_src.spec import cost  # noqa: E402

VARIANTS = {
    "quick (config.yaml)": {},
    "quick before issue 27's last change": {"all_data_limit": None, "multitask_epochs": None},
    "multi-task 3 epochs": {"multitask_epochs": None},
    "quora-all-data on every stand-in row": {"all_data_limit": None},
    "400 train rows per task": {"train_limit": 400, "all_data_limit": 800},
    "200 train / 100 dev rows per task": {
        "train_limit": 200,
        "dev_limit": 100,
        "all_data_limit": 400,
    },
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--quora-train", type=int, default=14000)
    parser.add_argument("--other-s", type=float, default=150.0)
    args = parser.parse_args(argv)
    base = yaml.safe_load(args.config.read_text())
    base["preset"] = "quick"
    sizes = {**cost.DATA_SIZES, "quora": (args.quora_train, cost.DATA_SIZES["quora"][1])}
    print(f"{'variant':<40} {'CPU-s':>7} {'quiet 2-core wall':>18}")
    for name, changes in VARIANTS.items():
        config = copy.deepcopy(base)
        config["presets"]["quick"].update(changes)
        seconds = args.other_s + sum(c.seconds for c in cost.grid_costs(config, sizes).values())
        print(f"{name:<40} {seconds:>7.0f} {seconds / 2 / 60:>14.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
