"""NER batches: words -> sub-tokens with the label on each word's first sub-token (-100 elsewhere).

A sentence longer than `max_length` sub-tokens is never truncated: it is cut into overlapping
windows (`stride` sub-tokens shared by neighbours) and at prediction time each word takes the
label from the window in which it sits farthest from an edge, i.e. with the most context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fmkit.data.tasks.classification import IndexDataset, LengthGroupedBatches
from fmkit.errors import DataError

IGNORE = -100


def tag_labels(entity_types: Sequence[str]) -> list[str]:
    """O first, then B-/I- per type in sorted order: stable ids for a given set of types."""
    return ["O", *[f"{p}-{t}" for t in sorted(set(entity_types)) for p in ("B", "I")]]


@dataclass
class NerEncoded:
    input_ids: list[list[int]]     # one row per window
    labels: list[list[int]]        # same shape; IGNORE on special tokens and non-first sub-tokens
    first_word: list[list[int]]    # same shape; the word index where a word starts, else -1
    sentence: np.ndarray           # window -> sentence index
    num_words: list[int]           # per sentence

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))

    def __len__(self) -> int:
        return len(self.input_ids)


def encode_words(tokenizer: object, sentences: Sequence[Sequence[str]], max_length: int, stride: int | None = None,
                 tags: Sequence[Sequence[str]] | None = None, labels: Sequence[str] | None = None) -> NerEncoded:
    if not getattr(tokenizer, "is_fast", False):
        raise DataError("NER needs a fast (Rust) tokenizer for word alignment; the model folder needs a tokenizer.json.")
    stride = max(0, min(stride if stride is not None else max_length // 4, max_length // 2 - 2))
    label_id = {label: i for i, label in enumerate(labels or [])}
    out = NerEncoded([], [], [], np.zeros(0, dtype=np.int64), [len(s) for s in sentences])
    owners: list[int] = []
    step = 2048
    for start in range(0, len(sentences), step):
        chunk = [list(s) for s in sentences[start : start + step]]
        enc = tokenizer(chunk, is_split_into_words=True, truncation=True, max_length=max_length,  # type: ignore[operator]
                        stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True,
                        return_attention_mask=False, return_token_type_ids=False, padding=False)
        for w, ids in enumerate(enc["input_ids"]):
            sent = start + int(enc["overflow_to_sample_mapping"][w])
            word_ids = enc.word_ids(w)
            offsets = enc["offset_mapping"][w]
            first = [wid if wid is not None and off[0] == 0 else -1
                     for wid, off in zip(word_ids, offsets, strict=True)]
            # A word the tokenizer splits into pieces all starting at 0 (rare) counts once.
            for p in range(1, len(first)):
                if first[p] >= 0 and first[p] == word_ids[p - 1]:
                    first[p] = -1
            row_labels = [IGNORE] * len(ids)
            if tags is not None:
                for p, wid in enumerate(first):
                    if wid >= 0:
                        tag = tags[sent][wid]
                        if tag not in label_id:
                            raise DataError(f"tag {tag!r} does not occur in the training data; known: "
                                            f"{', '.join(label_id)}.")
                        row_labels[p] = label_id[tag]
            out.input_ids.append(list(ids))
            out.labels.append(row_labels)
            out.first_word.append(first)
            owners.append(sent)
    out.sentence = np.asarray(owners, dtype=np.int64)
    return out


class NerCollator:
    def __init__(self, encoded: NerEncoded, pad_id: int) -> None:
        self.encoded, self.pad_id = encoded, pad_id

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        rows = [self.encoded.input_ids[i] for i in indices]
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        labels = np.full((len(rows), width), IGNORE, dtype=np.int64)
        for r, i in enumerate(indices):
            n = len(rows[r])
            ids[r, :n], mask[r, :n], labels[r, :n] = rows[r], 1, self.encoded.labels[i]
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
                "labels": torch.from_numpy(labels), "index": torch.as_tensor(indices, dtype=torch.long)}


def make_ner_loader(encoded: NerEncoded, pad_id: int, batch_size: int, seed: int, shuffle: bool
                    ) -> torch.utils.data.DataLoader[int]:
    sampler = LengthGroupedBatches(encoded.lengths, batch_size, seed, shuffle=shuffle)
    return torch.utils.data.DataLoader(IndexDataset(len(encoded)), batch_sampler=sampler,
                                       collate_fn=NerCollator(encoded, pad_id))


def merge_windows(encoded: NerEncoded, window_probs: Sequence[np.ndarray], num_labels: int) -> list[np.ndarray]:
    """Per sentence, (num_words, num_labels) probabilities; each word from its most central window.

    A word with no sub-token at all (the tokenizer dropped it) gets probability 1 for label 0 (O).
    """
    out = [np.zeros((n, num_labels), dtype=np.float32) for n in encoded.num_words]
    for arr in out:
        arr[:, 0] = 1.0
    best = [np.full(n, -1, dtype=np.int64) for n in encoded.num_words]
    for w, probs in enumerate(window_probs):
        sent = int(encoded.sentence[w])
        first = encoded.first_word[w]
        n = len(first)
        for p, wid in enumerate(first):
            if wid < 0:
                continue
            centrality = min(p, n - 1 - p)
            if centrality > best[sent][wid]:
                best[sent][wid] = centrality
                out[sent][wid] = probs[p]
    return out
