"""Text classification: label maps, one-time tokenization, length-grouped batches, padding."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fmkit.data.tokenized import EncodedTexts
from fmkit.errors import DataError


@dataclass(frozen=True)
class LabelMap:
    """Stable label <-> id mapping; numeric labels sort numerically, others alphabetically."""

    labels: tuple[str, ...]

    @classmethod
    def from_labels(cls, labels: Sequence[str]) -> LabelMap:
        unique = set(labels)
        try:
            ordered = sorted(unique, key=float)
        except ValueError:
            ordered = sorted(unique)
        return cls(tuple(ordered))

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))

    def encode(self, labels: Sequence[str], source: str = "data") -> np.ndarray:
        mapping = self.label2id
        try:
            return np.fromiter((mapping[lab] for lab in labels), dtype=np.int64, count=len(labels))
        except KeyError as exc:
            raise DataError(f"{source}: unknown label {exc.args[0]!r}; known labels: {', '.join(self.labels)}.") from None

    def __len__(self) -> int:
        return len(self.labels)


def untruncated_lengths(tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
    """Token counts without truncation (for the doctor's histogram and truncation share)."""
    lengths: list[int] = []
    for start in range(0, len(texts), 4096):
        out = tokenizer(list(texts[start : start + 4096]), truncation=False, padding=False,
                        return_attention_mask=False, return_token_type_ids=False, verbose=False)
        lengths.extend(len(x) for x in out["input_ids"])
    return np.asarray(lengths, dtype=np.int64)


class LengthGroupedBatches:
    """Batch sampler: shuffled, but each batch holds texts of similar length.

    Indices are shuffled, cut into mega-chunks of `group` batches, each chunk sorted by
    length and cut into batches, and the batch order shuffled again. Padding drops to a
    few percent while every epoch still sees a different order. Deterministic in
    (seed, epoch), which is what makes resuming mid-epoch exact.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, shuffle: bool = True,
                 group_by_length: bool = True, group: int = 64) -> None:
        self.lengths = lengths
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.group_by_length = group_by_length
        self.group = group
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        n = len(self.lengths)
        if not self.shuffle:
            order = np.argsort(-self.lengths, kind="stable") if self.group_by_length else np.arange(n)
            return [order[i : i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n)
        if self.group_by_length:
            chunk = self.batch_size * self.group
            parts = []
            for start in range(0, n, chunk):
                idx = order[start : start + chunk]
                parts.append(idx[np.argsort(-self.lengths[idx], kind="stable")])
            order = np.concatenate(parts)
        batches = [order[i : i + self.batch_size].tolist() for i in range(0, n, self.batch_size)]
        perm = rng.permutation(len(batches))
        return [batches[i] for i in perm]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size


# Training pads each batch to its longest text on CPU, and up to a multiple of 8 tokens on GPUs (tensor-core
# tiles). A multiple of 8 on CPU once kept glibc from growing resident memory with every new batch shape, but
# on short texts it is 25% more tokens (SST-2: 13.4 real tokens a text, 17.2 padded to 8, 13.8 exact) and,
# measured on the 4,000-row SST-2 subset at 1 thread (issue 23), 78-81 vs 97 training examples/s on the fp32
# path at the same peak memory (1,384 vs 1,374 MB) and accuracy. The bf16 path gains little there (142.6 -> 145.6)
# and its peak grew 1,292 -> 1,589 MB: a precision-dependent multiple would keep that (not done yet).
TRAIN_PAD_MULTIPLE = 8 if torch.cuda.is_available() else 1


class PaddingCollator:
    """Turns a list of example indices into padded tensors (pad to the batch's longest text,
    rounded up to `pad_to_multiple_of`)."""

    def __init__(self, encoded: EncodedTexts, pad_token_id: int, pad_to_multiple_of: int = 1) -> None:
        self.encoded = encoded
        self.pad_token_id = pad_token_id
        self.multiple = max(1, pad_to_multiple_of)

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        seqs = [self.encoded.input_ids[i] for i in indices]
        width = -(-max(len(s) for s in seqs) // self.multiple) * self.multiple
        ids = np.full((len(seqs), width), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(seqs), width), dtype=np.int64)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
                 "index": torch.as_tensor(indices, dtype=torch.long)}
        if self.encoded.labels is not None:
            batch["labels"] = torch.from_numpy(self.encoded.labels[indices])
        if self.encoded.weights is not None:
            batch["document_weight"] = torch.from_numpy(self.encoded.weights[indices])
        return batch


class IndexDataset(torch.utils.data.Dataset[int]):
    """A dataset whose items are their own indices; the collator does the real work per batch."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def make_loader(encoded: EncodedTexts, pad_token_id: int, batch_size: int, seed: int, shuffle: bool,
                group_by_length: bool = True) -> torch.utils.data.DataLoader[int]:
    sampler = LengthGroupedBatches(encoded.lengths, batch_size, seed, shuffle=shuffle, group_by_length=group_by_length)
    # Its own generator: otherwise every iter() draws a worker seed from the global torch RNG, which shifts the
    # dropout stream and makes a resumed run diverge from an uninterrupted one.
    return torch.utils.data.DataLoader(
        IndexDataset(len(encoded)), batch_sampler=sampler,
        collate_fn=PaddingCollator(encoded, pad_token_id, TRAIN_PAD_MULTIPLE if shuffle else 1),
        generator=torch.Generator().manual_seed(seed),
    )


def class_weights(label_ids: np.ndarray, num_labels: int) -> torch.Tensor:
    """Inverse-frequency weights, normalised so the average example weighs 1."""
    counts = np.bincount(label_ids, minlength=num_labels).astype(np.float64)
    counts[counts == 0] = 1.0
    weights = len(label_ids) / (num_labels * counts)
    return torch.tensor(weights, dtype=torch.float32)
