"""How planning and rendering grow with the grid: from the paper's 45 cells to 405.

    python benchmarks/grid_scale.py                         # 3, 10, 20, 43 values per axis
    python benchmarks/grid_scale.py --values 3 42 --seeds 3 --keep

For each size the working tree is copied into a scratch folder (as dag.py does) and a config
overlay (`--configfile`) widens the grid's sweep axes (dropout, lr, epochs: the paper's three
values plus more) to `k` values each, with `--seeds` seeds at the quick preset. Three figures:

  plan_clean     `snakemake -n` before any run exists: every training job is planned
  plan_finished  `snakemake -n` once every run has a (synthetic) metrics.json: aggregation,
                 tables and report are planned, no training
  render         `snakemake --cores 2` on those finished runs: aggregation, the nine tables
                 and the report
each as wall seconds and as CPU seconds of Snakemake and all its jobs (on a busy machine the
CPU seconds are the figure to compare).

Finished runs are tests/fake_runs.py's metrics.json files (plus an empty predictions.csv), with
the data folder's files older than them, so nothing trains. Plans are medians of --repeats.
The last line is machine-readable: one `cells=... plan_clean_s=...` group per size.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SNAKEMAKE = Path(sys.executable).parent / "snakemake"

from tests.worktree import copy_workflow  # noqa: E402 (needs the path above)

LR_EXPONENTS = (-6, -5, -4, -7, -3)


def widen(values: list, extra, k: int) -> list:
    """The paper's values, then `extra` values not among them, up to k in all."""
    out = list(values)
    for value in extra:
        if len(out) >= k:
            break
        if value not in out:
            out.append(value)
    return out[:k]


def overlay(config: dict, k: int, seeds: int) -> dict:
    """A config overlay with k values on each numeric sweep axis and `seeds` seeds."""
    grid = config["grid"]
    return {
        "grid": {
            "dropout": widen(grid["dropout"], [round(0.02 * i, 2) for i in range(1, 50)], k),
            # one significant digit: the cell ids are then the same under every slug version
            "lr": widen(
                grid["lr"], [float(f"{m}e{e}") for e in LR_EXPONENTS for m in range(2, 10)], k
            ),
            "epochs": widen(grid["epochs"], list(range(1, 200)), k),
        },
        "presets": {"quick": {"seeds": list(range(1, seeds + 1))}},
    }


def merged(config: dict, extra: dict) -> dict:
    out = dict(config)
    for key, value in extra.items():
        out[key] = merged(config[key], value) if isinstance(value, dict) else value
    return out


def snakemake(workdir: Path, *args: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of Snakemake and all its jobs) of one call."""
    cmd = [str(SNAKEMAKE), *args, "--configfile", "overlay.yaml", "--config", "preset=quick"]
    cpu = children_cpu()
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(
            f"grid_scale: {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
        )
    return seconds, children_cpu() - cpu


def median(calls: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(c[0] for c in calls), statistics.median(c[1] for c in calls)


def finish_runs(workdir: Path, config: dict, seeds: int) -> int:
    """Synthetic finished runs of every cell and seed, newer than the data files."""
    from tests.fake_runs import write_fake_runs

    data = workdir / "data" / "cs224n"
    data.mkdir(parents=True, exist_ok=True)
    old = time.time() - 3600
    for name in [*config["data"]["files"], "PROVENANCE.json"]:
        (data / name).write_text("{}\n" if name.endswith(".json") else "")
        os.utime(data / name, (old, old))
    paths = write_fake_runs(
        workdir / "results" / "runs", "quick", range(1, seeds + 1), config["grid"]
    )
    for path in paths:
        (path.parent / "predictions.csv").write_text("task,id,prediction,gold\n")
    return len(paths)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(k: int, args) -> dict:
    from workflow_src.spec import grid

    base = yaml.safe_load((ROOT / "config.yaml").read_text())
    extra = overlay(base, k, args.seeds)
    config = merged(base, extra)
    cells = len(grid.build_cells(config["grid"]))
    workdir = Path(tempfile.mkdtemp(prefix=f"mtb-scale{k}-", dir=args.scratch))
    try:
        copy_workflow(workdir, args.source)
        (workdir / "overlay.yaml").write_text(yaml.safe_dump(extra))
        clean = median([snakemake(workdir, "-n") for _ in range(args.repeats)])
        runs = finish_runs(workdir, config, args.seeds)
        finished = median([snakemake(workdir, "-n") for _ in range(args.repeats)])
        render = snakemake(workdir, "--cores", "2")
        return {
            "cells": cells,
            "runs": runs,
            "plan_clean_s": clean[0],
            "plan_clean_cpu_s": clean[1],
            "plan_finished_s": finished[0],
            "plan_finished_cpu_s": finished[1],
            "render_s": render[0],
            "render_cpu_s": render[1],
        }
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"kept {workdir}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--values", type=int, nargs="+", default=[3, 10, 20, 43])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scratch", type=Path, default=None, help="parent of the scratch folders")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--source", type=Path, default=ROOT, help="the git tree to measure (another commit's)"
    )
    args = parser.parse_args(argv)
    print("wall seconds (CPU seconds of Snakemake and its jobs)", flush=True)
    print(
        f"{'values':>6}{'cells':>7}{'runs':>7}{'plan clean':>17}{'plan finished':>17}{'render':>17}"
    )
    results = []
    for k in args.values:
        r = measure(k, args)
        results.append(r)
        print(
            f"{k:>6}{r['cells']:>7}{r['runs']:>7}"
            f"{r['plan_clean_s']:>9.2f} ({r['plan_clean_cpu_s']:>5.2f})"
            f"{r['plan_finished_s']:>9.2f} ({r['plan_finished_cpu_s']:>5.2f})"
            f"{r['render_s']:>9.1f} ({r['render_cpu_s']:>5.1f})",
            flush=True,
        )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs at the end")
    print(
        " ".join(
            f"cells={r['cells']} plan_clean_s={r['plan_clean_s']:.2f} "
            f"plan_finished_s={r['plan_finished_s']:.2f} render_s={r['render_s']:.1f};"
            for r in results
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
