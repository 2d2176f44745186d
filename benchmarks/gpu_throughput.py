"""bert-base training throughput on one CUDA GPU at the paper preset, its MFU, and the GPU-hours
the whole paper grid would take.

    python benchmarks/gpu_throughput.py                  # about 1-2 minutes on an H100
    python benchmarks/gpu_throughput.py --peak-tflops 312 --seq-len 64

What it times: the project's own model and step (workflow_src.train.model: the transformer encoder
with the SST head; fused Adam; bf16 autocast, what precision="auto" picks on CUDA) on bert-base
built from `BertConfig()` (random weights: nothing is downloaded, throughput does not depend on
the values), batch 32 x 128 tokens (the paper preset), every row full length. Warm-up steps
first, then timed steps between two `torch.cuda.synchronize()`.

Model FLOPs (training = forward + backward = 3 x forward; matmuls only, as in the PaLM paper's
appendix B and nanoGPT's estimate_mfu): per sequence of T tokens
    6 * N_layer_matmul * T + 12 * L * H * T^2 + 6 * N_per_sequence
with N_layer_matmul the weights of the transformer layers' Linear maps (12 H^2 + biases per
layer), 12 L H T^2 the attention scores and weighted sums, N_per_sequence the pooler and head
(applied once per sequence). MFU = achieved model FLOPs/s over the card's dense bf16 peak.

Projection: every cell of config.yaml's grid at the paper preset (epochs, tasks, seeds, Quora
downsampling, SMART) times its sequences (a pair encoded separately is two), at the measured
seconds per sequence; dev evaluation each epoch counted as 1/3 of a training pass; plus a fixed
per-job overhead. Sequences are counted at full length, so this is an upper bound: length-
bucketed batches of real sentences are shorter. BiLSTM cells are counted like bert-base ones
(a further overestimate; they are a few percent of the grid).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, from the vendors' data sheets.
# Matched against torch.cuda.get_device_name() in order: the first key contained in it wins.
PEAK_BF16_TFLOPS = (
    ("GH200", 989.0),
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),  # SXM
    ("B200", 2250.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("RTX 4090", 165.0),
    ("A10", 125.0),
)

# The FLOPs model and the handout's sizes are the cost estimate's (workflow_src/spec/cost.py, what
# `snakemake cost` prints), so the projection here and the estimate there cannot drift apart.
from workflow_src.spec.cost import (  # noqa: E402 (needs the path above)
    DATA_SIZES,
    EVAL_SHARE,
    VIEWS,
    bert_matmul_params,
    smart_cost,
    train_flops_per_sequence,
)


def peak_tflops(device_name: str) -> float | None:
    """Dense bf16 peak of a card by its CUDA name; None when the table does not know it."""
    for key, peak in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return peak
    return None


def cell_sequences(settings: dict, sizes: dict) -> float:
    """Training-sequence equivalents of one run of a cell (one seed), evaluation included."""
    tasks = settings["tasks"]
    total = 0.0
    for task in tasks:
        train, dev = sizes[task]
        if task == "quora" and tuple(tasks) == ("quora",) and settings["downsample_quora_to_sst"]:
            train = min(train, sizes["sst"][0])
        if settings.get("train_limit") is not None:
            train = min(train, settings["train_limit"])
        if settings.get("dev_limit") is not None:
            dev = min(dev, settings["dev_limit"])
        per_epoch = train * smart_cost(settings.get("smart", {})) + dev * EVAL_SHARE
        total += per_epoch * VIEWS[task] * settings["epochs"]
    return total


def project_grid(config: dict, seconds_per_sequence: float, sizes: dict, overhead_s: float):
    """(GPU-hours of the whole grid at the paper preset, runs, per-cell sequences)."""
    from workflow_src.spec import grid

    config = {**config, "preset": "paper"}
    seeds = len(config["presets"]["paper"]["seeds"])
    per_cell = {
        cell: cell_sequences(grid.cell_settings(config, cell), sizes)
        for cell in grid.build_cells(config["grid"])
    }
    runs = len(per_cell) * seeds
    seconds = seeds * sum(per_cell.values()) * seconds_per_sequence + runs * overhead_s
    return seconds / 3600, runs, per_cell


def data_sizes(data_dir: Path) -> dict:
    """Rows per task and split from the data folder when it is there, else DATA_SIZES."""
    from workflow_src.data.read import load_split

    try:
        return {
            task: tuple(
                len(load_split(data_dir, task, split).examples) for split in ("train", "dev")
            )
            for task in DATA_SIZES
        }
    except Exception:  # any missing or unreadable file: the handout's sizes
        return dict(DATA_SIZES)


def measure(args) -> dict:
    """Train steps/s of bert-base at batch x seq_len in bf16 on the current CUDA device."""
    import torch
    from transformers import BertConfig, BertModel

    from workflow_src.data.batching import Batch, autocast
    from workflow_src.train.model import TASK_SPECS, MultitaskModel, TransformerEncoder

    device = torch.device("cuda")
    torch.manual_seed(0)
    bert_config = BertConfig(attn_implementation="sdpa")  # bert-base-uncased's shape
    encoder = TransformerEncoder(BertModel(bert_config), pooling="cls")
    model = MultitaskModel(encoder, ("sst",), dropout=0.5).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5, fused=True)
    b, t = args.batch_size, args.seq_len
    batch = Batch(
        "sst",
        torch.randint(1000, bert_config.vocab_size, (b, t), device=device),
        torch.ones(b, t, dtype=torch.long, device=device),
        None,
        torch.randint(0, 5, (b,), device=device),
        1,
        list(range(b)),
    )

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, "bf16"):
            out = model(batch)
            loss = TASK_SPECS["sst"].loss(out.float(), batch.labels)
        loss.backward()
        optimizer.step()

    for _ in range(args.warmup):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    layer_params, seq_params = bert_matmul_params(
        bert_config.num_hidden_layers, bert_config.hidden_size, bert_config.intermediate_size
    )
    seq_params += bert_config.hidden_size * 5 + 5  # the SST head
    flops = train_flops_per_sequence(
        layer_params, seq_params, bert_config.num_hidden_layers, bert_config.hidden_size, t
    )
    sequences_per_s = args.steps * b / seconds
    return {
        "device": torch.cuda.get_device_name(device),
        "sequences_per_s": sequences_per_s,
        "achieved_tflops": sequences_per_s * flops / 1e12,
        "flops_per_sequence": flops,
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30,
        "torch": torch.__version__,
    }


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=32, help="paper preset: 32")
    parser.add_argument("--seq-len", type=int, default=128, help="paper preset max_length: 128")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--peak-tflops", type=float, help="dense bf16 peak, if not in the table")
    parser.add_argument("--job-overhead-s", type=float, default=60.0, help="start-up per run")
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "cs224n")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(
            "gpu_throughput: no CUDA device is visible to torch "
            f"{torch.__version__} (torch.cuda.is_available() is False); run this on a GPU "
            "machine. Nothing was measured.",
            file=sys.stderr,
        )
        return 2
    import yaml

    result = measure(args)
    peak = args.peak_tflops or peak_tflops(result["device"])
    mfu = result["achieved_tflops"] / peak if peak else None
    config = yaml.safe_load(args.config.read_text())
    sizes = data_sizes(args.data_dir)
    hours, runs, _ = project_grid(config, 1 / result["sequences_per_s"], sizes, args.job_overhead_s)
    print(f"device           {result['device']} (torch {result['torch']})")
    print(f"shape            bert-base, batch {args.batch_size} x {args.seq_len} tokens, bf16")
    print(f"examples/s       {result['sequences_per_s']:.1f} (sequences; {args.steps} steps)")
    print(f"model TFLOP/s    {result['achieved_tflops']:.1f}")
    if mfu is None:
        print("MFU              n/a: peak unknown for this card, pass --peak-tflops")
    else:
        print(f"MFU              {100 * mfu:.1f}% of {peak:.0f} TFLOP/s dense bf16")
    print(f"peak memory      {result['peak_memory_gib']:.1f} GiB")
    print(f"data sizes       {sizes}")
    print(
        f"paper grid       {runs} runs: {hours:.1f} GPU-hours on this card (upper bound: "
        f"full-length sequences, {args.job_overhead_s:.0f}s start-up per run)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
