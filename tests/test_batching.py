"""Tokenise once, bucket by length, pad per batch; order is a function of (seed, epoch, task)."""

from __future__ import annotations

import random

import pytest
import torch

from workflow_src.data import batching
from workflow_src.data.batching import (
    TokenizedSplit,
    autocast,
    collate,
    epoch_rng,
    eval_batches,
    train_batches,
)


def split_of(lengths, views=1, task="sst"):
    tokens = [tuple([7] * n for _ in range(views)) for n in lengths]
    labels = [i % 5 for i in range(len(lengths))] if task == "sst" else [0.5] * len(lengths)
    return TokenizedSplit(
        task, [f"id{i}" for i in range(len(lengths))], labels, tokens, None, views
    )


def test_every_example_once_per_epoch_with_and_without_bucketing():
    rng = random.Random(0)
    lengths = [rng.randint(3, 60) for _ in range(1003)]
    for bucketing in (True, False):
        batches = train_batches(lengths, 32, epoch_rng(1, 1, "sst"), bucketing)
        flat = sorted(i for b in batches for i in b)
        assert flat == list(range(1003))
        assert all(len(b) <= 32 for b in batches)


def test_bucketing_reduces_padding():
    rng = random.Random(1)
    lengths = [rng.randint(3, 60) for _ in range(2000)]

    def padded(bucketing):
        batches = train_batches(lengths, 32, epoch_rng(1, 1, "sst"), bucketing)
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    assert padded(True) < 0.8 * padded(False)


def test_order_depends_only_on_seed_epoch_and_task():
    lengths = list(range(3, 300))
    run = lambda s, e, t: train_batches(lengths, 16, epoch_rng(s, e, t), True)  # noqa: E731
    assert run(1, 2, "sst") == run(1, 2, "sst")
    assert run(1, 2, "sst") != run(1, 3, "sst")
    assert run(1, 2, "sst") != run(2, 2, "sst")
    assert run(1, 2, "sst") != run(1, 2, "sts")


def test_eval_batches_are_sorted_and_cover_everything():
    lengths = [5, 1, 9, 3, 7]
    batches = eval_batches(lengths, 2)
    assert [i for b in batches for i in b] == [1, 3, 0, 4, 2]


def test_collate_pads_to_the_longest_row_of_the_batch():
    split = split_of([3, 5, 2, 9])
    batch = collate(split, [0, 1, 2], pad_id=0)
    assert batch.input_ids.shape == (3, 5)
    assert batch.attention_mask.sum(1).tolist() == [3, 5, 2]
    assert (batch.input_ids[2, 2:] == 0).all()
    assert batch.labels.dtype == torch.long and batch.labels.tolist() == [0, 1, 2]


def test_separate_pairs_are_stacked_first_sentences_then_second():
    split = TokenizedSplit(
        "sts", ["a", "b"], [1.0, 4.5], [([1, 2], [3, 4, 5]), ([6], [7, 8])], None, 2
    )
    batch = collate(split, [0, 1], pad_id=0)
    assert batch.input_ids.tolist() == [[1, 2, 0], [6, 0, 0], [3, 4, 5], [7, 8, 0]]
    assert batch.labels.dtype == torch.float32 and batch.views == 2


def test_tokenize_once_single_separate_and_joint():
    from transformers import AutoTokenizer

    from workflow_src.data.batching import tokenize_split
    from workflow_src.data.encoders import resolve_encoder
    from workflow_src.data.read import PairExample, SentenceExample

    tok = AutoTokenizer.from_pretrained(resolve_encoder("embedded"), local_files_only=True)
    single = tokenize_split("sst", [SentenceExample("x", " a fine film", 4)], tok, 16, False)
    assert single.views == 1 and single.tokens[0][0][0] == tok.cls_token_id
    pairs = [PairExample("p", "how are you", "who are you", 1.0)]
    sep = tokenize_split("quora", pairs, tok, 16, joint=False)
    joint = tokenize_split("quora", pairs, tok, 16, joint=True)
    assert sep.views == 2 and joint.views == 1
    assert joint.tokens[0][0].count(tok.sep_token_id) == 2 and 1 in joint.token_types[0][0]
    long = tokenize_split("sst", [SentenceExample("y", "word " * 100, 0)], tok, 16, False)
    assert len(long.tokens[0][0]) == 16


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16"), (False, "fp32")])
def test_auto_precision_on_cpu_is_bf16_only_where_bf16_is_native(monkeypatch, native, expected):
    """A CPU without AVX512-BF16 or AMX emulates bf16 (slower than fp32): auto keeps fp32."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    cpu = torch.device("cpu")
    assert batching.resolve_precision("auto", cpu) == expected
    with autocast(cpu, "auto"):
        out = torch.nn.functional.linear(torch.ones(2, 2), torch.ones(2, 2))
    assert out.dtype == {"bf16": torch.bfloat16, "fp32": torch.float32}[expected]


def test_amx_alone_counts_as_native_bf16(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert batching.resolve_precision("auto", torch.device("cpu")) == "bf16"


@pytest.mark.parametrize(("bf16_card", "expected"), [(True, "bf16"), (False, "fp16")])
def test_auto_precision_on_cuda_is_bf16_where_supported_else_fp16(monkeypatch, bf16_card, expected):
    """Ampere and newer: bf16; older cards (V100, T4): fp16, trained with a gradient scaler."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_card)
    assert batching.resolve_precision("auto", torch.device("cuda")) == expected


def test_an_explicit_precision_is_kept_whatever_the_hardware(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    cpu = torch.device("cpu")
    assert batching.resolve_precision("bf16", cpu) == "bf16"
    assert batching.resolve_precision("fp32", cpu) == "fp32"
    with autocast(cpu, "bf16"):
        out = torch.nn.functional.linear(torch.ones(2, 2), torch.ones(2, 2))
    assert out.dtype == torch.bfloat16


def test_the_gradient_scaler_is_on_only_for_fp16(monkeypatch):
    from workflow_src.spec.config import TrainConfig
    from workflow_src.train.state import Parts

    model = torch.nn.Linear(2, 1)
    for resolved, enabled in (("fp32", False), ("fp16", True)):
        monkeypatch.setattr(batching, "resolve_precision", lambda p, d, r=resolved: r)
        parts = Parts.create(TrainConfig(), model, torch.device("cpu"), total_steps=4)
        assert parts.scaler.is_enabled() is enabled
        assert "scaler" in parts.to_state()
