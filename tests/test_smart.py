"""SMART: the regulariser's defining properties, on a tiny random BERT with each task's head,
and on the embedded encoder under bf16 autocast in train mode (as the quick preset trains)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertModel

from workflow_src.data.batching import TokenizedSplit, collate
from workflow_src.spec.config import SmartConfig, TrainConfig
from workflow_src.train.build import build_model
from workflow_src.train.model import MultitaskModel, TransformerEncoder
from workflow_src.train.smart import (
    PERTURBATIONS,
    DropoutReplay,
    MomentumTeacher,
    adversarial_delta,
    bregman_term,
    divergence,
    smoothness_term,
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

    zero = divergence(KINDS[task], forward(embeds + torch.zeros_like(embeds)), clean)
    assert zero.item() == pytest.approx(0.0, abs=1e-10)
    delta = 0.5 * torch.randn_like(embeds)
    assert divergence(KINDS[task], forward(embeds + delta), clean).item() > 0
    cfg = SmartConfig(enabled=True, noise_std=0.0, step_size=0.0, perturbation="projected")
    term = smoothness_term(forward, embeds, clean, KINDS[task], cfg)
    assert term.loss.item() == pytest.approx(0.0, abs=1e-10)
    assert term.delta_inf == 0.0


@pytest.mark.parametrize("task", ["sst", "quora", "sts"])
@pytest.mark.parametrize("form", PERTURBATIONS)
def test_regulariser_gradient_reaches_the_encoder(task, form):
    model = tiny_model().train()
    batch = batch_for(task)
    embeds = model.embed(batch)
    replay = DropoutReplay()
    clean = model(batch, embeds)
    cfg = SmartConfig(
        enabled=True, noise_std=1e-2, step_size=1e-1, epsilon=1e-1, weight=1.0, perturbation=form
    )
    term = smoothness_term(lambda e: model(batch, e), embeds, clean, KINDS[task], cfg, replay)
    assert term.loss.item() > 0 and term.adv_loss > 0
    term.loss.backward()
    params = dict(model.named_parameters())
    for name in (
        "encoder.backbone.embeddings.word_embeddings.weight",
        "encoder.backbone.embeddings.LayerNorm.weight",
        "encoder.backbone.encoder.layer.0.attention.self.query.weight",
        f"heads.{task}.linear.weight",
    ):
        assert params[name].grad is not None and params[name].grad.abs().sum() > 0, name
    other = "sts" if task != "sts" else "sst"  # only the task's own head is used
    assert params[f"heads.{other}.linear.weight"].grad is None


def test_the_forms_give_their_documented_sizes():
    """token_unit_inf: every token's infinity norm is 1 (later mt-dnn, smart-pytorch);
    token_eta_step: at most eta (early mt-dnn); projected: at most epsilon (Algorithm 1)."""
    model = tiny_model().eval()
    batch = batch_for("sst")
    embeds = model.embed(batch).detach()
    clean = model(batch, embeds)
    real = batch.attention_mask.bool()

    def size(form, sigma=1e-5):
        torch.manual_seed(0)
        delta = adversarial_delta(
            lambda e: model(batch, e), embeds, clean, "multiclass", sigma, 1e-3, 1e-5, 1, form
        )
        assert delta.dtype == torch.float32 and not delta.requires_grad
        return delta.abs().amax(-1)  # (N, T)

    # 1, up to the references' guard: max|v| / (max|v| + 1e-6) with |v| ~ sigma
    unit = size("token_unit_inf")
    assert (unit > 0.9).all() and (unit <= 1).all()
    # eta where the gradient dwarfs the guard (a larger sigma, a larger gradient)
    assert (size("token_eta_step") <= 1e-3).all()
    assert size("token_eta_step", sigma=0.5)[real].max() > 0.99e-3
    assert size("projected").max().item() <= 1e-5 + 1e-9
    with pytest.raises(ValueError, match="perturbation form"):
        size("l2")


def test_perturbation_stays_in_the_epsilon_ball_and_ascends():
    model = tiny_model().eval()
    batch = batch_for("sst")
    embeds = model.embed(batch).detach()
    clean = model(batch, embeds)

    def forward(e):
        return model(batch, e)

    torch.manual_seed(3)
    noise = adversarial_delta(forward, embeds, clean, "multiclass", 1e-3, 0.0, 1.0, 1, "projected")
    torch.manual_seed(3)
    ascended = adversarial_delta(
        forward, embeds, clean, "multiclass", 1e-3, 0.05, 0.05, 2, "projected"
    )
    assert ascended.abs().max().item() <= 0.05 + 1e-7
    before = divergence("multiclass", forward(embeds + noise), clean).item()
    after = divergence("multiclass", forward(embeds + ascended), clean).item()
    assert after > before


@pytest.fixture(scope="module")
def minilm():
    """The embedded all-MiniLM-L6-v2 with the three heads, as the quick preset builds it."""
    cfg = TrainConfig(tasks=("sst", "quora", "sts"), dropout=0.1)
    torch.manual_seed(0)
    return build_model(cfg)


def minilm_batch(tokenizer, task):
    sentences = ["a gripping, funny film", "it drags on and on", "not bad at all"]
    if task == "sst":
        rows = [(tokenizer(s)["input_ids"],) for s in sentences]
        labels = [4, 0, 3]
    else:
        rows = [(tokenizer(s)["input_ids"], tokenizer(s[::-1])["input_ids"]) for s in sentences]
        labels = [1.0, 0.0, 1.0]
    return collate(
        TokenizedSplit(task, ["1", "2", "3"], labels, rows, None, len(rows[0])), [0, 1, 2], 0
    )


@pytest.mark.parametrize("task", ["sst", "quora", "sts"])
def test_under_bf16_in_train_mode_the_perturbation_moves_the_output_and_trains_the_encoder(
    minilm, task
):
    """Same dropout mask: with delta = 0 the perturbed pass equals the clean one exactly, with
    SMART's delta it differs; the regulariser is positive and its gradient reaches the encoder.
    """
    model, tokenizer = minilm
    model.train().zero_grad(set_to_none=True)
    batch = minilm_batch(tokenizer, task)
    cfg = SmartConfig(enabled=True)  # the paper's sigma, eta, K; the default form
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        embeds = model.embed(batch)
        replay = DropoutReplay()
        clean = model(batch, embeds)

        def replayed(e):
            with replay():
                return model(batch, e)

        unmoved = replayed(embeds + torch.zeros_like(embeds))
        delta = adversarial_delta(
            replayed,
            embeds,
            clean,
            KINDS[task],
            cfg.noise_std,
            cfg.step_size,
            cfg.epsilon,
            cfg.steps,
            cfg.perturbation,
        )
        moved = replayed(embeds.float() + delta)
        fresh_masks = model(batch, embeds)
        term = smoothness_term(
            lambda e: model(batch, e), embeds, clean, KINDS[task], cfg, replay, batch.attention_mask
        )
    assert embeds.dtype == delta.dtype == torch.float32  # the perturbation arithmetic is fp32
    assert torch.equal(unmoved, clean)  # the replay reproduces the clean pass's dropout
    assert not torch.equal(fresh_masks, clean)  # dropout is really on
    assert (moved.float() - clean.float()).abs().max() > (unmoved - clean).abs().max()
    assert term.adv_loss > 0 and 0.9 < term.delta_inf <= 1.0
    assert 0.05 < term.embed_abs_mean < 5
    term.loss.backward()
    params = dict(model.named_parameters())
    for name in (
        "encoder.backbone.embeddings.word_embeddings.weight",
        "encoder.backbone.encoder.layer.5.output.dense.weight",
    ):
        assert params[name].grad is not None and params[name].grad.abs().sum() > 0, name


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


# ----------------------------------------------------------------------------- the references


def reference_sym_kl(input, target, reduction):
    """smart-pytorch's sym_kl_loss: two KL terms, each with its target detached."""
    return F.kl_div(
        F.log_softmax(input, dim=-1), F.softmax(target.detach(), dim=-1), reduction=reduction
    ) + F.kl_div(
        F.log_softmax(target, dim=-1), F.softmax(input.detach(), dim=-1), reduction=reduction
    )


def reference_loss(kind, input, target, reduction):
    """The references' l_s: sym KL of the softmaxes; a binary logit a as the two logits (0, a),
    whose softmax is the Bernoulli sigmoid(a); MSE for regression."""
    if kind == "regression":
        return F.mse_loss(input, target, reduction="sum" if reduction == "sum" else "mean")
    if kind == "binary":
        input = torch.stack([torch.zeros_like(input), input], -1)
        target = torch.stack([torch.zeros_like(target), target], -1)
    return reference_sym_kl(input, target, reduction)


def reference_smart(eval_fn, embed, state, kind, noise_var=1e-5, step_size=1e-3, num_steps=1):
    """smart-pytorch's SMARTLoss.forward (archinetai/smart-pytorch), re-implemented: noise,
    num_steps normalised ascent steps on a summed loss against the detached clean state, then
    the last loss against the clean state itself."""
    noise = torch.randn_like(embed) * noise_var
    noise.requires_grad_()
    for i in range(num_steps + 1):
        state_perturbed = eval_fn(embed + noise)
        if i == num_steps:
            return reference_loss(kind, state_perturbed, state, "batchmean")
        loss = reference_loss(kind, state_perturbed, state.detach(), "sum")
        (noise_gradient,) = torch.autograd.grad(loss, noise)
        step = noise + step_size * noise_gradient
        step_norm = torch.norm(step, p=float("inf"), dim=-1, keepdim=True)
        noise = (step / (step_norm + 1e-6)).detach().requires_grad_()
    raise AssertionError("unreachable")


def loss_and_gradients(model, task, compute):
    model.zero_grad()
    batch = batch_for(task)
    embeds = model.embed(batch)
    clean = model(batch, embeds)
    torch.manual_seed(11)
    loss = compute(lambda e: model(batch, e), embeds, clean)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.item(), grads


@pytest.mark.parametrize("task", ["sst", "quora", "sts"])
def test_the_regulariser_and_its_gradient_are_the_references(task):
    """Loss and every parameter's gradient agree with an independent re-implementation of
    smart-pytorch's algorithm to 1e-5 relative, for each output kind (issue 23: the clean
    output's KL term was not detached, doubling the gradient of SST and Quora). In float64:
    the divergence of two outputs 1e-5 apart is below float32's resolution of their logs."""
    model = tiny_model().eval().double()
    kind = KINDS[task]
    cfg = SmartConfig(enabled=True, weight=1.0)
    ours, our_grads = loss_and_gradients(
        model, task, lambda f, e, c: smoothness_term(f, e, c, kind, cfg).loss
    )
    theirs, their_grads = loss_and_gradients(
        model, task, lambda f, e, c: reference_smart(f, e, c, kind)
    )
    assert ours == pytest.approx(theirs, rel=1e-5) and theirs > 0
    assert set(our_grads) == set(their_grads)
    total = torch.cat([g.flatten() for g in their_grads.values()]).norm().item()
    assert total > 0
    for name, grad in their_grads.items():  # a parameter with no real gradient (a softmax-
        scale = max(grad.norm().item(), 1e-6 * total)  # invariant bias) holds rounding only
        assert (our_grads[name] - grad).norm().item() <= 1e-5 * scale, name


def ascent_move(step_scale, step_size):
    """How far one ascent step moves the perturbation, relative to its size (token_unit_inf)."""
    model = tiny_model().eval()
    batch = batch_for("sst")
    embeds = model.embed(batch).detach()
    clean = model(batch, embeds)

    def delta(step):
        torch.manual_seed(5)
        return adversarial_delta(
            lambda e: model(batch, e), embeds, clean, "multiclass", 1e-5, step, 1e-5, 1,
            "token_unit_inf", step_scale,
        )  # fmt: skip

    start = delta(0.0)  # the noise, normalised: no ascent
    return ((delta(step_size) - start).abs().amax() / start.abs().amax()).item()


def test_at_the_defaults_the_ascent_barely_moves_the_perturbation_and_step_scale_noise_does():
    """At sigma 1e-5, eta 1e-3 the step moves the perturbation by about 1e-8 of its size
    (docs/statistics.md, SMART): a consistency term under noise. step_scale noise with eta 1
    moves it by a sizeable fraction of its size."""
    assert ascent_move("absolute", 1e-3) < 1e-6
    assert ascent_move("noise", 1e-3) > 1e-4
    assert ascent_move("noise", 1.0) > 0.1
