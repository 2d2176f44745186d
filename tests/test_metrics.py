"""Metrics agree with hand-computed values; the module stays free of torch."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from workflow_src.metrics import PRIMARY_METRIC, primary, task_metrics


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


def test_metrics_module_does_not_import_torch():
    code = "import sys, workflow_src.metrics as m; m.task_metrics('sst',[1],[1]); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
