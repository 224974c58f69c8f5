"""Deterministic stand-ins for the apps' models in fast tests: no network, no torch forward passes."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from fmkit.apps.bm25 import tokenize


class BagOfWordsEmbedder:
    """Unit vectors of hashed word counts: texts sharing words are similar, like a (very) small encoder."""

    dim = 128

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for token in tokenize(text):
                out[i, zlib.crc32(token.encode()) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


class KeywordSentiment:
    """A 'classifier' whose Bearish probability is high when a negative word is present."""

    labels = ("Bearish", "Bullish", "Neutral")
    NEG = frozenset({"fall", "drop", "loss", "plunge"})
    POS = frozenset({"jump", "rise", "profit", "beat"})

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            words = set(text.lower().split())
            if words & self.NEG:
                rows.append([0.8, 0.1, 0.1])
            elif words & self.POS:
                rows.append([0.1, 0.8, 0.1])
            else:
                rows.append([0.1, 0.1, 0.8])
        return np.array(rows, dtype=np.float32)
