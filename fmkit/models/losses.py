"""Losses are pure functions of (outputs, batch); they never hold the model."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def classification_loss(
    logits: torch.Tensor, batch: dict[str, torch.Tensor], class_weights: torch.Tensor | None = None
) -> torch.Tensor:
    weight = class_weights.to(logits.device) if class_weights is not None else None
    return F.cross_entropy(logits.float(), batch["labels"], weight=weight)


def cosine_pair_loss(cosine: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """SetFit's CosineSimilarityLoss: squared error between cos(a, b) and 1 (same class) or 0 (different)."""
    return F.mse_loss(cosine.float(), batch["labels"].float())


def masked_lm_loss(outputs: object, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy on the masked positions only (labels are -100 elsewhere).

    `outputs` are logits for every position (batch, length, vocab), or for the masked positions alone
    (n_masked, vocab, in row-major order of batch["predict_mask"]).
    """
    logits = outputs.logits if hasattr(outputs, "logits") else outputs
    assert isinstance(logits, torch.Tensor)
    labels = batch["labels"]
    if logits.dim() == 2:
        labels = labels[batch["predict_mask"]] if "predict_mask" in batch else labels[labels != -100]
    return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
