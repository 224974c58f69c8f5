"""`RegressionPredictor`: texts (or text pairs) in, `{"value": x}` records out, in input order.

The model's one output is a standardised value; fmkit.json keeps the target's mean and standard deviation,
which turn it back into the target's own scale. A pair model (trained on two text columns) reads pairs:
`predict_pairs([(a, b), ...])`, `fmkit predict` on a file with both columns, `{"pairs": [...]}` over HTTP.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from fmkit.data.tokenized import encode_texts
from fmkit.errors import ModelError
from fmkit.inference.predictor import Predictor, Record


class RegressionPredictor(Predictor):
    TASK = "regression"
    mean: float = 0.0
    std: float = 1.0
    target_name: str = "value"
    pair_input: bool = False
    text_columns: list[str]

    def configure(self, meta: dict[str, Any]) -> None:
        target = meta.get("target") or {}
        self.mean, self.std = float(target.get("mean", 0.0)), float(target.get("std", 1.0))
        self.target_name = str(target.get("name", "value"))
        self.pair_input = bool(meta.get("pair_input", False))
        self.text_columns = [str(c) for c in meta.get("text_columns", [])]

    def values(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        """Predicted values on the target's scale, shape (len(texts),)."""
        if len(texts) == 0:
            return np.zeros(0, dtype=np.float64)
        if (pairs is not None) != self.pair_input:
            raise ModelError("this model reads text pairs: use predict_pairs" if self.pair_input
                             else "this model reads single texts, not pairs: use predict")
        encoded = encode_texts(self.tokenizer, [str(t) for t in texts], self.max_length,
                               pairs=[str(t) for t in pairs] if pairs is not None else None)
        return self._run(encoded, "logits")[:, 0].astype(np.float64) * self.std + self.mean

    def predict(self, texts: Sequence[str]) -> list[Record]:
        return [{"value": round(float(v), 6)} for v in self.values(texts)]

    def predict_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[Record]:
        values = self.values([a for a, _ in pairs], [b for _, b in pairs])
        return [{"value": round(float(v), 6)} for v in values]

    def predict_pairs_stream(self, pairs: Iterable[tuple[str, str]], chunk_size: int = 2048) -> Iterator[Record]:
        iterator = iter(pairs)
        while chunk := list(itertools.islice(iterator, chunk_size)):
            yield from self.predict_pairs(chunk)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        raise ModelError("a regression model predicts values, not class probabilities: use predict or values")
