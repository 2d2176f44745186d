"""Dev-set metrics per task (paper 5.2) in numpy; no torch here.

Not scikit-learn or scipy: importing them costs a training job 1.5 CPU-s, more than its whole
evaluation at the quick preset (benchmarks/RESULTS.md 4.1). The functions repeat those
libraries' arithmetic in the same order, so every value equals theirs bit for bit
(tests/test_metrics.py checks on random inputs).

Values are fractions in 0..1 (not percent). A correlation that is undefined (constant
predictions or gold) is NaN here; the training command writes it as JSON null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from workflow_src.spec.tasks import PRIMARY_METRIC


def _f1(gold: np.ndarray, pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """F1 of each label in `labels`: 2 tp / (gold count + predicted count), 0 where both are 0.

    The same operations as scikit-learn's f1_score (zero_division=0), in the same order, so the
    values are equal to the last bit (tests/test_metrics.py compares them).
    """
    tp = np.array([np.sum((gold == label) & (pred == label)) for label in labels])
    denominator = np.array([np.sum(gold == label) + np.sum(pred == label) for label in labels])
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = (2 * tp) / denominator
    return np.where(denominator == 0, 0.0, f1)


def sst_metrics(predictions: Sequence[int], gold: Sequence[int]) -> dict[str, float]:
    """Five-class sentiment: accuracy (primary) and macro F1 over the classes present."""
    gold_a, pred_a = np.asarray(gold), np.asarray(predictions)
    labels = np.union1d(gold_a, pred_a)
    return {
        "accuracy": float(np.mean(gold_a == pred_a)),
        "macro_f1": float(np.mean(_f1(gold_a, pred_a, labels))),
    }


def quora_metrics(predictions: Sequence[int], gold: Sequence[float]) -> dict[str, float]:
    """Binary paraphrase: accuracy (primary) and F1 of the positive (duplicate) class."""
    gold_a = np.asarray([round(g) for g in gold])
    pred_a = np.asarray([int(p) for p in predictions])
    return {
        "accuracy": float(np.mean(gold_a == pred_a)),
        "f1": float(_f1(gold_a, pred_a, np.array([1]))[0]),
    }


def pearson(x, y) -> float:
    """Pearson's r as scipy.stats.pearsonr computes it (centre, scale by the largest deviation,
    normalise, dot product, clip to [-1, 1]), so the value is scipy's to the last bit."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    xm, ym = x - np.mean(x, axis=-1, keepdims=True), y - np.mean(y, axis=-1, keepdims=True)
    xmax = np.max(np.abs(xm), axis=-1, keepdims=True)
    ymax = np.max(np.abs(ym), axis=-1, keepdims=True)
    normxm = xmax * np.linalg.norm(xm / xmax, ord=2, axis=-1, keepdims=True)
    normym = ymax * np.linalg.norm(ym / ymax, ord=2, axis=-1, keepdims=True)
    return float(np.clip(np.vecdot(xm / normxm, ym / normym, axis=-1), -1.0, 1.0))


def average_ranks(values) -> np.ndarray:
    """Ranks 1..n, ties sharing their mean rank (scipy.stats.rankdata, method "average")."""
    values = np.asarray(values)
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(starts) - 1  # tie group of each sorted position
    bounds = np.r_[np.flatnonzero(starts), len(values)]
    mean_rank = (bounds[:-1] + bounds[1:] + 1) / 2.0  # mean of 1-based ranks start+1..end
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = mean_rank[group]
    return ranks


def sts_metrics(predictions: Sequence[float], gold: Sequence[float]) -> dict[str, float]:
    """Similarity regression: Pearson (primary) and Spearman correlation with the gold scores.

    Spearman is the correlation of the average ranks, as scipy.stats.spearmanr computes it
    (numpy.corrcoef of the two rank columns).
    """
    if len(predictions) < 2 or len(set(predictions)) < 2 or len(set(gold)) < 2:
        return {"pearson": math.nan, "spearman": math.nan}
    ranked = np.column_stack((average_ranks(predictions), average_ranks(gold)))
    return {
        "pearson": pearson(predictions, gold),
        "spearman": float(np.corrcoef(ranked, rowvar=False)[1, 0]),
    }


METRICS = {"sst": sst_metrics, "quora": quora_metrics, "sts": sts_metrics}


def task_metrics(task: str, predictions: Sequence, gold: Sequence) -> dict[str, float]:
    if len(predictions) != len(gold):
        raise ValueError(f"{task}: {len(predictions)} predictions for {len(gold)} gold labels")
    return METRICS[task](list(predictions), list(gold))


def primary(task: str, values: dict[str, float]) -> float:
    """The task's primary metric, NaN counted as worst (for picking the best epoch)."""
    value = values[PRIMARY_METRIC[task]]
    return -math.inf if value is None or math.isnan(value) else value


def selection_score(dev: dict[str, dict[str, float]]) -> float:
    """What the best epoch is chosen by: the primary metric of the one task, or the mean of
    the tasks' primary metrics for a multi-task run (one epoch then reports every task);
    -inf when any is undefined."""
    values = [primary(task, metrics) for task, metrics in dev.items()]
    return sum(values) / len(values)
