"""`Embedder`: texts -> float32, L2-normalised sentence vectors (the same as sentence-transformers).

Loads a bundled alias ('all-MiniLM-L6-v2'), any local Hugging Face folder (sentence-transformers
folders keep their declared pooling and max length), a model saved by fmkit (classifier, NER or
embedding model: the fine-tuned encoder in it is used), or a run directory (its model/).

    emb = Embedder.load("all-MiniLM-L6-v2")
    vectors = emb.embed(["first text", "second text"])      # shape (2, 384), rows in input order
    for block in emb.embed_stream(open("big.txt"), chunk=4096): ...
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmkit.errors import ModelError
from fmkit.models.backbone import load_tokenizer, resolve_model_path
from fmkit.models.sentence_encoder import SentenceEncoder
from fmkit.utils.progress import Progress


class Embedder:
    """A loaded sentence encoder in eval mode; thread-compatible for reads, not for concurrent calls."""

    def __init__(self, model: SentenceEncoder, tokenizer: Any, batch_size: int = 64, path: Path | None = None,
                 name: str | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.path = path
        self.name = name or (str(path) if path else "embedder")

    @classmethod
    def load(cls, name_or_dir: str | Path, batch_size: int = 64, max_length: int | None = None,
             trust_remote_code: bool = False) -> Embedder:
        path = model_folder(name_or_dir)
        model = SentenceEncoder.from_backbone(path, max_length=max_length, trust_remote_code=trust_remote_code)
        return cls(model, load_tokenizer(path, trust_remote_code), batch_size=batch_size, path=path,
                   name=str(name_or_dir))

    @property
    def dim(self) -> int:
        return self.model.dim

    @property
    def max_length(self) -> int:
        return self.model.max_length

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Vectors of shape (len(texts), dim), float32, unit length, row i for texts[i]; `progress` counts texts."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if len(texts) == 0:
            return out
        ids = self.tokenizer([str(t) for t in texts], truncation=True, max_length=self.max_length, padding=False,
                             return_attention_mask=False, return_token_type_ids=False)["input_ids"]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        # Longest first: each batch is padded only to its own longest text, memory peaks at once.
        order = np.argsort(-lengths, kind="stable")
        pad = self.tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                width = int(lengths[rows[0]])
                input_ids = np.full((len(rows), width), pad, dtype=np.int64)
                mask = np.zeros((len(rows), width), dtype=np.int64)
                for r, i in enumerate(rows):
                    input_ids[r, : lengths[i]] = ids[i]
                    mask[r, : lengths[i]] = 1
                vectors = self.model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(mask))
                out[rows] = vectors.float().numpy()
                if progress is not None:
                    progress.update(len(rows))
        return out

    def embed_stream(self, texts: Iterable[str], chunk: int = 4096,
                     progress: Progress | None = None) -> Iterator[np.ndarray]:
        """Constant memory on any number of texts: yields one (n, dim) block per `chunk` texts, in order."""
        iterator = iter(texts)
        while block := list(itertools.islice(iterator, chunk)):
            yield self.embed(block, progress)

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    # The Predictor protocol (`fmkit predict`, the server): one {"embedding": [...]} record per text.
    def predict(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        return [{"embedding": [round(float(x), 7) for x in row]} for row in self.embed(texts)]

    def predict_stream(self, texts: Iterable[str], chunk_size: int = 4096) -> Iterator[dict[str, Any]]:
        for block in self.embed_stream(texts, chunk=chunk_size):
            yield from ({"embedding": [round(float(x), 7) for x in row]} for row in block)


def model_folder(name_or_dir: str | Path) -> Path:
    """The folder holding the encoder weights for a name, model folder or run directory."""
    path = Path(str(name_or_dir)).expanduser()
    if path.is_dir() and not (path / "config.json").is_file() and (path / "model" / "config.json").is_file():
        path = path / "model"  # a run directory
        return path
    resolved = resolve_model_path(name_or_dir)
    if not resolved.is_dir():
        raise ModelError(f"Model folder not found: {resolved}.")
    return resolved
