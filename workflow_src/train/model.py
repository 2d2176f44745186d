"""Encoder, sentence pooling, the task heads, and each task's loss and prediction (TASK_SPECS).

Every sentence encoder here (the transformer wrapper below, the BiLSTM in lstm.py) has two
steps, so that SMART can perturb the embedding layer's output between them:
    embed(input_ids, token_type_ids) -> (N, T, E)   the embedding layer's output: for a
        transformer word + position + token-type embeddings after LayerNorm (and dropout),
        where SMART's reference implementations perturb (see smart.py)
    encode(embeds, attention_mask, token_type_ids) -> (N, H)   sentence embeddings
Pairs encoded separately arrive stacked as N = 2B rows (see batching.py); the model splits them
into u, v of shape (B, H) before the head. With joint encoding a pair is one row, and the pair
heads see a single embedding: every concatenating head then maps H -> 1 instead of 2H -> 1 (a
cross-encoder); multiply/difference/cosine need two embeddings and are refused by TrainConfig.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from workflow_src.data.encoders import has_safetensors, local_folder
from workflow_src.spec.tasks import TASK

log = logging.getLogger(__name__)


def load_transformer(name: str):
    from transformers import AutoModel

    folder = local_folder(name)
    # Safetensors wherever there are any: loading them never unpickles (and so never runs) code.
    # Folders of older uploads hold only pytorch_model.bin; transformers reads it with
    # torch.load(weights_only=True), which also refuses to run code.
    return AutoModel.from_pretrained(
        folder or name,
        local_files_only=folder is not None,
        use_safetensors=folder is None or has_safetensors(folder),
        weights_only=True,
    )


# ----------------------------------------------------------------------------- encoders


class TransformerEncoder(nn.Module):
    """A Hugging Face encoder with [CLS]-pooler or mean pooling."""

    def __init__(self, backbone: nn.Module, pooling: str = "cls"):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.hidden_size = backbone.config.hidden_size

    def embed(self, input_ids: torch.Tensor, token_type_ids=None) -> torch.Tensor:
        """The embedding layer's output (after its LayerNorm and dropout), (N, T, H)."""
        return self.backbone.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)

    def encode(self, embeds, attention_mask, token_type_ids=None) -> torch.Tensor:
        # The backbone runs its embedding layer on `embeds` and a forward hook replaces that
        # layer's result with `embeds` itself: the transformer layers then start from the given
        # embedding output, while the backbone still builds its own attention masks (a private,
        # version-dependent step that calling backbone.encoder directly would have to copy).
        hook = self.backbone.embeddings.register_forward_hook(lambda *_: embeds)
        try:
            out = self.backbone(
                inputs_embeds=embeds, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
        finally:
            hook.remove()
        if self.pooling == "mean":
            return mean_pool(out.last_hidden_state, attention_mask)
        pooled = getattr(out, "pooler_output", None)  # tanh(W h_[CLS]), as the paper uses
        return pooled if pooled is not None else out.last_hidden_state[:, 0]  # (N, H)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the real tokens: (N, T, H), (N, T) -> (N, H)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)


def apply_finetune(encoder: TransformerEncoder, mode: str) -> None:
    """Table 6: which encoder parameters train. Heads are never touched here.

    all: everything; lastN: the top N transformer layers and the pooler (embeddings and lower
    layers frozen); none ("PreTrain"): the whole encoder frozen.
    """
    backbone = encoder.backbone
    for p in backbone.parameters():
        p.requires_grad_(mode == "all")
    if mode in ("all", "none"):
        return
    layers = transformer_layers(backbone)
    keep = {"last1": 1, "last2": 2}[mode]
    for layer in list(layers)[-keep:]:
        for p in layer.parameters():
            p.requires_grad_(True)
    pooler = getattr(backbone, "pooler", None)
    if pooler is not None:
        for p in pooler.parameters():
            p.requires_grad_(True)


def transformer_layers(backbone: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks of a BERT-like model (`encoder.layer`)."""
    for path in ("encoder.layer", "transformer.layer", "layers", "layer"):
        module = backbone
        for part in path.split("."):
            module = getattr(module, part, None)
            if module is None:
                break
        if isinstance(module, nn.ModuleList):
            return module
    raise ValueError(f"cannot find the transformer layers of {type(backbone).__name__}")


# ----------------------------------------------------------------------------- heads


class LinearHead(nn.Module):
    """dropout -> Linear over the concatenated sentence embeddings (1 or 2 of them)."""

    def __init__(self, hidden: int, inputs: int, outputs: int, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden * inputs, outputs)
        self.outputs = outputs

    def forward(self, *reps: torch.Tensor) -> torch.Tensor:
        out = self.linear(self.dropout(torch.cat(reps, dim=-1)))  # (B, outputs)
        return out.squeeze(-1) if self.outputs == 1 else out


class CombinedPairHead(nn.Module):
    """Table 7 "dot product and map" (u * v, element-wise) and "difference and map" (u - v):
    the two embeddings combined into one (B, H), then Linear(H -> 1)."""

    COMBINE: ClassVar[dict] = {"multiply": torch.mul, "difference": torch.sub}

    def __init__(self, kind: str, hidden: int, dropout: float):
        super().__init__()
        self.combine = self.COMBINE[kind]
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden, 1)

    def forward(self, u, v):
        return self.linear(self.dropout(self.combine(u, v))).squeeze(-1)  # (B,)


class CosineHead(nn.Module):
    """Table 7 "scaled cosine similarity": (cos(u, v) + 1) * 2.5, in [0, 5]; no parameters."""

    def __init__(self, dropout: float):
        super().__init__()
        self.dropout = nn.Dropout(dropout)

    def forward(self, u, v):
        return (F.cosine_similarity(self.dropout(u), self.dropout(v), dim=-1) + 1.0) * 2.5


def sts_head(kind: str, hidden: int, views: int, dropout: float) -> nn.Module:
    if kind == "concat":
        return LinearHead(hidden, views, 1, dropout)
    if views != 2:
        raise ValueError(
            f"sts_head={kind!r} needs two sentence embeddings (pair_encoding separate)"
        )
    if kind in CombinedPairHead.COMBINE:
        return CombinedPairHead(kind, hidden, dropout)
    return CosineHead(dropout)


# ----------------------------------------------------------------------------- the task table


@dataclass(frozen=True)
class TaskSpec:
    """What the training loop needs of a task beyond its facts in tasks.py (columns, output kind)."""

    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # mean over the batch
    predict: Callable[[torch.Tensor], list]  # model output -> predictions as written


def _argmax(out: torch.Tensor) -> list[int]:
    return out.argmax(-1).tolist()


def _positive(out: torch.Tensor) -> list[int]:
    return (out > 0).long().tolist()  # logit > 0  <=>  p(duplicate) > 0.5


def _value(out: torch.Tensor) -> list[float]:
    return out.float().tolist()


TASK_SPECS: dict[str, TaskSpec] = {
    "sst": TaskSpec(F.cross_entropy, _argmax),
    "quora": TaskSpec(F.binary_cross_entropy_with_logits, _positive),
    "sts": TaskSpec(F.mse_loss, _value),
}


def make_head(task: str, hidden: int, views: int, sts_kind: str, dropout: float) -> nn.Module:
    """The head of `task` over `views` sentence embeddings (1, or 2 for a pair encoded apart)."""
    if task == "sts":
        return sts_head(sts_kind, hidden, views, dropout)
    return LinearHead(hidden, views, TASK[task].outputs, dropout)  # sst: 5 logits; quora: 1


class MultitaskModel(nn.Module):
    """One shared sentence encoder, one head per task."""

    def __init__(
        self,
        encoder: nn.Module,
        tasks: tuple[str, ...],
        pair_views: int = 2,
        sts_kind: str = "concat",
        dropout: float = 0.5,
    ):
        super().__init__()
        self.encoder = encoder
        self.pair_views = pair_views
        hidden = encoder.hidden_size
        self.heads = nn.ModuleDict(
            {
                task: make_head(
                    task, hidden, pair_views if TASK[task].sentences == 2 else 1, sts_kind, dropout
                )
                for task in tasks
            }
        )

    def embed(self, batch) -> torch.Tensor:
        return self.encoder.embed(batch.input_ids, batch.token_type_ids)  # (views*B, T, E)

    def forward(self, batch, embeds: torch.Tensor | None = None) -> torch.Tensor:
        """Head output of `batch` ((B, 5) logits for sst, (B,) otherwise).

        `embeds` replaces the embedding layer's output (SMART passes a perturbed copy).
        """
        if embeds is None:
            embeds = self.embed(batch)
        reps = self.encoder.encode(embeds, batch.attention_mask, batch.token_type_ids)
        return self.heads[batch.task](*reps.chunk(batch.views, dim=0))  # views x (B, H)
