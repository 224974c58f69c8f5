"""Task heads: small modules that turn encoder outputs into logits or vectors."""

from __future__ import annotations

import torch
from torch import nn


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors a text really has (padding excluded)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, how: str) -> torch.Tensor:
    if how == "mean":
        return mean_pool(hidden, attention_mask)
    if how == "cls":
        return hidden[:, 0]
    if how == "mean_norm":
        # Unit-length mean vectors: what cosine-trained (fewshot) and zero-shot heads expect.
        return torch.nn.functional.normalize(mean_pool(hidden, attention_mask), p=2, dim=-1)
    raise ValueError(f"unknown pooling '{how}'")


class ClassificationHead(nn.Module):
    """Vector -> dropout -> linear: P(y|x) = softmax(xW + b). Works on pooled texts or on every token."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden_size, num_labels)
        nn.init.normal_(self.linear.weight, std=0.02)
        nn.init.zeros_(self.linear.bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(pooled))
