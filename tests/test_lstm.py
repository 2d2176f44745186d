"""The BiLSTM baseline of Table 2: shapes, padding invariance, gradients, one loop with BERT."""

from __future__ import annotations

import pytest
import torch

from workflow_src.data.batching import TokenizedSplit, collate
from workflow_src.train.lstm import BiLSTMEncoder
from workflow_src.train.model import TASK_SPECS, MultitaskModel


def encoder(pooling="mean"):
    torch.manual_seed(0)
    return BiLSTMEncoder(vocab_size=40, embedding_dim=8, hidden_dim=6, dropout=0.5, pooling=pooling)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize(
    ("task", "views", "shape"),
    [("sst", 1, (3, 5)), ("quora", 1, (3,)), ("sts", 1, (3,)), ("sts", 2, (3,))],
)
def test_outputs_and_gradients_reach_the_embedding(pooling, task, views, shape):
    model = MultitaskModel(encoder(pooling), ("sst", "quora", "sts"), views, "concat", 0.5)
    rows = [tuple([1, 2, 3, 4][: 2 + i] for _ in range(views)) for i in range(3)]
    labels = [1, 2, 3] if task == "sst" else [0.0, 1.0, 1.0]
    batch = collate(TokenizedSplit(task, list("abc"), labels, rows, None, views), [0, 1, 2], 0)
    out = model(batch)
    assert out.shape == shape
    TASK_SPECS[task].loss(out, batch.labels).backward()
    assert model.encoder.embedding.weight.grad.abs().sum() > 0
    assert model.encoder.lstm1.weight_ih_l0.grad.abs().sum() > 0


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_padding_does_not_change_a_sentence_vector(pooling):
    enc = encoder(pooling).eval()
    short = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[5, 6, 7, 0, 0, 0]])
    a = enc.encode(enc.embed(short), torch.ones_like(short))
    b = enc.encode(enc.embed(padded), (padded != 0).long())
    assert torch.allclose(a, b, atol=1e-6)


def test_sentence_vector_is_both_directions():
    assert encoder().hidden_size == 12
