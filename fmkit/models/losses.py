"""Losses are pure functions of (outputs, batch); they never hold the model."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def classification_loss(
    logits: torch.Tensor, batch: dict[str, torch.Tensor], class_weights: torch.Tensor | None = None
) -> torch.Tensor:
    weight = class_weights.to(logits.device) if class_weights is not None else None
    return F.cross_entropy(logits.float(), batch["labels"], weight=weight)
