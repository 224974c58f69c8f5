"""`Predictor`: the one object behind `fmkit.load()`, `fmkit predict`, `fmkit eval` and the server."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmkit.data.tasks.classification import EncodedTexts, encode_texts, make_loader
from fmkit.models.backbone import load_tokenizer
from fmkit.models.classifier import TextClassifier, predict_logits

Record = dict[str, Any]


class Predictor:
    """A loaded text classifier: texts in, `{"label", "scores"}` records out, always in input order."""

    def __init__(self, model: TextClassifier, tokenizer: Any, batch_size: int = 64, path: Path | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.path = path
        self.labels: list[str] = list(model.labels)
        self.max_length: int = model.max_length

    @classmethod
    def load(cls, path: Path | str, batch_size: int = 64) -> Predictor:
        path = Path(path)
        if (path / "model").is_dir() and not (path / "fmkit.json").is_file():
            path = path / "model"  # accept a run directory too
        model = TextClassifier.from_pretrained(path)
        return cls(model, load_tokenizer(path), batch_size=batch_size, path=path)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape (len(texts), num_labels)."""
        if len(texts) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        encoded = encode_texts(self.tokenizer, [str(t) for t in texts], self.max_length)
        return self._proba(encoded)

    def _proba(self, encoded: EncodedTexts) -> np.ndarray:
        # Longest first, so padding is minimal and memory peaks early; outputs go back to input order.
        loader = make_loader(encoded, self.tokenizer.pad_token_id or 0, self.batch_size, seed=0, shuffle=False)
        logits = predict_logits(self.model, loader, len(encoded))
        return torch.softmax(logits, dim=-1).numpy()

    def predict(self, texts: Sequence[str]) -> list[Record]:
        probs = self.predict_proba(texts)
        return [self._record(row) for row in probs]

    def predict_stream(self, texts: Iterable[str], chunk_size: int = 2048) -> Iterator[Record]:
        """Constant memory on any number of texts: work through fixed-size chunks."""
        iterator = iter(texts)
        while chunk := list(itertools.islice(iterator, chunk_size)):
            yield from self.predict(chunk)

    def _record(self, row: np.ndarray) -> Record:
        best = int(row.argmax())
        return {"label": self.labels[best],
                "scores": {label: round(float(p), 6) for label, p in zip(self.labels, row, strict=True)}}


def load(path: Path | str) -> Predictor:
    """Load a model saved by fmkit (its folder or its run directory)."""
    return Predictor.load(path)
