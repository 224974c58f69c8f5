"""`MultiLabelPredictor`: texts in, `{"labels": [...], "scores": {label: p}}` records out, in input order.

Scores are independent sigmoids (they do not sum to 1); `labels` are those at or above their label's
threshold, tuned for F1 when the model was trained and kept in fmkit.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fmkit.data.tokenized import EncodedTexts
from fmkit.inference.predictor import Predictor, Record


class MultiLabelPredictor(Predictor):
    TASK = "multilabel"
    thresholds: np.ndarray

    def configure(self, meta: dict[str, Any]) -> None:
        super().configure(meta)
        saved = meta.get("thresholds")
        self.thresholds = np.asarray(saved if saved else [0.5] * len(self.labels), dtype=np.float32)

    def _proba(self, encoded: EncodedTexts) -> np.ndarray:
        logits = self._run(encoded, "logits")
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -60, 60)))  # clipped: no overflow warning on extreme logits

    def _record(self, row: np.ndarray) -> Record:
        return {"labels": [label for label, p, t in zip(self.labels, row, self.thresholds, strict=True) if p >= t],
                "scores": {label: round(float(p), 6) for label, p in zip(self.labels, row, strict=True)}}

    def predict(self, texts: Sequence[str]) -> list[Record]:
        return [self._record(row) for row in self.predict_proba(texts)]
