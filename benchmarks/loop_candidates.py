"""Candidate speed-ups of the training update, side by side in one process (issue 27, item 2).

    python benchmarks/loop_candidates.py --batch-size 8 --threads 1    # as the cpu preset's jobs
    python benchmarks/loop_candidates.py --batch-size 32 --threads 2   # one job on both cores

Every candidate trains the project's model (the embedded all-MiniLM-L6-v2 and the SST head,
workflow_src.train.model) on the same SST training batches (length-bucketed, as the loop makes
them) from the same initial weights and seed, in the loop's update order: collate, bf16 autocast
where the CPU has it natively, forward, loss, backward, optimiser step. Candidates run in rounds,
each round all of them in turn, so a busy patch of a shared machine hits every candidate; the
median over rounds is reported as examples per second of this process, with its CPU seconds
and the load average. "same numbers": the candidate's losses of the first round equal the
baseline's to fp rounding (largest absolute difference printed).

  baseline         the loop as it is: fused Adam, deterministic algorithms on
  foreach-adam     Adam's multi-tensor (foreach) step instead of the fused kernel
  nondeterministic torch.use_deterministic_algorithms(False)
  compile          torch.compile of the encoder (inductor on CPU, dynamic shapes); its
                   compile time is reported separately, outside the median
  two-threads      the baseline on 2 torch threads (set_num_threads for its rounds only): its
                   examples per CPU-second against the baseline's on --threads is the machine's
                   throughput of one 2-thread job against jobs of 1 thread, both cores busy
  eval-bsN         evaluation (dev forward passes, no autograd) at batch N, for the eval cost

The split of the cores (two 1-thread jobs against one 2-thread job) needs separate processes:
`--parallel 2` runs the baseline in two processes at once and reports their summed examples/s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CANDIDATES = ("baseline", "foreach-adam", "nondeterministic", "compile", "two-threads")


def load_avg() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def sst_split(args, split: str, limit: int):
    from workflow_src.data.batching import tokenize_split
    from workflow_src.data.encoders import load_tokenizer
    from workflow_src.data.read import load_split

    examples = list(load_split(args.data_dir, "sst", split).examples)[:limit]
    return tokenize_split("sst", examples, load_tokenizer("embedded"), args.max_length, False)


def fresh_model(seed: int):
    import torch

    from workflow_src.train.model import MultitaskModel, TransformerEncoder, load_transformer

    torch.manual_seed(seed)
    encoder = TransformerEncoder(load_transformer("embedded"), "cls")
    return MultitaskModel(encoder, ("sst",), 2, "concat", 0.5)


def optimizer(model, fused: bool):
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if fused:
        return torch.optim.Adam(params, lr=1e-5, fused=True)
    return torch.optim.Adam(params, lr=1e-5, foreach=True)


def train_round(name: str, args, split, batches, compiled: dict) -> tuple[float, float, list]:
    """(examples/s, CPU seconds, losses) of one pass over `batches` with candidate `name`."""
    import torch

    from workflow_src.data.batching import autocast, collate
    from workflow_src.train.model import TASK_SPECS

    torch.use_deterministic_algorithms(name != "nondeterministic", warn_only=True)
    torch.set_num_threads(2 if name == "two-threads" else args.threads)
    model = fresh_model(args.seed)
    opt = optimizer(model, fused=name != "foreach-adam")
    if name == "compile":
        start = time.perf_counter()
        # The backbone, which the encoder calls (TransformerEncoder.encode); compiling the
        # encoder module itself would leave its `encode` method eager.
        model.encoder.backbone = torch.compile(model.encoder.backbone, dynamic=True)
        compiled.setdefault("wrap_s", time.perf_counter() - start)
    device = torch.device("cpu")
    model.train()
    torch.manual_seed(args.seed * 1000 + 1)
    losses, examples = [], 0
    # The first update (compile's tracing, allocator warm-up) is timed apart.
    for i, index in enumerate(batches):
        if i == 1:
            start, cpu = time.perf_counter(), cpu_seconds()
        elif i == 0:
            first = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        batch = collate(split, index, 0).to(device)
        with autocast(device, args.precision):
            out = model(batch)
        loss = TASK_SPECS["sst"].loss(out.float(), batch.labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if i == 0:
            compiled.setdefault(f"{name}_first_s", time.perf_counter() - first)
        else:
            examples += len(index)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    return examples / seconds, cpu, losses


def eval_round(batch_size: int, args, split, model) -> float:
    """Examples per second of one dev pass at `batch_size` (the loop's eval_batches order)."""
    import torch

    from workflow_src.data.batching import autocast, collate, eval_batches

    device = torch.device("cpu")
    model.eval()
    start = time.perf_counter()
    with torch.inference_mode():
        for index in eval_batches(split.lengths(), batch_size):
            with autocast(device, args.precision):
                model(collate(split, index, 0))
    model.train()
    return len(split) / (time.perf_counter() - start)


def parallel(args) -> int:
    """Run the baseline in `args.parallel` processes at once: their summed examples/s."""
    cmd = [sys.executable, __file__, "--candidates", "baseline", "--rounds", str(args.rounds)]
    cmd += ["--batch-size", str(args.batch_size), "--threads", str(args.threads)]
    cmd += ["--train-limit", str(args.train_limit), "--eval-batch-sizes"]
    cmd += ["--max-length", str(args.max_length), "--data-dir", str(args.data_dir)]
    cmd += ["--json", "-"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(args.parallel)]
    outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    each = [o["median"]["baseline"] for o in outs]
    print(
        f"parallel {args.parallel} x {args.threads} thread(s), batch {args.batch_size}: "
        f"{' + '.join(f'{e:.1f}' for e in each)} = {sum(each):.1f} examples/s of the machine "
        f"({time.perf_counter() - start:.0f}s wall, {cpu:.0f} CPU-s, load {load_avg()})"
    )
    return 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "cs224n")
    parser.add_argument("--train-limit", type=int, default=480, help="SST sentences per round")
    parser.add_argument("--dev-limit", type=int, default=1101, help="SST dev sentences")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=CANDIDATES)
    parser.add_argument(
        "--eval-batch-sizes", type=int, nargs="*", default=[32, 128, 512], help="dev pass"
    )
    parser.add_argument("--parallel", type=int, default=0, help="processes of the baseline")
    parser.add_argument("--json", help="write the figures here ('-': last line of stdout)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.parallel:
        return parallel(args)
    import torch

    from workflow_src.data.batching import epoch_rng, train_batches

    torch.set_num_threads(args.threads)
    split = sst_split(args, "train", args.train_limit)
    rng = epoch_rng(args.seed, 1, "sst")
    batches = train_batches(split.lengths(), args.batch_size, rng, bucketing=True)
    quiet = contextlib.redirect_stdout(sys.stderr) if args.json == "-" else contextlib.nullcontext()
    speeds = {name: [] for name in args.candidates}
    cpu = {name: [] for name in args.candidates}
    examples = sum(len(index) for index in batches[1:])  # the first update is timed apart
    losses, notes = {}, {}
    with quiet:
        print(
            f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch_size}, "
            f"{len(split)} SST sentences x {args.rounds} rounds, load {load_avg()}",
            flush=True,
        )
        for r in range(1, args.rounds + 1):
            for name in args.candidates:
                speed, seconds, run_losses = train_round(name, args, split, batches, notes)
                speeds[name].append(speed)
                cpu[name].append(seconds)
                losses.setdefault(name, run_losses)
                print(
                    f"round {r} {name:17s} {speed:6.1f} examples/s, {seconds:5.1f} CPU-s, "
                    f"load {load_avg()}",
                    flush=True,
                )
        median = {name: statistics.median(v) for name, v in speeds.items()}
        # Examples per CPU-second: what a busy machine's other users inflate least.
        per_cpu = {name: examples / statistics.median(v) for name, v in cpu.items()}
        base = losses.get("baseline")
        for name in args.candidates:
            diff = max(abs(a - b) for a, b in zip(losses[name], base, strict=True)) if base else 0
            ratio = median[name] / median["baseline"] if "baseline" in median else float("nan")
            cpu_ratio = per_cpu[name] / per_cpu["baseline"] if "baseline" in per_cpu else 1.0
            print(
                f"{name:17s} median {median[name]:6.1f} examples/s ({ratio:.2f}x baseline), "
                f"{per_cpu[name]:5.1f} examples/CPU-s ({cpu_ratio:.2f}x), "
                f"losses differ from the baseline's by at most {diff:.2e}"
            )
        for key, value in notes.items():
            print(f"{key}: {value:.1f}s")
        evals = {}
        if args.eval_batch_sizes:
            dev = sst_split(args, "dev", args.dev_limit)
            model = fresh_model(args.seed)
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.set_num_threads(args.threads)
            for bs in args.eval_batch_sizes:
                evals[bs] = statistics.median(
                    eval_round(bs, args, dev, model) for _ in range(args.rounds)
                )
                print(f"eval batch {bs:4d}: {evals[bs]:6.1f} dev examples/s (load {load_avg()})")
    figures = {
        "median": median,
        "per_cpu_second": per_cpu,
        "speeds": speeds,
        "cpu": cpu,
        "eval": evals,
        "notes": notes,
    }
    if args.json == "-":
        print(json.dumps(figures))
    elif args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
