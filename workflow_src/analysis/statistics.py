"""One statistical model for every comparison of cells (claims and floors): seeds x dev examples.

A comparison's difference D is a signed sum of terms, each a cell's primary metric on a task's
dev set, in points. Every run of a cell scores the same dev examples, so each term is a
(seeds x examples) table of per-example scores whose row means are the runs' metric values:
accuracy: 100 * correct; Pearson r: 100 * (r + the example's influence on r), the delta method's
linearisation of r (its mean over the examples is r exactly, see `example_scores`).

The model (a two-way crossed random-effects model, Searle, Casella and McCulloch 1992, ch. 4):
    y[s, i] = mu + a[s] + b[i] + ab[s, i]      seed s = 1..S, dev example i = 1..N
for the signed sum of the scores of the terms that share their seeds (a *group*, below). The
target is mu: the expected difference over training seeds and over the population of dev
examples. Its estimate, the grand mean, has variance
    var(D) = sigma_a^2 / S  +  sigma_b^2 / N  +  sigma_ab^2 / (S N)
estimated from the mean squares: MS_seed = N var_s(row means), MS_ex = S var_i(column means),
MS_int = the residual mean square, so that
    seed part     c = max(0, var_s(row means) - MS_int / N) / S         (S - 1 df)
    example part  e = var_i(column means) / N                           (N - 1 df)
The interaction is counted once: it is in the column means' variance (MS_int / (S N)) and is
taken out of the seed part, where the row means' variance holds it a second time. Accuracy's
example part adds half a discordant example either way (Agresti and Min 2005), so that cells
which agree on every example still get an interval of about +-2/N.

Pairing: the terms of the cells that draw the same random stream from a seed (same model,
batch size, tasks and STS head: the same head initialisation, batch order and dropout stream)
form one group, paired by seed: its per-seed values are summed before their spread is taken.
Terms of cells that do not (the BiLSTM against BERT, one STS head against another, multi-task
against single-task cells) are separate groups with independent seed parts. Different tasks'
dev sets are independent examples: their example parts add.

    var(D) = sum over groups of c_g  +  sum over tasks of e_t
Interval: D +- sqrt(sum_g t(S_g - 1)^2 c_g + sum_t t(N_t - 1)^2 e_t), t at 0.975: each part
with the quantile of its own degrees of freedom (S_g - 1 for a group's seed part, N_t - 1 for a
task's example part), so the t interval of the per-seed differences where the seeds dominate.
(Welch-Satterthwaite degrees of freedom instead cover 92% at 3 seeds where the seeds dominate:
they grow exactly when the seed part is underestimated; tests/test_statistics.py checks the
coverage.) `df` is the effective value, t(0.975, df) sqrt(var(D)) = the half width. With one
seed the seed part cannot be estimated: the interval counts the dev sample only (and the
verdict is labelled indicative).

The p-value is of the same model and the same hypothesis as the verdict: "the comparison fails
at its margin" (for `within`, the larger of its two one-sided tests), one-sided, doubled: so
p < 0.05 exactly when the 95% interval reproduces the comparison. The cautious variant counts
the interaction in both parts (no subtraction) and takes t at min(S_g) - 1 df.

No random draws: every number is a function of the predictions. No torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

CONFIDENCE = 0.95
MAX_SEEDS = 20  # seeds_needed reports "> 20" beyond this
OPS = ("greater", "less", "within", "not_greater")
REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"


# ----------------------------------------------------------------------------- scores


def example_scores(metric: str, predictions: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """(S, N) per-example scores in points whose row means are each run's metric in points.

    accuracy: 100 * correct. pearson: 100 * (r + x_i y_i - r (x_i^2 + y_i^2) / 2), x and y the
    standardised prediction and gold (population sd): the influence function of r, whose mean
    over the examples is 0, so the row mean is r; a constant row has r = 0 and scores 0.
    """
    predictions = np.atleast_2d(np.asarray(predictions, dtype=float))
    gold = np.asarray(gold, dtype=float)
    if metric == "accuracy":
        return (predictions == gold[None, :]).astype(float) * 100
    if metric != "pearson":
        raise ValueError(f"no per-example scores for metric {metric!r}")
    x = predictions - predictions.mean(1, keepdims=True)
    y = gold - gold.mean()
    sx, sy = np.sqrt((x * x).mean(1, keepdims=True)), math.sqrt(float((y * y).mean()))
    if sy == 0:
        return np.zeros_like(x)
    x = np.divide(x, sx, out=np.zeros_like(x), where=sx > 0)
    y = y / sy
    r = (x * y).mean(1, keepdims=True)
    scores = r + x * y - r * (x * x + y * y) / 2
    return np.where(sx > 0, scores, 0.0) * 100


# ----------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Group:
    """Terms that share their seeds: task -> (S, N_task) signed sum of their scores."""

    scores: dict[str, np.ndarray]

    @property
    def seeds(self) -> int:
        return next(iter(self.scores.values())).shape[0]


@dataclass(frozen=True)
class Estimate:
    """D, its variance parts and what follows from them (points)."""

    diff: float
    seed_parts: tuple[float, ...]  # c_g: per group, interaction taken out
    seed_raw: tuple[float, ...]  # var_s(row means) / S_g: per group, interaction in
    group_seeds: tuple[int, ...]  # S_g
    example_parts: tuple[float, ...]  # e_t: per task
    interaction: tuple[float, ...]  # per task: the interaction's share of e_t at S_g
    examples: tuple[int, ...]  # N_t

    @property
    def variance(self) -> float:
        return sum(self.seed_parts) + sum(self.example_parts)

    @property
    def half_width(self) -> float:
        return half_width(self.seed_parts, self.group_seeds, self.example_parts, self.examples)

    @property
    def df(self) -> float:
        """The effective degrees of freedom: t(0.975, df) * sqrt(variance) = half_width."""
        return effective_df(self.half_width, self.variance)

    def interval(self, cautious: bool = False) -> tuple[float, float]:
        """The 95% interval; `cautious`: the interaction in both parts, t at min(S_g) - 1 df."""
        if cautious:
            half = quantile(self.cautious_df) * math.sqrt(self.cautious_variance)
        else:
            half = self.half_width
        return self.diff - half, self.diff + half

    @property
    def cautious_variance(self) -> float:
        return sum(self.seed_raw) + sum(self.example_parts)

    @property
    def cautious_df(self) -> float:
        seeded = [s for s in self.group_seeds if s > 1]
        return float(min(seeded) - 1) if seeded else self.df

    def at_seeds(self, seeds: int) -> tuple[float, float]:
        """(variance, half width) expected with `seeds` seeds in every group, the variance
        components as estimated."""
        seed_parts = [c * s / seeds for c, s in zip(self.seed_parts, self.group_seeds, strict=True)]
        share = min(self.group_seeds) / seeds
        example_parts = [
            max(0.0, e - i) + min(e, i) * share
            for e, i in zip(self.example_parts, self.interaction, strict=True)
        ]
        groups = [seeds] * len(seed_parts)
        variance = sum(seed_parts) + sum(example_parts)
        return variance, half_width(seed_parts, groups, example_parts, self.examples)

    @property
    def dev_only_variance(self) -> float:
        """What infinitely many seeds would leave: the examples' own variance."""
        pairs = zip(self.example_parts, self.interaction, strict=True)
        return sum(max(0.0, e - i) for e, i in pairs)


def half_width(seed_parts, group_seeds, example_parts, examples) -> float:
    """Each part scaled by the t quantile of its own degrees of freedom (S_g - 1, N_t - 1):
    sqrt(sum t(S_g - 1)^2 c_g + sum t(N_t - 1)^2 e_t). Where the seeds dominate this is the
    t interval of the per-seed differences; where the examples do, the normal one."""
    total = sum(
        quantile(s - 1) ** 2 * c for c, s in zip(seed_parts, group_seeds, strict=True) if c > 0
    )
    total += sum(
        quantile(max(1, n - 1)) ** 2 * e for e, n in zip(example_parts, examples, strict=True)
    )
    return math.sqrt(total)


def effective_df(half: float, variance: float) -> float:
    """The df whose t quantile turns sqrt(variance) into `half` (inf at the normal's or below)."""
    if variance <= 0 or half <= 0:
        return math.inf
    target = half / math.sqrt(variance)
    if target <= quantile(math.inf) * (1 + 1e-12):
        return math.inf
    tail = 0.5 + CONFIDENCE / 2
    return float(optimize.brentq(lambda df: stats.t.ppf(tail, df) - target, 0.05, 1e9, xtol=1e-10))


def quantile(df: float) -> float:
    tail = 0.5 + CONFIDENCE / 2
    return float(stats.norm.ppf(tail) if math.isinf(df) else stats.t.ppf(tail, df))


def _interaction_mean_square(y: np.ndarray) -> float:
    s, n = y.shape
    if s < 2 or n < 2:
        return 0.0
    residual = y - y.mean(1, keepdims=True) - y.mean(0, keepdims=True) + y.mean()
    return float((residual**2).sum() / ((s - 1) * (n - 1)))


def _example_part(d: np.ndarray, accuracy: bool) -> float:
    n = len(d)
    if n < 2:
        return 0.0
    if not accuracy:
        return float(np.var(d, ddof=1) / n)
    # Agresti-Min: half an example at +-1 (in points +-100) added to the per-example differences
    adjusted = (np.sum(d**2) + 100.0**2) / (n + 2) - (np.sum(d) / (n + 2)) ** 2
    return float(adjusted / (n + 2))


def estimate(groups: list[Group], accuracy_tasks: set[str]) -> Estimate:
    """The model above on the groups' score tables."""
    tasks = list(dict.fromkeys(t for g in groups for t in g.scores))
    diff = float(sum(y.mean() for g in groups for y in g.scores.values()))
    seed_parts, seed_raw, interaction_of = [], [], {t: 0.0 for t in tasks}
    for group in groups:
        s = group.seeds
        totals = sum(y.mean(1) for y in group.scores.values())
        raw = float(np.var(totals, ddof=1) / s) if s > 1 else 0.0
        share = sum(_interaction_mean_square(y) / y.shape[1] / s for y in group.scores.values())
        for task, y in group.scores.items():
            interaction_of[task] += _interaction_mean_square(y) / y.shape[1] / s
        seed_raw.append(raw)
        seed_parts.append(max(0.0, raw - share))
    example_parts, examples = [], []
    for task in tasks:
        d = sum(g.scores[task].mean(0) for g in groups if task in g.scores)
        example_parts.append(_example_part(d, task in accuracy_tasks))
        examples.append(len(d))
    return Estimate(
        diff,
        tuple(seed_parts),
        tuple(seed_raw),
        tuple(g.seeds for g in groups),
        tuple(example_parts),
        tuple(interaction_of[t] for t in tasks),
        tuple(examples),
    )


# ----------------------------------------------------------------------------- verdicts


def verdict(op: str, margin: float, low: float, high: float) -> str:
    """Reproduced when the whole interval satisfies the comparison, contradicted when the whole
    interval violates it, inconclusive when it straddles the line."""
    if op == "greater":
        satisfied, violated = low > margin, high <= margin
    elif op == "less":
        satisfied, violated = high < -margin, low >= -margin
    elif op == "within":
        satisfied = -margin <= low and high <= margin
        violated = high < -margin or low > margin
    elif op == "not_greater":
        satisfied, violated = high <= margin, low > margin
    else:
        raise ValueError(f"unknown op {op!r}: one of {OPS}")
    return REPRODUCED if satisfied else CONTRADICTED if violated else INCONCLUSIVE


def p_value(op: str, margin: float, diff: float, se: float, df: float) -> float:
    """p of "the comparison fails at its margin" (one-sided, doubled; for `within` the larger
    of its two one-sided tests): p < 1 - CONFIDENCE exactly when `verdict` says reproduced."""
    dist = stats.norm if math.isinf(df) else stats.t(df)
    if se == 0:
        satisfied = verdict(op, margin, diff, diff) == REPRODUCED
        return 0.0 if satisfied else 1.0
    if op == "greater":
        one_sided = dist.sf((diff - margin) / se)
    elif op == "less":
        one_sided = dist.cdf((diff + margin) / se)
    elif op == "not_greater":
        one_sided = dist.cdf((diff - margin) / se)
    elif op == "within":
        one_sided = max(dist.sf((diff + margin) / se), dist.cdf((diff - margin) / se))
    else:
        raise ValueError(f"unknown op {op!r}: one of {OPS}")
    return float(min(1.0, 2 * one_sided))


def cautious_margin(op: str, margin: float, current: str, tighter: float = 0.1) -> float:
    """The margin moved `tighter` (10%) against the verdict in hand: a reproduced comparison
    must hold by a stricter margin, a contradicted one must fail a looser one."""
    if current == INCONCLUSIVE:
        return margin
    stricter = op in ("greater", "less")  # the margin is a required gap, not an allowance
    harder = current == REPRODUCED
    return margin * (1 + tighter if stricter == harder else 1 - tighter)


def seeds_needed(op: str, margin: float, est: Estimate, current: str) -> str:
    """For an inconclusive comparison, the seeds per cell at which the interval, with the
    variance observed, is expected to clear the margin: "" when decided, "never" when the dev
    sample's variance alone keeps it across, "> 20" beyond MAX_SEEDS."""
    if current != INCONCLUSIVE:
        return ""
    if not est.group_seeds:
        return "never"
    half = quantile(math.inf) * math.sqrt(est.dev_only_variance)
    if verdict(op, margin, est.diff - half, est.diff + half) == INCONCLUSIVE:
        return "never"
    for seeds in range(max(est.group_seeds) + 1, MAX_SEEDS + 1):
        _, half = est.at_seeds(seeds)
        if verdict(op, margin, est.diff - half, est.diff + half) != INCONCLUSIVE:
            return str(seeds)
    return f"> {MAX_SEEDS}"
