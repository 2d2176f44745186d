"""The BiLSTM baseline of Table 2 (paper section 4, Figure 1).

A trainable embedding over the encoder tokenizer's vocabulary ids (not pretrained, as in the
paper), two bidirectional LSTM layers with dropout after each, a pooled sentence vector of
size 2 * hidden, then the same heads as the transformer (a linear output: 5 for sst, 1
otherwise). The dropout after the second layer is the head's own dropout (every head starts with
one), so it is not applied twice. Pairs are the two token sequences concatenated when
pair_encoding is joint (the paper's "concatenation of 2 inputs"); separate also works.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from workflow_src.train.model import mean_pool


class BiLSTMEncoder(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 128,
        hidden_dim: int = 128,
        dropout: float = 0.5,
        pooling: str = "mean",
        pad_id: int = 0,
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.lstm1 = nn.LSTM(embedding_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.lstm2 = nn.LSTM(2 * hidden_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.pooling = pooling
        self.hidden_dim = hidden_dim
        self.hidden_size = 2 * hidden_dim  # what the heads see

    def embed(self, input_ids: torch.Tensor, token_type_ids=None) -> torch.Tensor:
        return self.embedding(input_ids)  # (N, T, E); the BiLSTM has no token types

    def encode(self, embeds, attention_mask, token_type_ids=None) -> torch.Tensor:
        """(N, T, E) -> (N, 2*hidden); padding is packed away, so it never enters a state.

        pooling "mean": mean of the top layer's outputs over real tokens; "cls" (the setting's
        name for the transformer): the last forward state and the first backward state, i.e.
        each direction's summary of the whole sequence.
        """
        lengths = attention_mask.sum(1).clamp_min(1).cpu()
        out = self._run(self.lstm1, embeds, lengths)
        out = self._run(self.lstm2, self.dropout(out), lengths)  # (N, T, 2h)
        if self.pooling == "mean":
            return mean_pool(out, attention_mask[:, : out.shape[1]])
        last = (lengths - 1).to(out.device)
        rows = torch.arange(out.shape[0], device=out.device)
        forward_last = out[rows, last, : self.hidden_dim]
        backward_first = out[:, 0, self.hidden_dim :]
        return torch.cat([forward_last, backward_first], dim=-1)

    @staticmethod
    def _run(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = lstm(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]
