"""SMART: the regulariser's defining properties, on a tiny random BERT with each task's head."""

from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertModel

from workflow_src.batching import TokenizedSplit, collate
from workflow_src.config import SmartConfig
from workflow_src.model import MultitaskModel, TransformerEncoder
from workflow_src.smart import (
    MomentumTeacher,
    adversarial_delta,
    bregman_term,
    divergence,
    perturbed_divergence,
    smoothness_regularizer,
)

KINDS = {"sst": "multiclass", "quora": "binary", "sts": "regression"}


def tiny_model(seed=0):
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=32,
    )
    return MultitaskModel(
        TransformerEncoder(BertModel(config)), ("sst", "quora", "sts"), 2, "concat", 0.1
    )


def batch_for(task):
    views = 1 if task == "sst" else 2
    rows = [tuple([3 + i, 4, 5 + j, 9][: 2 + i % 3] for j in range(views)) for i in range(6)]
    labels = [i % 5 for i in range(6)] if task == "sst" else [float(i % 2) for i in range(6)]
    return collate(
        TokenizedSplit(task, list("abcdef"), labels, rows, None, views), list(range(6)), 0
    )


@pytest.mark.parametrize("task", ["sst", "quora", "sts"])
def test_zero_perturbation_gives_zero_and_a_perturbation_a_positive_regulariser(task):
    model = tiny_model().eval()  # no dropout: the clean and perturbed passes differ only by delta
    batch = batch_for(task)
    embeds = model.embed(batch)
    clean = model(batch, embeds)

    def forward(e):
        return model(batch, e)

    zero = perturbed_divergence(forward, embeds, clean, torch.zeros_like(embeds), KINDS[task])
    assert zero.item() == pytest.approx(0.0, abs=1e-10)
    delta = 0.5 * torch.randn_like(embeds)
    assert perturbed_divergence(forward, embeds, clean, delta, KINDS[task]).item() > 0
    cfg = SmartConfig(enabled=True, noise_std=0.0, step_size=0.0)
    assert smoothness_regularizer(forward, embeds, clean, KINDS[task], cfg).item() == pytest.approx(
        0.0, abs=1e-10
    )


@pytest.mark.parametrize("task", ["sst", "quora", "sts"])
def test_regulariser_gradient_reaches_the_encoder(task):
    model = tiny_model().train()
    batch = batch_for(task)
    embeds = model.embed(batch)
    clean = model(batch, embeds)
    cfg = SmartConfig(enabled=True, noise_std=1e-2, step_size=1e-1, epsilon=1e-1, weight=1.0)
    reg = smoothness_regularizer(lambda e: model(batch, e), embeds, clean, KINDS[task], cfg)
    assert reg.item() > 0
    reg.backward()
    params = dict(model.named_parameters())
    for name in (
        "encoder.backbone.embeddings.word_embeddings.weight",
        "encoder.backbone.encoder.layer.0.attention.self.query.weight",
        f"heads.{task}.linear.weight",
    ):
        assert params[name].grad is not None and params[name].grad.abs().sum() > 0, name
    other = "sts" if task != "sts" else "sst"  # only the task's own head is used
    assert params[f"heads.{other}.linear.weight"].grad is None


def test_perturbation_stays_in_the_epsilon_ball_and_ascends():
    model = tiny_model().eval()
    batch = batch_for("sst")
    embeds = model.embed(batch).detach()
    clean = model(batch, embeds)

    def forward(e):
        return model(batch, e)

    torch.manual_seed(3)
    noise = adversarial_delta(forward, embeds, clean, "multiclass", 1e-3, 0.0, 1.0, 1)
    torch.manual_seed(3)
    ascended = adversarial_delta(forward, embeds, clean, "multiclass", 1e-3, 0.05, 0.05, 2)
    assert ascended.abs().max().item() <= 0.05 + 1e-7
    assert not ascended.requires_grad
    before = divergence("multiclass", forward(embeds + noise), clean).item()
    after = divergence("multiclass", forward(embeds + ascended), clean).item()
    assert after > before


def test_divergences_by_hand():
    a, b = torch.tensor([2.0, -1.0]), torch.tensor([0.0, -1.0])
    # Bernoulli symmetric KL = (p - q)(logit_p - logit_q); zero when equal
    p, q = torch.sigmoid(a), torch.sigmoid(b)
    assert divergence("binary", a, b).item() == pytest.approx(((p - q) * (a - b)).mean().item())
    assert divergence("binary", a, a).item() == 0.0
    logits_p, logits_q = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, 1.0]])
    pp, qq = logits_p.softmax(-1), logits_q.softmax(-1)
    kl = lambda x, y: (x * (x / y).log()).sum()  # noqa: E731
    assert divergence("multiclass", logits_p, logits_q).item() == pytest.approx(
        (kl(pp, qq) + kl(qq, pp)).item(), rel=1e-5
    )
    assert divergence(
        "regression", torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0])
    ).item() == pytest.approx(2.5)


def test_teacher_follows_the_beta_schedule():
    student = tiny_model()
    teacher = MomentumTeacher(student, 0.99, 0.999, 0.1)
    assert [teacher.beta(s, 100) for s in (0, 9, 10, 99)] == [0.99, 0.99, 0.999, 0.999]
    name = "heads.sst.linear.weight"
    start = dict(teacher.model.named_parameters())[name].clone()
    with torch.no_grad():
        dict(student.named_parameters())[name].add_(1.0)
    s = dict(student.named_parameters())[name].detach().clone()
    assert teacher.update(student, step=0, total_steps=100) == 0.99
    t1 = dict(teacher.model.named_parameters())[name].clone()
    assert torch.allclose(t1, 0.99 * start + 0.01 * s, atol=1e-6)
    assert teacher.update(student, step=50, total_steps=100) == 0.999
    t2 = dict(teacher.model.named_parameters())[name]
    assert torch.allclose(t2, 0.999 * t1 + 0.001 * s, atol=1e-6)
    assert not any(p.requires_grad for p in teacher.model.parameters())


def test_bregman_term_is_zero_against_an_identical_teacher_and_trains_the_student():
    student = tiny_model().eval()
    teacher = MomentumTeacher(student, 0.99, 0.999, 0.1)
    batch = batch_for("quora")
    assert bregman_term(student(batch), teacher(batch), "binary", 1.0).item() == pytest.approx(
        0.0, abs=1e-10
    )
    with torch.no_grad():
        dict(student.named_parameters())["heads.quora.linear.bias"].add_(0.5)
    term = bregman_term(student(batch), teacher(batch), "binary", 1.0)
    assert term.item() > 0
    term.backward()
    assert dict(student.named_parameters())["heads.quora.linear.bias"].grad.abs().sum() > 0
