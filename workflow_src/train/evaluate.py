"""Evaluation: predictions of a tokenised split and the dev metrics of every task."""

from __future__ import annotations

from workflow_src.spec.config import TrainConfig


def predict(model, split, cfg: TrainConfig, device, pad_id: int) -> list:
    """Predictions of one tokenised split in file order, without dropout or autograd (leaves
    the model in eval mode)."""
    import torch

    from workflow_src.data.batching import autocast, collate, eval_batches
    from workflow_src.train.model import TASK_SPECS

    model.eval()
    predictions = [None] * len(split)
    with torch.inference_mode():
        for index in eval_batches(split.lengths(), cfg.eval_batch_size):
            batch = collate(split, index, pad_id).to(device)
            with autocast(device, cfg.precision):
                out = model(batch)
            for i, p in zip(index, TASK_SPECS[split.task].predict(out), strict=True):
                predictions[i] = p
    return predictions


def evaluate(model, dev_tok: dict, cfg: TrainConfig, device, pad_id: int) -> tuple[dict, dict]:
    """Dev metrics and predictions (file order) of every task; the model trains on after."""
    from workflow_src.analysis.metrics import task_metrics

    predictions = {
        task: predict(model, split, cfg, device, pad_id) for task, split in dev_tok.items()
    }
    model.train()
    metrics = {
        task: task_metrics(task, predictions[task], split.labels) for task, split in dev_tok.items()
    }
    return metrics, predictions
