"""Metrics agree with hand-computed values and with scikit-learn and scipy bit for bit; the
module stays free of torch (and of those libraries' import cost)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from workflow_src.analysis.metrics import (
    PRIMARY_METRIC,
    average_ranks,
    primary,
    selection_score,
    task_metrics,
)


def test_sst_accuracy_and_macro_f1_by_hand():
    gold = [0, 1, 2, 2, 4]
    pred = [0, 1, 2, 1, 3]
    m = task_metrics("sst", pred, gold)
    assert m["accuracy"] == pytest.approx(3 / 5)
    # per class F1 over labels present in gold or pred: 0:1, 1:2/3 (p=1/2, r=1), 2:2/3 (p=1,
    # r=1/2), 3:0, 4:0  -> mean over 5 classes
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 2 / 3 + 0 + 0) / 5)


def test_quora_accuracy_and_f1_by_hand():
    gold = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    pred = [1, 1, 0, 1, 0, 0]
    m = task_metrics("quora", pred, gold)
    assert m["accuracy"] == pytest.approx(4 / 6)
    # tp=2, fp=1, fn=1: precision 2/3, recall 2/3, F1 2/3
    assert m["f1"] == pytest.approx(2 / 3)


def test_sts_pearson_and_spearman_by_hand():
    gold = [1.0, 2.0, 3.0, 4.0]
    pred = [2.0, 4.0, 6.0, 8.5]
    m = task_metrics("sts", pred, gold)
    x, y = gold, pred
    mx, my = sum(x) / 4, sum(y) / 4
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    r = cov / math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))
    assert m["pearson"] == pytest.approx(r)
    assert m["spearman"] == pytest.approx(1.0)  # same ranks
    assert task_metrics("sts", [3.0, 2.0, 1.0], [1.0, 2.0, 3.0])["pearson"] == pytest.approx(-1)


def test_constant_sts_predictions_give_nan_and_rank_worst():
    m = task_metrics("sts", [2.5, 2.5, 2.5], [1.0, 2.0, 3.0])
    assert math.isnan(m["pearson"])
    assert primary("sts", m) == -math.inf


def test_primary_metrics_are_the_papers():
    assert PRIMARY_METRIC == {"sst": "accuracy", "quora": "accuracy", "sts": "pearson"}


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="sst"):
        task_metrics("sst", [1, 2], [1])


def test_metrics_module_imports_neither_torch_nor_scikit_learn_nor_scipy():
    code = (
        "import sys, workflow_src.analysis.metrics as m; "
        "[m.task_metrics(t, [1, 0, 1], [1, 1, 0]) for t in ('sst', 'quora', 'sts')]; "
        "print(sorted({'torch', 'sklearn', 'scipy'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def random_cases(count: int = 120):
    """(task, predictions, gold) drawn like dev sets: small and large, ties, missing classes."""
    rng = np.random.default_rng(7)
    for i in range(count):
        n = int(rng.integers(2, 900))
        classes = int(rng.integers(1, 6))
        gold = rng.integers(0, 5, n).tolist()
        yield "sst", rng.integers(0, classes, n).tolist(), gold
        yield "quora", rng.integers(0, 2 if i % 7 else 1, n).tolist(), rng.integers(0, 2, n) * 1.0
        scores = np.round(rng.uniform(0, 5, n), 1 if i % 3 else 3)  # STS gold: many ties
        noisy = scores + rng.normal(0, 1 + i % 4, n)
        yield "sts", (np.round(noisy, 2) if i % 2 else noisy).tolist(), scores.tolist()


def test_metrics_equal_scikit_learn_and_scipy_to_the_last_bit():
    """The numpy metrics repeat the libraries' arithmetic: values equal, not just close."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score

    for task, pred, gold in random_cases():
        got = task_metrics(task, pred, list(gold))
        if task == "sst":
            want = {
                "accuracy": accuracy_score(gold, pred),
                "macro_f1": f1_score(gold, pred, average="macro", zero_division=0),
            }
        elif task == "quora":
            gold_int = [round(g) for g in gold]
            want = {
                "accuracy": accuracy_score(gold_int, pred),
                "f1": f1_score(gold_int, pred, zero_division=0),
            }
        else:
            want = {"pearson": pearsonr(pred, gold)[0], "spearman": spearmanr(pred, gold)[0]}
        assert got == {k: float(v) for k, v in want.items()}, (task, len(pred))


def test_average_ranks_share_ties():
    assert average_ranks([3.0, 1.0, 3.0, 2.0]).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_the_best_epoch_is_chosen_by_the_mean_of_the_tasks_primary_metrics():
    one = {"sst": {"accuracy": 0.5, "macro_f1": 0.9}}
    assert selection_score(one) == 0.5
    three = {
        "sst": {"accuracy": 0.5},
        "quora": {"accuracy": 0.7},
        "sts": {"pearson": 0.3, "spearman": 0.9},
    }
    assert selection_score(three) == pytest.approx(0.5)
    three["sts"]["pearson"] = math.nan  # undefined on one task: the epoch is never the best
    assert selection_score(three) == -math.inf
