"""Calibrate a CPU-scale regime against the paper's own regime on the embedded encoder.

    python benchmarks/calibrate.py run --regime paper --cells sst-lr1e-4 sst-lr1e-6
    python benchmarks/calibrate.py run --regime scaled --epoch-scale 0.1 --lr-scale 10 --cells sst-base
    python benchmarks/calibrate.py show            # every finished calibration run, one line each
    python benchmarks/calibrate.py show --runs benchmarks/calibration_runs   # the runs CALIBRATION.md reports
    python benchmarks/calibrate.py show --by-cell --runs reference/regime/runs  # curves by cell
    python benchmarks/calibrate.py show --by-cell --runs reference/regime/runs \
        --update benchmarks/CALIBRATION.md      # rewrite the page's regime-curves block

On a GPU machine without the embedded-encoder package or Snakemake (what issue 11's GPU part
needs), carry the data and a bf16 copy of the encoder there (`benchmarks/gpu_carry.py`), then
run the paper's regime on every cell, several jobs side by side on the one card:

    python benchmarks/calibrate.py run --regime paper --cells all --device cuda --jobs 4 \
        --threads 2 --encoder gpu-carry/encoder --data-dir gpu-carry/data --runs $OUT/runs \
        --deadline-s 420

A regime is the grid's cell settings (config.yaml) with the encoder set to the embedded
all-MiniLM-L6-v2 (or --encoder) on the CPU (or --device) and full training and dev data:
  paper   the paper's epochs (10/20/30), learning rates, batch 32, 128 tokens;
  scaled  epochs x --epoch-scale (at least one) and learning rate x --lr-scale, --max-length,
          --batch-size and the heads' --head-lr as given: the candidate rule for a CPU preset.
Each run is one `python -m workflow_src.train` job (the real command of the workflow), written to
benchmarks/runs/calibration/<regime-tag>/<cell>/seed<k>/ (or under --runs); a finished run is
not repeated. --jobs N keeps N jobs running at once; --deadline-s starts no job after that many
seconds (running ones finish; a run killed before its end leaves no metrics.json).
`show` prints per-epoch dev figures, the best epoch, train seconds per epoch, so a reader can see
how well a scaled regime ranks and spaces the cells that the paper's regime trains.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workflow_src.spec import grid  # noqa: E402 (needs the path above)

RUNS = ROOT / "benchmarks" / "runs" / "calibration"
SHIPPED = ROOT / "benchmarks" / "calibration_runs"  # the finished runs CALIBRATION.md reports
PRIMARY = {"sst": "accuracy", "quora": "accuracy", "sts": "pearson"}
CURVES_OPEN, CURVES_CLOSE = "<!-- regime-curves -->", "<!-- /regime-curves -->"
CURVES_BLOCK = re.compile(f"(?P<open>{CURVES_OPEN}\\n).*?(?P<close>{CURVES_CLOSE})", re.S)


def regime_tag(args) -> str:
    if args.regime == "paper":
        return "paper"
    tag = (
        f"scaled-e{args.epoch_scale:g}-lr{args.lr_scale:g}-len{args.max_length}-b{args.batch_size}"
    )
    return tag + (f"-head{args.head_lr:g}" if args.head_lr is not None else "")


def regime_settings(args, cell: str) -> dict:
    """The TrainConfig settings of `cell` under the chosen regime."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    paper = dict(config["presets"]["paper"])
    paper.update(encoder=args.encoder, device=args.device, precision="bf16", threads=args.threads)
    if args.regime == "scaled":
        paper.update(
            epoch_scale=args.epoch_scale,
            max_length=args.max_length,
            batch_size=args.batch_size,
            head_lr=args.head_lr,
        )
    config["presets"]["calibration"] = paper
    config["preset"] = "calibration"
    settings = grid.cell_settings(config, cell)
    if args.regime == "scaled":
        settings["lr"] = float(f"{settings['lr'] * args.lr_scale:.3g}")  # 1e-5 x 10 = 1e-4 exactly
    settings["data_dir"] = str(args.data_dir)
    settings["dev_limit"] = args.dev_limit
    settings["train_limit"] = args.train_limit
    return settings


def chosen_cells(names: list[str]) -> list[str]:
    """The cells to run: `all` is every cell of the grid, multi-task first (the longest)."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    cells = grid.build_cells(config["grid"])
    if names != ["all"]:
        unknown = sorted(set(names) - set(cells))
        if unknown:
            raise SystemExit(f"unknown cells: {', '.join(unknown)}")
        return names
    return sorted(cells, key=lambda cell: -len(cells[cell].tasks))


def start(args, cell: str) -> subprocess.Popen | None:
    """Start `cell`'s training job in the background; None if it already finished."""
    run_dir = args.runs / regime_tag(args) / cell / f"seed{args.seed}"
    if (run_dir / "metrics.json").exists():
        print(f"{run_dir}: finished, skipped", flush=True)
        return None
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = regime_settings(args, cell)
    print(f"{run_dir}: {json.dumps(settings)}", flush=True)
    with open(run_dir / "train.log", "a") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "workflow_src.train", "--settings-json",
             json.dumps(settings), "--seed", str(args.seed), "--run-dir", str(run_dir)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


def run(args) -> None:
    """Train the cells, --jobs at a time, starting none after --deadline-s."""
    began = time.monotonic()
    waiting, running, failed = chosen_cells(args.cells), {}, []
    while waiting or running:
        late = args.deadline_s is not None and time.monotonic() - began > args.deadline_s
        while waiting and len(running) < args.jobs and not late:
            cell = waiting.pop(0)
            job = start(args, cell)
            if job is not None:
                running[cell] = job
        if late and waiting:
            print(f"deadline: {len(waiting)} cells not started: {' '.join(waiting)}", flush=True)
            waiting = []
        for cell, job in list(running.items()):
            if job.poll() is not None:
                del running[cell]
                print(
                    f"{cell}: exit {job.returncode} at {time.monotonic() - began:.0f} s", flush=True
                )
                if job.returncode != 0:
                    failed.append(cell)
        time.sleep(0.5)
    if failed:
        raise SystemExit(f"failed: {' '.join(failed)} (see their train.log)")


def finished_runs(runs: Path) -> list[tuple[str, dict]]:
    """(regime folder, metrics) of every finished run under `runs`, laid out as
    <regime>/<cell>/seed<k>/ or, as reference/regime/runs is, <cell>/seed<k>/."""
    found = sorted(runs.rglob("seed*/metrics.json"))
    return [(path.parents[2].name, json.loads(path.read_text())) for path in found]


def dev_curve(metrics: dict) -> list[float]:
    """The run's primary dev metric after each epoch."""
    task = metrics["run"]["tasks"][0]
    return [epoch["dev"][task][PRIMARY[task]] for epoch in metrics["epochs"]]


def best_epoch(curve: list[float]) -> int:
    """The epoch (from 1) whose dev metric is the highest; the first of equals."""
    return max(range(len(curve)), key=lambda i: curve[i]) + 1


def show(args) -> None:
    for regime, metrics in finished_runs(args.runs):
        curve = dev_curve(metrics)
        task = metrics["run"]["tasks"][0]
        per_epoch = metrics["compute"]["train_seconds"] / max(len(curve), 1)
        best = best_epoch(curve)
        print(
            f"{regime:34s} {metrics['run']['cell']:22s} seed{metrics['run']['seed']} "
            f"lr={metrics['settings']['lr']:.0e} epochs={len(curve):2d} {PRIMARY[task]}: "
            + " ".join(f"{v:.3f}" for v in curve)
            + f" | best {curve[best - 1]:.3f} (epoch {best}) | {per_epoch:.0f} s/epoch"
        )


def curves_by_cell(runs: Path) -> str:
    """One Markdown row per cell: the dev curve's mean over its seeds, where each seed's best
    epoch lies, and the median seconds of an epoch (robust to epochs slowed by other load)."""
    by_cell: dict[str, list[dict]] = {}
    for _, metrics in finished_runs(runs):
        by_cell.setdefault(metrics["run"]["cell"], []).append(metrics)
    lines = [
        "| cell | seeds | dev by epoch, mean over seeds | best epoch (each seed) "
        "| s/epoch (median, with dev scoring) |",
        "|---|---|---|---|---|",
    ]
    for cell, cell_runs in sorted(by_cell.items()):
        curves = [dev_curve(metrics) for metrics in cell_runs]
        mean_curve = [statistics.fmean(values) for values in zip(*curves, strict=False)]
        best_epochs = [best_epoch(curve) for curve in curves]
        seconds = statistics.median(e["seconds"] for run in cell_runs for e in run["epochs"])
        lines.append(
            f"| {cell} | {len(cell_runs)} | "
            + " ".join(f"{v:.3f}" for v in mean_curve)
            + f" | {', '.join(map(str, best_epochs))} | {seconds:.0f} |"
        )
    return "\n".join(lines) + "\n\n" + enough_epochs(by_cell) + "\n"


def enough_epochs(by_cell: dict[str, list[dict]], tail: int = 3) -> str:
    """Whether the runs' epochs were enough, in one sentence: the runs whose best epoch is
    their last (still rising), with what their last `tail` epochs gained, in points (the
    metric x 100), and where every other run's best epoch lies."""
    runs = [
        (f"{cell} seed {metrics['run']['seed']}", dev_curve(metrics))
        for cell, cell_runs in sorted(by_cell.items())
        for metrics in sorted(cell_runs, key=lambda m: m["run"]["seed"])
    ]
    tail = min([tail] + [len(curve) - 1 for _, curve in runs])
    last = [(name, curve) for name, curve in runs if best_epoch(curve) == len(curve)]
    others = [best_epoch(curve) for _, curve in runs if best_epoch(curve) < len(curve)]
    text = f"Best epoch at the last: {len(last)} of {len(runs)} runs"
    if last:
        gains = [100 * (curve[-1] - curve[-1 - tail]) for _, curve in last]
        text += (
            f" ({', '.join(name for name, _ in last)}), still rising by "
            f"{span(gains, '{:.1f}')} points over their last {tail} epochs"
        )
    if others:
        text += (
            f"; the other runs' best epochs lie at {span(others, '{}')} "
            f"(median {statistics.median(others):g})"
        )
    return text + "."


def span(values: list, form: str) -> str:
    """`3-8`, or `5` where all are the same."""
    low, high = form.format(min(values)), form.format(max(values))
    return low if low == high else f"{low}-{high}"


def show_by_cell(args) -> None:
    """Print the per-cell table, or with --update rewrite it between a page's markers."""
    table = curves_by_cell(args.runs)
    if not args.update:
        print(table, end="")
        return
    page = args.update.read_text()
    if CURVES_BLOCK.search(page) is None:
        raise SystemExit(f"{args.update}: no {CURVES_OPEN!r} ... {CURVES_CLOSE!r} block")
    args.update.write_text(CURVES_BLOCK.sub(lambda m: m["open"] + table + m["close"], page))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run", help="train the given cells under one regime")
    go.add_argument("--regime", choices=["paper", "scaled"], required=True)
    go.add_argument("--cells", nargs="+", required=True, help="cell names, or all")
    go.add_argument("--seed", type=int, default=1)
    go.add_argument("--threads", type=int, default=1)
    go.add_argument("--epoch-scale", type=float, default=0.1)
    go.add_argument("--lr-scale", type=float, default=1.0)
    go.add_argument("--max-length", type=int, default=128)
    go.add_argument("--batch-size", type=int, default=32)
    go.add_argument("--head-lr", type=float, default=None, help="the heads' rate (scaled only)")
    go.add_argument("--dev-limit", type=int, default=None, help="dev rows per task (all)")
    go.add_argument("--train-limit", type=int, default=None, help="train rows per task (all)")
    go.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    go.add_argument("--encoder", default="embedded", help="embedded, or a local model folder")
    go.add_argument("--jobs", type=int, default=1, help="training jobs at once")
    go.add_argument("--deadline-s", type=float, default=None, help="start no job after this")
    go.add_argument("--runs", type=Path, default=RUNS, help=f"default {RUNS.relative_to(ROOT)}")
    go.add_argument("--data-dir", type=Path, default=ROOT / "data" / "cs224n")
    view = sub.add_parser("show", help="print every finished calibration run")
    view.add_argument(
        "--runs",
        type=Path,
        default=RUNS,
        help=f"calibration runs folder (default {RUNS.relative_to(ROOT)}; the runs this page "
        f"reports are kept, metrics.json only, in {SHIPPED.relative_to(ROOT)}; or "
        "reference/regime/runs)",
    )
    view.add_argument(
        "--by-cell", action="store_true", help="a Markdown table, one row per cell over its seeds"
    )
    view.add_argument(
        "--update",
        type=Path,
        help=f"with --by-cell: rewrite the table between {CURVES_OPEN} and {CURVES_CLOSE} in "
        "this page (benchmarks/CALIBRATION.md)",
    )
    args = parser.parse_args()
    if args.command == "run":
        run(args)
    else:
        show_by_cell(args) if args.by_cell else show(args)


if __name__ == "__main__":
    main()
