"""In-batch-negatives contrastive training of a SentenceEncoder (MultipleNegativesRankingLoss).

The loop calls `PairModel(**batch inputs)`; it returns the query, positive and (optional) hard
negative vectors, and `in_batch_negatives_loss` scores every query against every positive and
negative in the batch: cross-entropy with the query's own positive as the right answer.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from fmkit.models.sentence_encoder import SentenceEncoder

DEFAULT_SCALE = 20.0  # sentence-transformers' default: cosine in [-1, 1] -> logits in [-20, 20]


class PairVectors(NamedTuple):
    queries: torch.Tensor
    positives: torch.Tensor
    negatives: torch.Tensor | None


class PairModel(nn.Module):
    """Wraps the encoder being trained; the saved model is `self.sentence`, not this wrapper."""

    def __init__(self, sentence: SentenceEncoder) -> None:
        super().__init__()
        self.sentence = sentence

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pos_input_ids: torch.Tensor,
                pos_attention_mask: torch.Tensor, neg_input_ids: torch.Tensor | None = None,
                neg_attention_mask: torch.Tensor | None = None, **_: Any) -> PairVectors:
        queries = self.sentence(input_ids, attention_mask)
        positives = self.sentence(pos_input_ids, pos_attention_mask)
        negatives = None
        if neg_input_ids is not None and neg_attention_mask is not None:
            negatives = self.sentence(neg_input_ids, neg_attention_mask)
        return PairVectors(queries, positives, negatives)


def in_batch_negatives_loss(outputs: PairVectors, batch: dict[str, torch.Tensor], scale: float = DEFAULT_SCALE
                            ) -> torch.Tensor:
    """-log softmax(scale * cos(q_i, c))[pos_i] over candidates c = all positives (+ all hard negatives).

    A positive text shared by several queries of the batch is not a negative for them: those
    columns are masked (batch["_pos_group"] marks equal positives).
    """
    q = F.normalize(outputs.queries, dim=-1)
    candidates = F.normalize(outputs.positives, dim=-1)
    if outputs.negatives is not None:
        candidates = torch.cat([candidates, F.normalize(outputs.negatives, dim=-1)])
    logits = scale * q @ candidates.T
    n = q.shape[0]
    groups = batch.get("_pos_group")
    if groups is not None:
        same = groups[:, None] == groups[None, :]
        same.fill_diagonal_(False)
        mask = torch.zeros_like(logits, dtype=torch.bool)
        mask[:, :n] = same
        logits = logits.masked_fill(mask, float("-inf"))
    target = torch.arange(n, device=logits.device)
    return F.cross_entropy(logits, target)
