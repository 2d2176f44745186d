"""The cost estimate against a preset's finished runs: measured seconds per run beside
`snakemake cost`'s, and the sustained rate that fits them (issue 27, item 3).

    python benchmarks/cost_fit.py --preset cpu                      # the shipped reference/cpu
    python benchmarks/cost_fit.py --preset quick --benchmarks results/benchmarks/quick

Each run's metrics.json records `compute.wall_seconds`: the run inside its process, from set-up
(data, encoder weights) to the last output, without the interpreter and its imports. For the BERT
runs a straight line through (model FLOPs of the run, wall seconds), a robust one (Siegel's
repeated medians: a run slowed by a busy machine does not move it), gives the sustained TFLOP/s
(1 / slope) and the in-process set-up (intercept, 0 in the cost block where the line puts it
below 0); the BiLSTM runs give examples per second. `--import-s` (the interpreter and imports, benchmarks/job_phases.py) is
added to the intercept for the estimate's `startup_s`. On a busy machine wall seconds inflate
with the load; `--benchmarks` fits Snakemake's per-job benchmark files instead (their `cpu_time`:
CPU-seconds of the whole job, interpreter and imports included, so the intercept is the whole
start-up and `--import-s` is not added). The last line is the preset's `cost` block with the
fitted figures, for config.yaml.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workflow_src.spec import cost, grid  # noqa: E402 (needs the path above)


def measured(runs: Path) -> dict[str, list[float]]:
    """Cell -> wall seconds of each of its runs (every seed found)."""
    out: dict[str, list[float]] = {}
    for path in sorted(runs.glob("*/seed*.tsv")):  # Snakemake benchmark files: CPU-seconds
        with path.open() as handle:
            row = next(csv.DictReader(handle, delimiter="\t"))
        out.setdefault(path.parent.name, []).append(float(row["cpu_time"]))
    for path in sorted(runs.glob("*/seed*/metrics.json")):
        compute = json.loads(path.read_text()).get("compute") or {}
        if compute.get("wall_seconds") is not None:
            out.setdefault(path.parent.parent.name, []).append(float(compute["wall_seconds"]))
    return out


def run_work(config: dict, cell: str, cells: dict) -> tuple[str, float]:
    """(model, work) of one run: model FLOPs for a BERT run, examples (train + dev share) for
    the BiLSTM, from cost.py's own model at the preset in force."""
    preset = config["presets"][config["preset"]]
    settings = grid.cell_settings(config, cell, cells)
    if settings.get("model") == "bilstm":
        per_epoch = sum(t + d * cost.EVAL_SHARE for t, d in cost.examples(settings).values())
        return "bilstm", settings["epochs"] * per_epoch
    one = {**preset, "cost": {**preset["cost"], "tflops": 1.0, "startup_s": 0.0}}
    shape = cost.encoder_shape(preset["encoder"])
    return "bert", cost.cell_cost(cell, settings, one, shape).seconds * 1e12


def robust_line(x: list[float], y: list[float]) -> tuple[float, float, float]:
    """(slope, intercept, R^2) of Siegel's repeated-median line (scipy.stats.siegelslopes): half
    the runs may be slowed by a busy machine (the regime's first run, three times its quiet
    epochs beside the tests) without moving it, where a least-squares line follows them."""
    from scipy.stats import siegelslopes

    slope, intercept = siegelslopes(y, x)
    mean = statistics.fmean(y)
    residual = sum((b - intercept - slope * a) ** 2 for a, b in zip(x, y, strict=True))
    total = sum((b - mean) ** 2 for b in y)
    return slope, intercept, 1 - residual / total if total else 1.0


def fit(config: dict, runs: Path, import_s: float) -> dict:

    cells = grid.build_cells(config["grid"])
    walls = measured(runs)
    if not walls:
        sys.exit(f"cost_fit.py: no metrics.json with compute.wall_seconds under {runs}")
    rows = []
    for cell, seconds in walls.items():
        if cell not in cells:
            continue
        model, work = run_work(config, cell, cells)
        rows.append((cell, model, work, statistics.median(seconds), len(seconds)))
    bert = [r for r in rows if r[1] == "bert"]
    slope, intercept, r2 = robust_line([r[2] for r in bert], [r[3] for r in bert])
    lstm = [r for r in rows if r[1] == "bilstm"]
    lstm_rate = sum(r[2] for r in lstm) / sum(r[3] for r in lstm) if lstm else None
    return {
        "rows": rows,
        "tflops": 1e-12 / slope,
        "setup_s": intercept,
        "r2": r2,
        "startup_s": intercept + import_s,
        "bilstm_examples_per_s": lstm_rate,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--runs", type=Path, help="default: reference/<preset>/runs")
    parser.add_argument(
        "--benchmarks", type=Path, help="fit Snakemake's benchmark TSVs (CPU-s) here instead"
    )
    parser.add_argument("--import-s", type=float, default=3.2, help="interpreter + imports")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    args = parser.parse_args(argv)
    import yaml

    config = yaml.safe_load(args.config.read_text())
    config["preset"] = args.preset
    runs = args.benchmarks or args.runs or ROOT / "reference" / args.preset / "runs"
    result = fit(config, runs, 0.0 if args.benchmarks else args.import_s)
    preset_cost = config["presets"][args.preset]["cost"]
    shape = cost.encoder_shape(config["presets"][args.preset]["encoder"])
    cells = grid.build_cells(config["grid"])
    print(f"{'cell':<24}{'runs':>5}{'measured s':>12}{'estimate s':>12}{'fitted s':>10}")
    estimates = []
    for cell, model, work, seconds, n in sorted(result["rows"], key=lambda r: -r[3]):
        settings = grid.cell_settings(config, cell, cells)
        estimate = cost.cell_cost(cell, settings, config["presets"][args.preset], shape).seconds
        estimates.append(estimate)
        if model == "bert":
            fitted = result["setup_s"] + work / (result["tflops"] * 1e12)
        else:
            fitted = work / result["bilstm_examples_per_s"]
        print(f"{cell:<24}{n:>5}{seconds:>12.1f}{estimate:>12.1f}{fitted:>10.1f}")
    total = sum(r[3] for r in result["rows"])
    what = "CPU-s of the whole job" if args.benchmarks else "in-process wall"
    estimated = sum(estimates)
    print(
        f"\nBERT runs: {result['tflops']:.4f} model TFLOP/s sustained, {result['setup_s']:.1f} s "
        f"set-up in the process (R^2 {result['r2']:.3f}); BiLSTM "
        f"{result['bilstm_examples_per_s'] or float('nan'):.0f} examples/s; measured "
        f"{total / 3600:.2f} h of runs per seed ({what}, medians over seeds); the "
        f"estimate at config.yaml's figures {estimated / 3600:.2f} h (with start-up)"
    )
    fitted = {
        **preset_cost,
        "tflops": round(result["tflops"], 4),
        "bilstm_examples_per_s": round(result["bilstm_examples_per_s"] or 0)
        or preset_cost["bilstm_examples_per_s"],
        "startup_s": max(0, round(result["startup_s"])),  # no run takes less than its work
    }
    print("cost: " + json.dumps(fitted).replace('"', ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
