"""SMART (Jiang et al. 2020, "SMART: Robust and Efficient Fine-Tuning ..."), as pure functions.

Smoothness-inducing adversarial regulariser (their eq. 3 and Algorithm 1):
    R_s = lambda_s * l_s(f(x + delta; theta), f(x; theta)),   ||delta||_inf <= epsilon
where x is the word-embedding output, delta starts as N(0, sigma^2) noise and takes K steps of
normalised gradient ascent on l_s, each followed by projection onto the epsilon ball.
Bregman proximal point term (their eq. 4): mu * l_s(f(x; theta), f(x; theta_teacher)) with the
teacher an exponential moving average of the student (beta 0.99 early, 0.999 later).

l_s is the symmetric divergence of the output kind:
    multiclass  sum_c (p_c - q_c)(log p_c - log q_c)   = KL(p||q) + KL(q||p) of the softmaxes
    binary      (p - q)(a - b), p = sigmoid(a), q = sigmoid(b): symmetric KL of two Bernoullis
                (a softmax over a single logit would be constant 1: no signal)
    regression  squared error
each averaged over the batch. `forward(embeds)` is the model with the task's own head, so a
task's regulariser can only ever call that head.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def divergence(kind: str, student: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Symmetric l_s between two outputs of one head (see module doc), mean over the batch."""
    student, target = student.float(), target.float()
    if kind == "multiclass":
        log_p, log_q = F.log_softmax(student, -1), F.log_softmax(target, -1)
        return ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(-1).mean()
    if kind == "binary":
        return ((torch.sigmoid(student) - torch.sigmoid(target)) * (student - target)).mean()
    if kind == "regression":
        return F.mse_loss(student, target)
    raise ValueError(f"unknown output kind {kind!r}")


def perturbed_divergence(
    forward: Callable[[torch.Tensor], torch.Tensor],
    embeds: torch.Tensor,
    clean: torch.Tensor,
    delta: torch.Tensor,
    kind: str,
) -> torch.Tensor:
    """l_s(f(x + delta), f(x)); gradients reach the model through both outputs."""
    return divergence(kind, forward(embeds + delta), clean)


def adversarial_delta(
    forward: Callable[[torch.Tensor], torch.Tensor],
    embeds: torch.Tensor,
    clean: torch.Tensor,
    kind: str,
    noise_std: float,
    step_size: float,
    epsilon: float,
    steps: int,
) -> torch.Tensor:
    """The perturbation after K projected ascent steps (Algorithm 1, lines 5-9), detached."""
    base, target = embeds.detach(), clean.detach()
    delta = torch.randn_like(base) * noise_std
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = divergence(kind, forward(base + delta), target)
        (grad,) = torch.autograd.grad(loss, delta)
        # Normalise per example by the infinity norm, ascend, then project onto the ball.
        scale = grad.flatten(1).abs().amax(1).clamp_min(1e-12).view(-1, *[1] * (grad.dim() - 1))
        delta = (delta.detach() + step_size * grad / scale).clamp(-epsilon, epsilon)
    return delta.detach()


def smoothness_regularizer(
    forward: Callable[[torch.Tensor], torch.Tensor],
    embeds: torch.Tensor,
    clean: torch.Tensor,
    kind: str,
    cfg,
) -> torch.Tensor:
    """lambda_s * l_s(f(x + delta*), f(x)) with delta* from `adversarial_delta` (cfg: SmartConfig)."""
    delta = adversarial_delta(
        forward, embeds, clean, kind, cfg.noise_std, cfg.step_size, cfg.epsilon, cfg.steps
    )
    return cfg.weight * perturbed_divergence(forward, embeds, clean, delta, kind)


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
