"""`RegressionPredictor`: texts (or text pairs) in, `{"value": x}` records out, in input order.

The model's one output is a standardised value; fmkit.json keeps the target's mean and standard deviation,
which turn it back into the target's own scale. A pair model (trained on two text columns) reads pairs:
`predict_pairs([(a, b), ...])`, `fmkit predict` on a file with both columns, `{"pairs": [...]}` over HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

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

    def values(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        """Predicted values on the target's scale, shape (len(texts),)."""
        if len(texts) == 0:
            return np.zeros(0, dtype=np.float64)
        return self._run(self.encode(texts, pairs), "logits")[:, 0].astype(np.float64) * self.std + self.mean

    def predict(self, texts: Sequence[str]) -> list[Record]:
        return [{"value": round(float(v), 6)} for v in self.values(texts)]

    def predict_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[Record]:
        values = self.values([a for a, _ in pairs], [b for _, b in pairs])
        return [{"value": round(float(v), 6)} for v in values]

    def predict_proba(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        raise ModelError("a regression model predicts values, not class probabilities: use predict or values")
