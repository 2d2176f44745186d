"""Tokenise once, batch by length, pad per batch.

A task's split is tokenised once into lists of token ids (no padding). Each batch is padded
only to its own longest row (dynamic padding); with length bucketing, rows of similar length
share a batch: shuffle, cut into chunks of `BUCKET_CHUNK` batches, sort each chunk by length,
cut into batches, shuffle the batch order. The order depends only on (seed, epoch, task), so a
resumed run sees the same batches as an uninterrupted one.

Pairs encoded separately are stacked into one (2B, T) tensor, first the B first sentences then
the B second ones: one encoder pass for both, and still no attention across the pair.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass

import torch

from workflow_src.spec.tasks import TASK, TASKS

BUCKET_CHUNK = 50  # batches per sorted chunk: large enough to bucket, small enough to mix
OTHER_STREAM = 7  # stream index of a key that is not a task (the proportional schedule's)


@dataclass
class TokenizedSplit:
    """One task's split as token ids; `views` is 1 (single sentence or joint pair) or 2."""

    task: str
    ids: list[str]
    labels: list  # int (multiclass: sst) or float (quora, sts)
    tokens: list[tuple[list[int], ...]]  # per example: one id list per view
    token_types: list[tuple[list[int], ...]] | None  # only for joint pairs
    views: int

    def __len__(self) -> int:
        return len(self.ids)

    def lengths(self) -> list[int]:
        return [max(len(view) for view in row) for row in self.tokens]


def tokenize_split(
    task: str, examples: list, tokenizer, max_length: int, joint: bool
) -> TokenizedSplit:
    """Token ids of every example, computed once per run (`joint`: [CLS] s1 [SEP] s2 [SEP])."""
    ids = [ex.id for ex in examples]
    labels = [ex.label for ex in examples]
    if TASK[task].sentences == 1:
        enc = tokenizer([ex.sentence for ex in examples], truncation=True, max_length=max_length)
        return TokenizedSplit(task, ids, labels, [(t,) for t in enc["input_ids"]], None, 1)
    first = [ex.sentence1 for ex in examples]
    second = [ex.sentence2 for ex in examples]
    if joint:
        enc = tokenizer(first, second, truncation="longest_first", max_length=max_length)
        types = enc.get("token_type_ids")
        return TokenizedSplit(
            task,
            ids,
            labels,
            [(t,) for t in enc["input_ids"]],
            [(t,) for t in types] if types is not None else None,
            1,
        )
    enc1 = tokenizer(first, truncation=True, max_length=max_length)["input_ids"]
    enc2 = tokenizer(second, truncation=True, max_length=max_length)["input_ids"]
    return TokenizedSplit(task, ids, labels, list(zip(enc1, enc2, strict=True)), None, 2)


def epoch_rng(seed: int, epoch: int, task: str) -> random.Random:
    """Independent, reproducible stream per (seed, epoch, task); no global state involved."""
    stream = TASKS.index(task) if task in TASKS else OTHER_STREAM
    return random.Random(seed * 1_000_003 + epoch * 101 + stream)


def train_batches(
    lengths: list[int], batch_size: int, rng: random.Random, bucketing: bool
) -> list[list[int]]:
    """Index lists of one training epoch; every example exactly once."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if not bucketing:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    chunk = batch_size * BUCKET_CHUNK
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def eval_batches(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Sorted by length (least padding); predictions are put back in file order by index."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@dataclass
class Batch:
    task: str
    input_ids: torch.Tensor  # (views*B, T)
    attention_mask: torch.Tensor  # (views*B, T)
    token_type_ids: torch.Tensor | None  # (views*B, T), joint pairs only
    labels: torch.Tensor  # (B,) long for sst, float otherwise
    views: int
    index: list[int]  # rows of the split

    def to(self, device) -> Batch:
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return Batch(
            self.task,
            move(self.input_ids),
            move(self.attention_mask),
            move(self.token_type_ids),
            move(self.labels),
            self.views,
            self.index,
        )


def collate(split: TokenizedSplit, index: list[int], pad_id: int) -> Batch:
    """Pad the rows of `index` to their longest view; pair views are stacked along the batch."""
    rows = [view for v in range(split.views) for view in (split.tokens[i][v] for i in index)]
    longest = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), longest), dtype=torch.long)
    for r, row in enumerate(rows):
        input_ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[r, : len(row)] = 1
    types = None
    if split.token_types is not None:
        types = torch.zeros((len(rows), longest), dtype=torch.long)
        for r, i in enumerate(index):
            row = split.token_types[i][0]
            types[r, : len(row)] = torch.tensor(row, dtype=torch.long)
    dtype = torch.long if TASK[split.task].output == "multiclass" else torch.float32
    labels = torch.tensor([split.labels[i] for i in index], dtype=dtype)
    return Batch(split.task, input_ids, mask, types, labels, split.views, list(index))


def native_cpu_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX). Elsewhere torch
    emulates bf16, and bf16 autocast trains slower than fp32."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_precision(precision: str, device: torch.device) -> str:
    """What a run computes in: "bf16", "fp16" (CUDA only, with a gradient scaler) or "fp32".

    `auto` fits the hardware: on a CPU, bf16 where it is native and fp32 elsewhere; on CUDA,
    bf16 where the card supports it (Ampere and newer) and fp16 on older cards. Any other value
    is taken as given.
    """
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if native_cpu_bf16() else "fp32"


def autocast(device: torch.device, precision: str):
    """Autocast in the precision `precision` resolves to here; plain fp32 for fp32."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(
        resolve_precision(precision, device)
    )
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
