"""Batches for strategies that do not feed plain labelled texts: contrastive pairs and cached vectors.

Pairs (the `fewshot` body phase): for every labelled example, half of its pairs are
positive (another example of its class, target 1) and half negative (target 0). The
negative partner's class is drawn uniformly among the *other classes*, then an example
in it, so with 150 classes every class still gets its share and positives do not drown
in negatives (drawing partners uniformly from all examples would make ~99% negatives).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fmkit.data.tasks.classification import IndexDataset, LengthGroupedBatches
from fmkit.data.tokenized import EncodedTexts


@dataclass(frozen=True)
class Pairs:
    first: np.ndarray   # example index of A
    second: np.ndarray  # example index of B
    target: np.ndarray  # 1.0 same class, 0.0 different

    def __len__(self) -> int:
        return len(self.first)


# SetFit's default sampling pairs every example with every other, oversampling the same-class pairs to as
# many as the different-class ones: (classes - 1) x (examples per class) pairs per example. fmkit draws that
# many while it is small (SST-2 8/class: 8; AG News 8/class: 24) and caps it: SetFit's total grows with the
# square of the data (banking77 at 8 per class: 608 per example, 375,000 pairs).
MIN_PAIRS_PER_EXAMPLE, MAX_PAIRS_PER_EXAMPLE = 8, 24


def default_pairs_per_example(label_ids: np.ndarray) -> int:
    labels = np.asarray(label_ids)
    n, classes = len(labels), len(np.unique(labels))
    setfit_count = round(n * (classes - 1) / max(classes, 1))
    return int(min(MAX_PAIRS_PER_EXAMPLE, max(MIN_PAIRS_PER_EXAMPLE, setfit_count)))


def pairs_per_example(requested: int | None, label_ids: np.ndarray) -> int:
    """strategy.fewshot.pairs_per_example when set, else SetFit's count within the bounds above."""
    return requested or default_pairs_per_example(label_ids)


def sample_pairs(label_ids: np.ndarray, pairs_per_example: int, seed: int) -> Pairs:
    """Balanced positive/negative pairs, deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    label_ids = np.asarray(label_ids)
    classes = np.unique(label_ids)
    members = {int(c): np.flatnonzero(label_ids == c) for c in classes}
    n_pos = (pairs_per_example + 1) // 2
    n_neg = pairs_per_example // 2 if len(classes) > 1 else 0
    first: list[int] = []
    second: list[int] = []
    target: list[float] = []
    for i, label in enumerate(label_ids.tolist()):
        same = members[label][members[label] != i]
        if len(same):  # a class with one example has no positive partner; its negatives still teach
            for j in rng.choice(same, size=n_pos, replace=len(same) < n_pos):
                first.append(i)
                second.append(int(j))
                target.append(1.0)
        if n_neg:
            others = classes[classes != label]
            for c in rng.choice(others, size=n_neg, replace=True):
                first.append(i)
                second.append(int(rng.choice(members[int(c)])))
                target.append(0.0)
    return Pairs(np.asarray(first, dtype=np.int64), np.asarray(second, dtype=np.int64),
                 np.asarray(target, dtype=np.float32))


class PairCollator:
    """Pair indices -> one padded batch of 2B texts (A's then B's) and B float targets."""

    def __init__(self, encoded: EncodedTexts, pairs: Pairs, pad_token_id: int) -> None:
        self.encoded = encoded
        self.pairs = pairs
        self.pad_token_id = pad_token_id

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        rows = [*self.pairs.first[indices].tolist(), *self.pairs.second[indices].tolist()]
        seqs = [self.encoded.input_ids[r] for r in rows]
        width = max(len(s) for s in seqs)
        ids = np.full((len(seqs), width), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(seqs), width), dtype=np.int64)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
                "labels": torch.from_numpy(self.pairs.target[indices]),
                "index": torch.as_tensor(indices, dtype=torch.long)}


def make_pair_loader(encoded: EncodedTexts, pairs: Pairs, pad_token_id: int, batch_size: int,
                     seed: int) -> torch.utils.data.DataLoader[int]:
    lengths = encoded.lengths
    pair_lengths = np.maximum(lengths[pairs.first], lengths[pairs.second])
    sampler = LengthGroupedBatches(pair_lengths, batch_size, seed, shuffle=True, group_by_length=True)
    return torch.utils.data.DataLoader(IndexDataset(len(pairs)), batch_sampler=sampler,
                                       collate_fn=PairCollator(encoded, pairs, pad_token_id))


class VectorCollator:
    """Indices -> {"embeddings", "labels", "index"} from a cached matrix (the head-only strategies)."""

    def __init__(self, vectors: torch.Tensor, labels: np.ndarray | None) -> None:
        self.vectors = vectors
        self.labels = torch.from_numpy(np.asarray(labels, dtype=np.int64)) if labels is not None else None

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        batch = {"embeddings": self.vectors[index], "index": index}
        if self.labels is not None:
            batch["labels"] = self.labels[index]
        return batch


def make_vector_loader(vectors: torch.Tensor, labels: np.ndarray | None, batch_size: int, seed: int,
                       shuffle: bool) -> torch.utils.data.DataLoader[int]:
    sampler = LengthGroupedBatches(np.ones(len(vectors), dtype=np.int64), batch_size, seed, shuffle=shuffle,
                                   group_by_length=False)
    return torch.utils.data.DataLoader(IndexDataset(len(vectors)), batch_sampler=sampler,
                                       collate_fn=VectorCollator(vectors, labels))


__all__ = ["PairCollator", "Pairs", "VectorCollator", "default_pairs_per_example", "make_pair_loader", "make_vector_loader",
           "pairs_per_example", "sample_pairs"]
