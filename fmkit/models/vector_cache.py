"""Pooled text vectors of a frozen encoder, computed once and cached on disk.

The linear probe, the head phase of `fewshot`, the head initialisation of `full`/`lora`
and `auto`'s estimates all need the same vectors; computing them is the expensive part
(one forward pass over every text), so they are cached keyed by model + texts + settings.
The cache lives in $FMKIT_CACHE_DIR/embeddings (default ~/.cache/fmkit/embeddings).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmkit.models.classifier import TextClassifier
from fmkit.models.precision import ResolvedPrecision, bf16_linear_weights, inference_autocast
from fmkit.utils.env import fmkit_cache
from fmkit.utils.io import atomic_write_bytes
from fmkit.utils.progress import Progress


def cache_dir() -> Path:
    return fmkit_cache() / "embeddings"


def model_fingerprint(model_path: Path) -> str:
    """Identity of a model folder without hashing 90 MB of weights: path, size and mtime of its files."""
    parts = [str(Path(model_path).resolve())]
    for name in ("config.json", "model.safetensors", "model.safetensors.index.json"):
        file = Path(model_path) / name
        if file.is_file():
            stat = file.stat()
            parts.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def texts_fingerprint(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def cache_key(model_path: Path, texts: Sequence[str], max_length: int, pooling: str, precision: str = "fp32",
              segments: bool = False) -> str:
    """`segments`: text pairs read with BERT's segment embeddings (other vectors than without them)."""
    return (f"{model_fingerprint(model_path)}-{texts_fingerprint(texts)}-{max_length}-{pooling}-{precision}"
            + ("-segments" if segments else ""))


@torch.inference_mode()
def embed_batches(model: TextClassifier, loader: Any, num_examples: int,
                  precision: ResolvedPrecision = "fp32", progress: Progress | None = None) -> torch.Tensor:
    """Pooled vectors (before the head) for every example, in input order.

    `precision="bf16"` runs the encoder under bf16 autocast; the vectors are returned as float32 either way.
    `progress` is advanced by each batch's number of texts.
    """
    was_training = model.training
    model.eval()
    out = torch.empty(num_examples, int(model.encoder.config.hidden_size))
    device_type = next(model.parameters()).device.type
    with bf16_linear_weights(model, enabled=precision == "bf16"):
        for batch in loader:
            with inference_autocast(precision, device_type):
                vectors = model.embed(batch["input_ids"], batch["attention_mask"])
            out[batch["index"]] = vectors.float().cpu()
            if progress is not None:
                progress.update(int(batch["index"].shape[0]))
    model.train(was_training)
    return out


class EmbeddingCache:
    """`get(key)` / `put(key, vectors)` of float32 matrices stored as .npy files (written atomically)."""

    def __init__(self, directory: Path | None = None, enabled: bool = True) -> None:
        self.directory = Path(directory) if directory is not None else cache_dir()
        self.enabled = enabled

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.npy"

    def get(self, key: str) -> torch.Tensor | None:
        path = self.path(key)
        if not self.enabled or not path.is_file():
            return None
        try:
            return torch.from_numpy(np.load(path, allow_pickle=False))
        except (OSError, ValueError):
            return None  # a damaged cache entry is recomputed, never trusted

    def put(self, key: str, vectors: torch.Tensor) -> None:
        if not self.enabled:
            return
        buffer = io.BytesIO()
        np.save(buffer, vectors.numpy().astype(np.float32), allow_pickle=False)
        # A read-only home must not fail a run: the cache is only a speed-up.
        with contextlib.suppress(OSError):
            atomic_write_bytes(self.path(key), buffer.getvalue())


__all__ = ["EmbeddingCache", "cache_key", "embed_batches", "model_fingerprint", "texts_fingerprint"]
