"""A training run's data: the rows it reads, their tokens and each epoch's batch plan.

Two paths give the same rows: `load_tokenized` takes them from the tokens files the DAG writes
once per task (data/tokens.py), `load_data` + `tokenize` read the CSVs and tokenise in the job.
Either way `subset` and `quora_sample` pick the rows with fixed seeds, the same for every seed
and cell. `plan_epoch` orders one epoch's batches from (seed, epoch), so a resumed run sees the
batches an uninterrupted one would. Torch-side modules (batching, tokens) are imported inside
the functions that need them.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

from workflow_src.data.download import read_provenance
from workflow_src.data.read import load_split
from workflow_src.spec.config import TrainConfig

log = logging.getLogger(__name__)

QUORA_SAMPLE_SEED = 2023  # fixed: the downsampled Quora subset is the same for every seed
SUBSET_SEED = 2024  # fixed: train_limit / dev_limit keep the same rows for every seed and cell


# ----------------------------------------------------------------------------- data


def subset(rows: list, limit: int | None) -> list:
    """`limit` rows drawn at random (fixed seed), kept in file order; all rows without a limit.

    Not the first `limit` rows: ids-sst-train.csv holds mostly positive sentences first and
    mostly negative ones after row 4000, so a prefix would train on one sentiment only.
    """
    if limit is None or len(rows) <= limit:
        return rows
    return [rows[i] for i in sorted(random.Random(SUBSET_SEED).sample(range(len(rows)), limit))]


def load_data(cfg: TrainConfig) -> tuple[dict, dict, dict]:
    """(train examples by task, dev examples by task, the `data` block of metrics.json)."""
    train, dev, skipped = {}, {}, {}
    for task in cfg.tasks:
        for split, store in (("train", train), ("dev", dev)):
            loaded = load_split(cfg.data_dir, task, split, cfg.max_bad_rows)
            skipped[f"{task}/{split}"] = len(loaded.bad_rows)
            store[task] = list(loaded.examples)
    if "quora" in cfg.tasks:
        train["quora"] = quora_sample(cfg, train["quora"])
    for task in cfg.tasks:
        train[task] = subset(train[task], cfg.train_limit)
        dev[task] = subset(dev[task], cfg.dev_limit)
    return train, dev, data_record(cfg, train, dev, skipped)


def data_record(cfg: TrainConfig, train: dict, dev: dict, skipped: dict) -> dict:
    """metrics.json's `data`: examples per task and split, malformed rows, where data came from."""
    provenance = read_provenance(cfg.data_dir)
    standin = "quora" in cfg.tasks and bool(provenance.get("quora_train_standin", False))
    if standin:
        log.warning("Quora train is a stand-in: %s", provenance.get("note", ""))
    return {
        "train_examples": {t: len(train[t]) for t in cfg.tasks},
        "dev_examples": {t: len(dev[t]) for t in cfg.tasks},
        "skipped_rows": skipped,
        "quora_train_standin": standin,
        "provenance": provenance,
    }


def quora_sample(cfg: TrainConfig, rows: list) -> list:
    """Paper 5.3: single-task paraphrase runs use as many Quora pairs as SST has sentences
    (a fixed sample, the same for every seed); every pair otherwise."""
    if cfg.tasks != ("quora",) or not cfg.downsample_quora_to_sst:
        return rows
    sst_size = len(load_split(cfg.data_dir, "sst", "train", cfg.max_bad_rows).examples)
    if len(rows) <= sst_size:
        return rows
    log.info("quora train sampled down to the SST train size: %d pairs", sst_size)
    return [
        rows[i] for i in sorted(random.Random(QUORA_SAMPLE_SEED).sample(range(len(rows)), sst_size))
    ]


@dataclass
class Prepared:
    """A run's tokenised data: what the model, the loop and the record need of it."""

    train: dict  # task -> batching.TokenizedSplit
    dev: dict
    info: dict  # metrics.json's `data`
    vocab_size: int
    pad_id: int


def prepare_data(cfg: TrainConfig, tokens: dict[str, Path] | None) -> Prepared:
    """Tokenised train and dev splits of every task: read from the tokens files the DAG made
    once per task (workflow_src.data.tokens), or without them read the CSVs and tokenise here."""
    if tokens is not None:
        return load_tokenized(cfg, tokens)
    from workflow_src.data.encoders import load_tokenizer

    train_ex, dev_ex, info = load_data(cfg)
    tokenizer = load_tokenizer(cfg.encoder)
    pad_id = tokenizer.pad_token_id or 0
    return Prepared(
        tokenize(cfg, tokenizer, train_ex),
        tokenize(cfg, tokenizer, dev_ex),
        info,
        len(tokenizer),
        pad_id,
    )


def load_tokenized(cfg: TrainConfig, tokens: dict[str, Path]) -> Prepared:
    """The job's rows of each task's tokens file: the same sample, by row index, that
    load_data draws from the examples, so the batches match a run that tokenised itself."""
    from workflow_src.data import tokens as tokens_file
    from workflow_src.data.batching import TokenizedSplit

    missing = sorted(set(cfg.tasks) - set(tokens))
    if missing:
        raise ValueError(f"no tokens file for task(s) {', '.join(missing)}")
    joint = cfg.pair_encoding == "joint"
    out = {"train": {}, "dev": {}}
    skipped = {}
    for task in cfg.tasks:
        meta, splits = tokens_file.load(tokens[task], task, cfg.max_length, joint)
        rows = {
            "train": subset(
                quora_sample(cfg, list(range(len(splits["train"][0])))), cfg.train_limit
            ),
            "dev": subset(list(range(len(splits["dev"][0]))), cfg.dev_limit),
        }
        for split, (ids, labels, toks, types) in splits.items():
            skipped[f"{task}/{split}"] = meta["skipped_rows"][split]
            keep = rows[split]
            out[split][task] = TokenizedSplit(
                task,
                [ids[i] for i in keep],
                [labels[i] for i in keep],
                [toks[i] for i in keep],
                [types[i] for i in keep] if types is not None else None,
                meta["views"],
            )
    info = data_record(cfg, out["train"], out["dev"], skipped)
    return Prepared(out["train"], out["dev"], info, meta["vocab_size"], meta["pad_id"])


def plan_epoch(cfg: TrainConfig, lengths: dict, seed: int, epoch: int) -> list[list[tuple]]:
    """Updates of one epoch; each is a list of (task, row indices), its loss the sum over them.

    round_robin: all sst batches, then quora, then sts (paper 4); interleaved: one batch of
    every task that still has batches per update; proportional: all batches in a random order,
    so each task comes up in proportion to its size. Every example is seen once per epoch.
    """
    from workflow_src.data.batching import epoch_rng, train_batches

    per_task = {
        t: train_batches(
            lengths[t], cfg.batch_size, epoch_rng(seed, epoch, t), cfg.length_bucketing
        )
        for t in cfg.tasks
    }
    if cfg.task_schedule == "round_robin":
        return [[(t, b)] for t in cfg.tasks for b in per_task[t]]
    if cfg.task_schedule == "interleaved":
        longest = max(len(b) for b in per_task.values())
        return [
            [(t, per_task[t][i]) for t in cfg.tasks if i < len(per_task[t])] for i in range(longest)
        ]
    pool = [[(t, b)] for t in cfg.tasks for b in per_task[t]]
    epoch_rng(seed, epoch, "schedule").shuffle(pool)
    return pool


def tokenize(cfg: TrainConfig, tokenizer, examples: dict) -> dict:
    """Token ids of every task's examples (batching.TokenizedSplit by task)."""
    from workflow_src.data.batching import tokenize_split

    joint = cfg.pair_encoding == "joint"
    return {t: tokenize_split(t, examples[t], tokenizer, cfg.max_length, joint) for t in cfg.tasks}
