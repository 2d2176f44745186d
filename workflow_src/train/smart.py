"""SMART (Jiang et al. 2020, "SMART: Robust and Efficient Fine-Tuning ..."), as pure functions.

Smoothness-inducing adversarial regulariser (their eq. 3 and Algorithm 1):
    R_s = lambda_s * l_s(f(x + delta; theta), f(x; theta))
where x is the embedding layer's output and delta an adversarial perturbation of it. The seed
paper describes only this term ("additional loss signifying difference in prediction in
neighborhood of a point"), so its Table 9 cells run it alone; the Bregman proximal point term
(their eq. 4, mu * l_s(f(x; theta), f(x; theta_teacher)) with a momentum teacher) is a setting.

What is perturbed, and how, follows the reference implementations rather than the paper's
Algorithm 1 alone (read, not copied):
- namisan/mt-dnn `mt_dnn/perturbation.py` (SMART's authors) and archinetai/smart-pytorch
  `smart_pytorch/smart_pytorch.py` both perturb the output of the embedding layer (word +
  position + token type, after LayerNorm and dropout), start from N(0, sigma^2) noise, and
  normalise each token's ascent direction by its infinity norm (grad / (max|grad| + 1e-6)).
- They differ in the perturbation's final size. An early mt-dnn version keeps eta * direction
  (`token_eta_step`: every token moved by at most eta = 1e-3). Later mt-dnn and smart-pytorch
  normalise (noise + eta * grad) per token, so every token's perturbation has infinity norm 1
  (`token_unit_inf`, the default). We follow the later form: it is what both maintained
  references do and what the authors kept, and a step of 1e-3 on embedding outputs of size
  ~0.3 sits below the resolution of bf16 (8 bits of mantissa, a step of 0.002 at 0.3), so under
  bf16 training the early form would mostly measure rounding.
- `projected` is Algorithm 1 as printed: one normalised ascent step of eta per example, then
  projection onto the infinity ball of radius epsilon = 1e-5. Far below bf16 resolution: use it
  with fp32 precision.
The paper's sigma = 1e-5, eta = 1e-3, K = 1 are kept in every form.

Numerics and dropout:
- The perturbation is built and added in fp32 (embedding outputs are fp32 under autocast); the
  perturbed forward autocasts only after the addition, and the residual stream keeps it in fp32.
- The clean target and every perturbed pass use the same dropout masks (`DropoutReplay`, the
  way torch.utils.checkpoint replays a forward): the clean pass is the training forward itself,
  so no extra pass is needed, dropout still regularises, and f(x + delta) - f(x) measures delta
  alone (with fresh masks it mostly measures two dropout draws).

l_s is the symmetric divergence of the output kind, written as the references write it (smart-
pytorch's `sym_kl_loss`, MT-DNN's `SymKlCriterion`): two KL terms, each with its target detached,
    multiclass  KL(sg(q) || p) + KL(sg(p) || q), p and q the softmaxes of student and target
    binary      the same for the two Bernoullis sigmoid(a), sigmoid(b) (a softmax over a single
                logit would be constant 1: no signal)
    regression  squared error (both references: MSE, nothing detached)
each averaged over the batch (sg: stop-gradient). Its value is the symmetric KL; its gradient
is the references': the student's logits get p - q, the target's q - p, where differentiating
the symmetric KL through both sides would double it (lambda = 1 acting as the references' 2).
`forward(embeds)` is the model with the task's own head, so a task's regulariser can only ever
call that head.

How far the ascent step moves the perturbation: at sigma = 1e-5 the divergence is quadratic in
delta, so its gradient is about 1e-5 times the head's curvature, and eta times it moves a
perturbation of size sigma by about 1e-8 of its size (tests/test_smart.py measures it; issue
23). At the defaults SMART is therefore, here as in the references, a consistency term under
random noise of infinity norm about 1 per token after the normalisation, not an adversarial one.
`step_scale: noise` makes the step eta times each token's own perturbation size (delta +
eta |delta|_inf grad / |grad|_inf), so that eta = 1 moves the perturbation by its own size:
a setting to test with an overlay whether an adversarial step changes the SMART claims
(off by default: `absolute`, the references' step).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from workflow_src.spec.config import SmartConfig, declared_choices

PERTURBATIONS = declared_choices(SmartConfig)["perturbation"]
NORM_EPS = 1e-6  # the references' guard in grad / (max|grad| + eps)


def wide(x: torch.Tensor) -> torch.Tensor:
    """fp32 for half-precision tensors; fp32 and fp64 as they are."""
    return x if x.dtype == torch.float64 else x.float()


def _bernoulli_kl(log_p: torch.Tensor, log_not_p: torch.Tensor, logit: torch.Tensor):
    """KL(Bernoulli(p) || Bernoulli(sigmoid(logit))), p given by its logs."""
    return log_p.exp() * (log_p - F.logsigmoid(logit)) + log_not_p.exp() * (
        log_not_p - F.logsigmoid(-logit)
    )


def divergence(kind: str, student: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Symmetric l_s between two outputs of one head (see module doc), mean over the batch:
    KL(sg(target) || student) + KL(sg(student) || target) for the classifiers."""
    student, target = wide(student), wide(target)
    if kind == "multiclass":
        log_p, log_q = F.log_softmax(student, -1), F.log_softmax(target, -1)
        fixed_p, fixed_q = log_p.detach(), log_q.detach()
        forward = (fixed_q.exp() * (fixed_q - log_p)).sum(-1)  # KL(sg(q) || p)
        backward = (fixed_p.exp() * (fixed_p - log_q)).sum(-1)  # KL(sg(p) || q)
        return (forward + backward).mean()
    if kind == "binary":
        a, b = student.detach(), target.detach()
        forward = _bernoulli_kl(F.logsigmoid(b), F.logsigmoid(-b), student)
        backward = _bernoulli_kl(F.logsigmoid(a), F.logsigmoid(-a), target)
        return (forward + backward).mean()
    if kind == "regression":
        return F.mse_loss(student, target)
    raise ValueError(f"unknown output kind {kind!r}")


class DropoutReplay:
    """The random state before the clean forward; `with replay():` runs a pass on it again.

    Inside, dropout draws the same masks as the clean pass did (same shapes, same order of
    random calls); on leaving, the random state is put back where it was, so the passes in
    between leave no trace in the training's random stream.
    """

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.state = self._get()

    def _get(self):
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return torch.get_rng_state(), cuda

    def _set(self, state) -> None:
        torch.set_rng_state(state[0])
        if state[1] is not None:
            torch.cuda.set_rng_state(state[1], self.device)

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        after = self._get()
        self._set(self.state)
        try:
            yield
        finally:
            self._set(after)


def _replayed(forward: Callable, replay: DropoutReplay | None) -> Callable:
    if replay is None:
        return forward

    def run(embeds: torch.Tensor) -> torch.Tensor:
        with replay():
            return forward(embeds)

    return run


def _token_direction(step: torch.Tensor) -> torch.Tensor:
    """Each token's vector divided by its infinity norm: (N, T, E) -> (N, T, E)."""
    return step / (step.abs().amax(-1, keepdim=True) + NORM_EPS)


def adversarial_delta(
    forward: Callable[[torch.Tensor], torch.Tensor],
    embeds: torch.Tensor,
    clean: torch.Tensor,
    kind: str,
    noise_std: float,
    step_size: float,
    epsilon: float,
    steps: int,
    form: str = "token_unit_inf",
    step_scale: str = "absolute",
) -> torch.Tensor:
    """The perturbation after K ascent steps from N(0, noise_std^2) noise, fp32, detached.

    `forward` should replay the clean pass's dropout (see `smoothness_term`). `step_scale`
    "noise" makes each token's step eta times its own perturbation's infinity norm (module doc;
    token_unit_inf only: the other forms normalise the step themselves).
    """
    if form not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation form {form!r}: one of {PERTURBATIONS}")
    base, target = wide(embeds.detach()), clean.detach()
    delta = torch.randn_like(base) * noise_std
    for _ in range(steps):
        delta.requires_grad_(True)
        # Summed over the batch: each example's ascent direction then does not depend on how
        # many examples share its batch (the references sum too).
        loss = divergence(kind, forward(base + delta), target) * target.shape[0]
        (grad,) = torch.autograd.grad(loss, delta)
        delta, grad = delta.detach(), wide(grad)
        if form == "token_unit_inf":
            if step_scale == "noise":  # no guard: the gradient is ~1e-10 at sigma 1e-5
                size = grad.abs().amax(-1, keepdim=True).clamp_min(torch.finfo(grad.dtype).tiny)
                grad = grad / size * delta.abs().amax(-1, keepdim=True)
            delta = _token_direction(delta + step_size * grad)
        elif form == "token_eta_step":
            delta = step_size * _token_direction(grad)
        else:  # Algorithm 1: normalise per example, ascend, project onto the epsilon ball
            scale = grad.flatten(1).abs().amax(1).clamp_min(1e-12)
            step = step_size * grad / scale.view(-1, *[1] * (grad.dim() - 1))
            delta = (delta + step).clamp(-epsilon, epsilon)
    return delta.detach()


@dataclass(frozen=True)
class SmoothnessTerm:
    """The regulariser of one batch and what a run records about it."""

    loss: torch.Tensor  # lambda_s * l_s(f(x + delta), f(x)); gradients reach the model
    adv_loss: float  # l_s(f(x + delta), f(x)) before the weight
    delta_inf: float  # mean over real tokens of each token's ||delta||_inf
    embed_abs_mean: float  # mean |x| over real tokens: the scale delta is compared with

    def stats(self) -> dict[str, float]:
        return {
            "adv_loss": self.adv_loss,
            "delta_inf": self.delta_inf,
            "embed_abs_mean": self.embed_abs_mean,
        }


def smoothness_term(
    forward: Callable[[torch.Tensor], torch.Tensor],
    embeds: torch.Tensor,
    clean: torch.Tensor,
    kind: str,
    cfg: SmartConfig,
    replay: DropoutReplay | None = None,
    mask: torch.Tensor | None = None,
) -> SmoothnessTerm:
    """lambda_s * l_s(f(x + delta*), f(x)).

    embeds: (N, T, E) the embedding output the clean pass used; clean: that pass's head output;
    replay: taken just before the clean pass, so every perturbed pass drops what it dropped;
    mask: (N, T) real tokens, for the statistics only.
    """
    run = _replayed(forward, replay)
    delta = adversarial_delta(
        run,
        embeds,
        clean,
        kind,
        cfg.noise_std,
        cfg.step_size,
        cfg.epsilon,
        cfg.steps,
        cfg.perturbation,
        cfg.step_scale,
    )
    adv = divergence(kind, run(wide(embeds) + delta), clean)
    with torch.no_grad():
        real = (
            torch.ones(embeds.shape[:2], dtype=torch.bool, device=embeds.device)
            if mask is None
            else mask[:, : embeds.shape[1]].bool()
        )
        delta_inf = delta.abs().amax(-1)[real].mean().item()
        embed_abs_mean = embeds.detach().float().abs().mean(-1)[real].mean().item()
    return SmoothnessTerm(cfg.weight * adv, adv.item(), delta_inf, embed_abs_mean)


class MomentumTeacher:
    """theta_teacher <- beta * theta_teacher + (1 - beta) * theta after every update.

    beta is `beta_early` for the first `switch_fraction` of all updates, `beta_late` after.
    Only trainable parameters move (frozen ones equal the student's forever); the teacher runs
    without dropout and without gradients.
    """

    def __init__(
        self, student: nn.Module, beta_early: float, beta_late: float, switch_fraction: float
    ):
        self.model = copy.deepcopy(student).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.beta_early, self.beta_late, self.switch_fraction = (
            beta_early,
            beta_late,
            switch_fraction,
        )
        self.names = [n for n, p in student.named_parameters() if p.requires_grad]
        params = dict(self.model.named_parameters())
        self.params = [params[n] for n in self.names]

    def beta(self, step: int, total_steps: int) -> float:
        """Momentum for update number `step` (0-based) of `total_steps`."""
        return self.beta_early if step < self.switch_fraction * total_steps else self.beta_late

    @torch.no_grad()
    def update(self, student: nn.Module, step: int, total_steps: int) -> float:
        beta = self.beta(step, total_steps)
        source = dict(student.named_parameters())
        for name, t in zip(self.names, self.params, strict=True):
            t.lerp_(source[name].detach(), 1.0 - beta)  # t = beta * t + (1 - beta) * s
        return beta

    @torch.no_grad()
    def __call__(self, batch) -> torch.Tensor:
        return self.model(batch)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {
            name: t.detach().contiguous() for name, t in zip(self.names, self.params, strict=True)
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, t in zip(self.names, self.params, strict=True):
            t.copy_(state[name])


def bregman_term(student_out: torch.Tensor, teacher_out: torch.Tensor, kind: str, mu: float):
    """mu * l_s(f(x; theta), f(x; theta_teacher)); the teacher's output is a constant."""
    return mu * divergence(kind, student_out, teacher_out.detach())
