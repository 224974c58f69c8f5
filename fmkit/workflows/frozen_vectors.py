"""Pooled vectors of texts under the untouched backbone, through the same on-disk cache as `linear-probe`.

For commands that need the frozen encoder's view of a file without a training run (`fmkit audit`): one
forward pass per text, skipped entirely when the same model, texts and settings were encoded before.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fmkit.config import RunConfig
from fmkit.data.tasks.classification import make_loader
from fmkit.data.tokenized import encode_texts
from fmkit.models.classifier import TextClassifier
from fmkit.models.precision import ResolvedPrecision
from fmkit.models.vector_cache import EmbeddingCache, cache_key, embed_batches
from fmkit.training.precision import resolve_mixed_precision
from fmkit.utils.progress import Progress
from fmkit.workflows.task_run import load_backbone


def frozen_vectors(cfg: RunConfig, texts: Sequence[str], name: str) -> torch.Tensor:
    """(len(texts), hidden) float32 vectors pooled as model.pooling says, computed in the run's training
    precision (what a linear probe's training vectors use, so the two share cache entries)."""
    model_path, tokenizer, max_length = load_backbone(cfg, texts=texts)
    precision: ResolvedPrecision = "bf16" if resolve_mixed_precision(cfg.train.mixed_precision) == "bf16" else "fp32"
    cache = EmbeddingCache()
    key = cache_key(model_path, texts, max_length, cfg.model.pooling, precision)
    with Progress(f"encode {name}", total=len(texts), unit="texts", enabled=cfg.train.progress) as progress:
        cached = cache.get(key)
        if cached is not None and cached.shape[0] == len(texts):
            progress.note(f"{len(texts):,} texts from the vector cache")
            return cached
        model = TextClassifier.from_backbone(model_path, ["_"], cfg.model.pooling, 0.0, max_length,
                                             cfg.model.trust_remote_code)
        encoded = encode_texts(tokenizer, list(texts), max_length)
        loader = make_loader(encoded, int(tokenizer.pad_token_id or 0), cfg.eval.batch_size, cfg.train.seed,
                             shuffle=False)
        vectors = embed_batches(model, loader, len(encoded), precision, progress)
    cache.put(key, vectors)
    return vectors


__all__ = ["frozen_vectors"]
