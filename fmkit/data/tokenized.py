"""Texts as token ids, tokenized once (no torch: the ONNX prediction path uses this without importing it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class EncodedTexts:
    """Token ids of every text, computed once; batches are padded only to their own longest text."""

    input_ids: list[list[int]]
    labels: np.ndarray | None = None
    weights: np.ndarray | None = None  # per row in the loss (data.long_text=chunk: 1 / windows of its text)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def __len__(self) -> int:
        return len(self.input_ids)


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int, labels: np.ndarray | None = None,
                 pairs: Sequence[str] | None = None) -> EncodedTexts:
    """Tokenize with the fast tokenizer in large batches (Rust, all cores), no padding.

    `pairs`: the second text of each example; the two go in as one sequence (`[CLS] a [SEP] b [SEP]`), the
    longer one truncated first, so a cross-encoder reads both together."""
    ids: list[list[int]] = []
    step = 4096
    for start in range(0, len(texts), step):
        chunk = list(texts[start : start + step])
        second = list(pairs[start : start + step]) if pairs is not None else None
        out = tokenizer(chunk, second, truncation=True, max_length=max_length, padding=False,
                        return_attention_mask=False, return_token_type_ids=False)
        ids.extend(out["input_ids"])
    return EncodedTexts(input_ids=ids, labels=labels)


def pad_batch(seqs: list[list[int]], pad_token_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad to the batch's longest text: (input_ids, attention_mask), int64 (what inference feeds any backend)."""
    width = max(len(s) for s in seqs)
    ids = np.full((len(seqs), width), pad_token_id, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.int64)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = seq
        mask[row, : len(seq)] = 1
    return ids, mask
