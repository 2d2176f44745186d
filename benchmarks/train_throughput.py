"""Training throughput: the project's loop against Hugging Face Trainer, side by side.

    python benchmarks/train_throughput.py                      # median of 3 + one quality epoch
    python benchmarks/train_throughput.py --quality-limit 2000 # shorter quality epoch

Contenders, all on the same model (the embedded all-MiniLM-L6-v2 + a dropout/Linear head over
the pooled [CLS]), the same first N SST training sentences, batch 32, the same torch thread
count and maximum length:
  project-bf16   workflow_src.train.loop.run (the real code path: length-bucketed batches, fused Adam,
                 bf16 autocast), precision="bf16"
  project-fp32   the same loop, precision="fp32" (the CPU default of precision="auto")
  trainer        transformers.Trainer, default collator (dynamic padding), random sampler
  trainer-group  transformers.Trainer, train_sampling_strategy="group_by_length"
  trainer-bf16-group  the Trainer as a careful user sets it up on a CPU with native bf16
                 (avx512_bf16 or AMX): bf16=True (CPU autocast) and group_by_length; on a CPU
                 without it, bf16 is emulated and slower, so this contender runs in fp32
Trainer keeps its own defaults (fp32, fused AdamW, dataloader without workers); its learning
rate, schedule, dropout and weight decay are set to the project's (--lr, default the paper's
1e-5; cosine; head dropout 0.5; none), so the quality epoch compares like with like.

Throughput is examples per second of the training loop only (the project's
`compute.train_examples_per_second`, Trainer's `train_samples_per_second`); model loading and
evaluation are outside both. Contenders run alternately (round r runs all of them, then round
r+1), so a slow patch on a shared machine hits all of them; the median of the rounds is
reported. Then one quality epoch per contender (same seed) gives dev accuracy.
The last line is `ratio_vs_trainer=X.XX ratio_vs_trainer_grouped=Y.YY ratio_vs_trainer_best=Z.ZZ`
(project-bf16 over each; best: the fastest Trainer contender measured, the lead that counts).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workflow_src.spec.config import TrainConfig  # noqa: E402 (needs the path above)

log = logging.getLogger("benchmarks.train_throughput")

PROJECT = ("project-bf16", "project-fp32")
TRAINER = ("trainer", "trainer-group", "trainer-bf16-group")
CONTENDERS = PROJECT + TRAINER


def project_config(args, precision: str, train_limit: int | None, dev_limit: int | None):
    """The TrainConfig of one project contender: the sst base cell at the benchmark's sizes."""
    return TrainConfig(
        run_name=f"bench-{precision}",
        preset="benchmark",
        tasks=("sst",),
        encoder="embedded",
        epochs=1,
        batch_size=args.batch_size,
        max_length=args.max_length,
        threads=args.threads,
        device="cpu",
        precision=precision,
        lr=args.lr,
        train_limit=train_limit,
        dev_limit=dev_limit,
        data_dir=str(args.data_dir),
    )


def run_project(args, precision: str, train_limit, dev_limit, seed: int) -> tuple[float, float]:
    """(train examples/s, dev accuracy) of one epoch of workflow_src.train.loop.run."""
    from workflow_src.train.loop import run

    cfg = project_config(args, precision, train_limit, dev_limit)
    with tempfile.TemporaryDirectory(prefix="bench-project-") as tmp:
        metrics = run(cfg, seed, Path(tmp))
    return metrics["compute"]["train_examples_per_second"], metrics["final"]["sst"]["accuracy"]


class _Rows:
    """A map-style dataset of tokenised rows, as Trainer's collators expect them."""

    def __init__(self, encodings: dict, labels: list[int]):
        self.encodings, self.labels = encodings, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        row = {key: values[i] for key, values in self.encodings.items()}
        row["labels"] = self.labels[i]
        return row


def sst_rows(args, split: str, limit, tokenizer) -> _Rows:
    from workflow_src.data.prepare import subset
    from workflow_src.data.read import load_split

    # The rows the project's run() trains and evaluates on (train_limit / dev_limit).
    examples = subset(list(load_split(args.data_dir, "sst", split).examples), limit)
    enc = tokenizer([ex.sentence for ex in examples], truncation=True, max_length=args.max_length)
    return _Rows(dict(enc), [ex.label for ex in examples])


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (the project's precision="auto" rule)."""
    from workflow_src.data.batching import native_cpu_bf16

    return native_cpu_bf16()


def run_trainer(
    args, grouped: bool, train_limit, dev_limit, seed: int, bf16: bool = False
) -> tuple[float, float]:
    """(train examples/s, dev accuracy) of one epoch of transformers.Trainer."""
    import numpy as np
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from workflow_src.data.encoders import load_tokenizer, resolve_encoder
    from workflow_src.spec.tasks import TASK

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(False)  # the project's run() turns it on process-wide
    tokenizer = load_tokenizer("embedded")
    train = sst_rows(args, "train", train_limit, tokenizer)
    dev = sst_rows(args, "dev", dev_limit, tokenizer)
    set_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_encoder("embedded"),
        local_files_only=True,
        num_labels=TASK["sst"].outputs,
        classifier_dropout=0.5,  # the project's head dropout (TrainConfig.dropout)
    )
    with tempfile.TemporaryDirectory(prefix="bench-trainer-") as tmp:
        targs = TrainingArguments(
            output_dir=tmp,
            use_cpu=True,
            seed=seed,
            num_train_epochs=1,
            per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=128,
            learning_rate=args.lr,
            weight_decay=0.0,
            lr_scheduler_type="cosine",
            train_sampling_strategy="group_by_length" if grouped else "random",
            bf16=bf16,
            save_strategy="no",
            logging_strategy="no",
            report_to=[],
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=model,
            args=targs,
            train_dataset=train,
            processing_class=tokenizer,  # -> DataCollatorWithPadding, the default collator
        )
        result = trainer.train()
        pred = trainer.predict(dev)
    accuracy = float((np.argmax(pred.predictions, -1) == np.asarray(dev.labels)).mean())
    return result.metrics["train_samples_per_second"], accuracy


def run_contender(name: str, args, train_limit, dev_limit, seed: int) -> tuple[float, float]:
    if name in PROJECT:
        return run_project(args, name.split("-")[1], train_limit, dev_limit, seed)
    grouped = name in ("trainer-group", "trainer-bf16-group")
    bf16 = name == "trainer-bf16-group" and native_bf16()
    return run_trainer(args, grouped, train_limit, dev_limit, seed, bf16)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "cs224n")
    parser.add_argument("--train-limit", type=int, default=1280, help="SST sentences per round")
    parser.add_argument(
        "--rounds", type=int, default=3, help="throughput rounds (median; 0 = none)"
    )
    parser.add_argument(
        "--quality-limit",
        type=int,
        default=0,
        help="SST sentences of the quality epoch (0 = all of train; -1 = no quality epoch)",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-5, help="both loops (paper base: 1e-5)")
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS), choices=CONTENDERS)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    import transformers

    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"{args.threads} threads, batch {args.batch_size}, max_length {args.max_length}, "
        f"{args.train_limit} SST sentences x {args.rounds} rounds",
        flush=True,
    )
    speeds = {name: [] for name in args.contenders}
    for r in range(1, args.rounds + 1):
        for name in args.contenders:
            start = time.perf_counter()
            speed, _ = run_contender(name, args, args.train_limit, 64, args.seed)
            speeds[name].append(speed)
            print(
                f"round {r} {name:18s} {speed:7.1f} examples/s "
                f"({time.perf_counter() - start:.0f}s with set-up)",
                flush=True,
            )
    median = {name: statistics.median(v) for name, v in speeds.items() if v}

    accuracy = {}
    if args.quality_limit >= 0:
        limit = args.quality_limit or None
        for name in args.contenders:
            _, accuracy[name] = run_contender(name, args, limit, None, args.seed)
            print(f"quality {name:18s} dev accuracy {accuracy[name]:.4f}", flush=True)

    print()
    print(f"{'contender':18s} {'examples/s (median)':>20s} {'dev accuracy':>13s}")
    for name in args.contenders:
        acc = f"{accuracy[name]:.4f}" if name in accuracy else "-"
        speed = f"{median[name]:.1f}" if name in median else "-"
        print(f"{name:18s} {speed:>20s} {acc:>13s}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "args": {k: str(v) for k, v in vars(args).items()},
                    "examples_per_second": speeds,
                    "median": median,
                    "dev_accuracy": accuracy,
                },
                indent=2,
            )
            + "\n"
        )
    ours = median.get("project-bf16", median.get("project-fp32"))
    ratio = {k: ours / median[k] if ours and k in median else float("nan") for k in TRAINER}
    best = max((median[k] for k in TRAINER if k in median), default=None)
    print(
        f"ratio_vs_trainer={ratio['trainer']:.2f} "
        f"ratio_vs_trainer_grouped={ratio['trainer-group']:.2f} "
        f"ratio_vs_trainer_best={ours / best if ours and best else float('nan'):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
