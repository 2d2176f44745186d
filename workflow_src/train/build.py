"""What a run is built from: the device, the model, the optimiser and its schedule."""

from __future__ import annotations

import logging

from workflow_src.spec.config import TrainConfig

log = logging.getLogger(__name__)


def pick_device(cfg: TrainConfig):
    import torch

    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda but no CUDA device is available")
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def set_up_torch(cfg: TrainConfig):
    """The device, with torch's threads set and, on CPU, deterministic kernels (a resumed run
    then matches an uninterrupted one exactly)."""
    import torch

    torch.set_num_threads(cfg.threads)
    device = pick_device(cfg)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    return device


def build_model(cfg: TrainConfig, tokenizer=None, vocab: tuple[int, int] | None = None):
    """(model, tokenizer) of a TrainConfig; heads are initialised from the torch RNG.

    `vocab` (size, pad id), when the data came tokenised, spares loading the tokenizer: the
    tokenizer returned is then None.

    Here rather than in model.py, so that model.py never imports lstm.py (which imports
    model.mean_pool): the encoders and heads form no import circle.
    """
    from workflow_src.data.encoders import load_tokenizer
    from workflow_src.train.lstm import BiLSTMEncoder
    from workflow_src.train.model import (
        MultitaskModel,
        TransformerEncoder,
        apply_finetune,
        load_transformer,
    )

    if vocab is None:
        tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg.encoder)
        vocab = (len(tokenizer), tokenizer.pad_token_id or 0)
    if cfg.model == "bilstm":
        encoder = BiLSTMEncoder(
            vocab_size=vocab[0],
            embedding_dim=cfg.lstm_embedding_dim,
            hidden_dim=cfg.lstm_hidden_dim,
            dropout=cfg.dropout,
            pooling=cfg.pooling,
            pad_id=vocab[1],
        )
    else:
        encoder = TransformerEncoder(load_transformer(cfg.encoder), cfg.pooling)
        apply_finetune(encoder, cfg.finetune)
    views = 2 if cfg.pair_encoding == "separate" else 1
    model = MultitaskModel(encoder, cfg.tasks, views, cfg.sts_head, cfg.dropout)
    return model, tokenizer


def parameter_groups(cfg: TrainConfig, trainable: dict) -> list[dict]:
    """The encoder's parameters at `lr`; the task heads' (`heads.*`) at `head_lr` when set."""
    if cfg.head_lr is None:
        return [{"params": list(trainable.values())}]
    encoder = [p for name, p in trainable.items() if not name.startswith("heads.")]
    heads = [p for name, p in trainable.items() if name.startswith("heads.")]
    return [
        group
        for group in ({"params": encoder}, {"params": heads, "lr": cfg.head_lr})
        if group["params"]
    ]


def make_optimizer(cfg: TrainConfig, trainable: dict, device):
    """Adam (L2 weight decay) or AdamW (decoupled), fused kernels where torch has them."""
    import torch

    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    groups = parameter_groups(cfg, trainable)
    try:
        return cls(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return cls(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=device.type == "cuda")


def make_scheduler(cfg: TrainConfig, optimizer, total_steps: int):
    import torch

    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    return torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
