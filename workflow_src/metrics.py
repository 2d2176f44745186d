"""Dev-set metrics per task (paper 5.2), with scikit-learn and scipy; no torch here.

Values are fractions in 0..1 (not percent). A correlation that is undefined (constant
predictions or gold) is NaN here; the training command writes it as JSON null.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

from .tasks import PRIMARY_METRIC


def sst_metrics(predictions: Sequence[int], gold: Sequence[int]) -> dict[str, float]:
    """Five-class sentiment: accuracy (primary) and macro F1 over the classes present."""
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(gold, predictions)),
        "macro_f1": float(f1_score(gold, predictions, average="macro", zero_division=0)),
    }


def quora_metrics(predictions: Sequence[int], gold: Sequence[float]) -> dict[str, float]:
    """Binary paraphrase: accuracy (primary) and F1 of the positive (duplicate) class."""
    from sklearn.metrics import accuracy_score, f1_score

    gold_int = [round(g) for g in gold]
    pred_int = [int(p) for p in predictions]
    return {
        "accuracy": float(accuracy_score(gold_int, pred_int)),
        "f1": float(f1_score(gold_int, pred_int, zero_division=0)),
    }


def sts_metrics(predictions: Sequence[float], gold: Sequence[float]) -> dict[str, float]:
    """Similarity regression: Pearson (primary) and Spearman correlation with the gold scores."""
    from scipy.stats import pearsonr, spearmanr

    if len(predictions) < 2 or len(set(predictions)) < 2 or len(set(gold)) < 2:
        return {"pearson": math.nan, "spearman": math.nan}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # near-constant inputs: scipy warns, value still defined
        pearson = float(pearsonr(predictions, gold)[0])
        spearman = float(spearmanr(predictions, gold)[0])
    return {"pearson": pearson, "spearman": spearman}


METRICS = {"sst": sst_metrics, "quora": quora_metrics, "sts": sts_metrics}


def task_metrics(task: str, predictions: Sequence, gold: Sequence) -> dict[str, float]:
    if len(predictions) != len(gold):
        raise ValueError(f"{task}: {len(predictions)} predictions for {len(gold)} gold labels")
    return METRICS[task](list(predictions), list(gold))


def primary(task: str, values: dict[str, float]) -> float:
    """The task's primary metric, NaN counted as worst (for picking the best epoch)."""
    value = values[PRIMARY_METRIC[task]]
    return -math.inf if value is None or math.isnan(value) else value
