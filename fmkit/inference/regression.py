"""`RegressionPredictor`: texts (or text pairs) in, `{"value": x}` records out, in input order.

The model's one output is a standardised value; fmkit.json keeps the target's mean and standard deviation,
which turn it back into the target's own scale. A pair model (trained on two text columns) reads pairs:
`predict_pairs([(a, b), ...])`, `fmkit predict` on a file with both columns, `{"pairs": [...]}` over HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
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

    def configure(self, meta: dict[str, Any]) -> None:
        super().configure(meta)
        target = meta.get("target") or {}
        self.mean, self.std = float(target.get("mean", 0.0)), float(target.get("std", 1.0))
        self.target_name = str(target.get("name", "value"))
        # A bi-encoder pair model predicts from the cosine of the two texts' vectors, rescaled to the target range.
        self.cosine_range = meta.get("cosine_range") if meta.get("pair_encoding") == "bi" else None

    def values(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        """Predicted values on the target's scale, shape (len(texts),)."""
        if len(texts) == 0:
            return np.zeros(0, dtype=np.float64)
        if self.cosine_range is not None and pairs is not None:
            first, second = (self._run(encode_texts(self.tokenizer, [str(t) for t in side], self.max_length),
                                       "embedding").astype(np.float64) for side in (texts, pairs))
            cos = np.sum(first * second, 1) / np.maximum(
                np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1), 1e-12)
            low, high = float(self.cosine_range["low"]), float(self.cosine_range["high"])
            return low + (high - low) * cos
        return self._run(self.encode(texts, pairs), "logits")[:, 0].astype(np.float64) * self.std + self.mean

    def predict(self, texts: Sequence[str]) -> list[Record]:
        return [{"value": round(float(v), 6)} for v in self.values(texts)]

    def predict_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[Record]:
        values = self.values([a for a, _ in pairs], [b for _, b in pairs])
        return [{"value": round(float(v), 6)} for v in values]

    def predict_proba(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        raise ModelError("a regression model predicts values, not class probabilities: use predict or values")
