"""(query, positive[, negative]) pairs for embedding fine-tuning: read, validate, split, batch.

Columns are found by name (query/anchor/question..., positive/answer/document..., negative...)
or given explicitly. A batch holds the queries as input_ids/attention_mask, the positives as
pos_*, the hard negatives as neg_*, and `_pos_group`: equal numbers mark equal positive texts,
so the loss does not push a query away from its own answer appearing twice in one batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fmkit.data.readers import read_table
from fmkit.data.tasks.classification import IndexDataset, LengthGroupedBatches
from fmkit.errors import DataError

QUERY_NAMES = ("query", "anchor", "question", "sentence1", "text", "utterance")
POSITIVE_NAMES = ("positive", "pos", "answer", "document", "passage", "sentence2", "target")
NEGATIVE_NAMES = ("negative", "neg", "hard_negative", "negative_passage")


@dataclass
class PairData:
    queries: list[str]
    positives: list[str]
    negatives: list[str] | None
    source: str

    def __len__(self) -> int:
        return len(self.queries)

    def subset(self, rows: Sequence[int]) -> PairData:
        neg = [self.negatives[i] for i in rows] if self.negatives is not None else None
        return PairData([self.queries[i] for i in rows], [self.positives[i] for i in rows], neg, self.source)


def _find(names: list[str], wanted: str | None, candidates: tuple[str, ...], role: str, path: Path,
          required: bool) -> str | None:
    if wanted:
        if wanted not in names:
            raise DataError(f"{path}: no {role} column '{wanted}'; columns present: {', '.join(names)}.")
        return wanted
    lowered = {n.lower(): n for n in names}
    found = next((lowered[c] for c in candidates if c in lowered), None)
    if found is None and required:
        raise DataError(f"{path}: cannot tell which column holds the {role} texts; columns present: {', '.join(names)}. "
                        f"Name the columns query/positive[/negative] or pass --text-column (query) and "
                        f"--label-column (positive).")
    return found


def read_pairs(path: Path | str, query_column: str | None = None, positive_column: str | None = None,
               negative_column: str | None = None) -> PairData:
    path = Path(path)
    df = read_table(path)
    names = [str(c) for c in df.columns]
    q_col = str(_find(names, query_column, QUERY_NAMES, "query", path, True))
    p_col = str(_find(names, positive_column, tuple(n for n in POSITIVE_NAMES if n != q_col), "positive", path, True))
    n_col = _find(names, negative_column, NEGATIVE_NAMES, "negative", path, False)
    if q_col == p_col:
        raise DataError(f"{path}: the query and positive columns are both '{q_col}'; name two different columns.")
    queries = [str(v) for v in df[q_col]]
    positives = [str(v) for v in df[p_col]]
    negatives = [str(v) for v in df[n_col]] if n_col else None
    line_offset = 1 if path.suffix.lower() in (".jsonl", ".json", ".ndjson", ".parquet") else 2
    for column, values in ((q_col, queries), (p_col, positives), *([(n_col, negatives)] if n_col else [])):
        empty = [i + line_offset for i, v in enumerate(values or []) if not v.strip()]
        if empty:
            shown = ", ".join(map(str, empty[:5])) + (" ..." if len(empty) > 5 else "")
            raise DataError(f"{path}: empty '{column}' on line(s) {shown}; every pair needs both texts.")
    if len(queries) < 2:
        raise DataError(f"{path}: {len(queries)} pair(s); in-batch negatives need at least 2 pairs.")
    return PairData(queries, positives, negatives, str(path))


def group_split(data: PairData, fraction: float, seed: int) -> tuple[PairData, PairData]:
    """Hold out whole positive groups, so no eval answer was seen in training."""
    groups = sorted(set(data.positives))
    if len(groups) < 2:
        raise DataError(f"{data.source}: all pairs share one positive; give an --eval file or more distinct positives.")
    rng = np.random.default_rng(seed)
    n_eval = min(len(groups) - 1, max(1, round(len(groups) * fraction)))
    held = set(rng.permutation(groups)[:n_eval].tolist())
    train_rows = [i for i, p in enumerate(data.positives) if p not in held]
    eval_rows = [i for i, p in enumerate(data.positives) if p in held]
    return data.subset(train_rows), data.subset(eval_rows)


class PairCollator:
    def __init__(self, columns: dict[str, list[list[int]]], groups: np.ndarray, pad_id: int) -> None:
        self.columns, self.groups, self.pad_id = columns, groups, pad_id

    def _pad(self, seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        ids = np.full((len(seqs), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(seqs), width), dtype=np.int64)
        for row, seq in enumerate(seqs):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return torch.from_numpy(ids), torch.from_numpy(mask)

    def __call__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        batch: dict[str, torch.Tensor] = {"index": torch.as_tensor(indices, dtype=torch.long),
                                          "_pos_group": torch.from_numpy(self.groups[indices])}
        for prefix, seqs in self.columns.items():
            ids, mask = self._pad([seqs[i] for i in indices])
            batch[f"{prefix}input_ids"], batch[f"{prefix}attention_mask"] = ids, mask
        return batch


def make_pair_batches(tokenizer: object, data: PairData, max_length: int, batch_size: int, seed: int
                      ) -> torch.utils.data.DataLoader[int]:
    """Shuffled batches of similar-length queries; each text tokenized once."""
    def encode(texts: list[str]) -> list[list[int]]:
        out = tokenizer(texts, truncation=True, max_length=max_length, padding=False,  # type: ignore[operator]
                        return_attention_mask=False, return_token_type_ids=False)
        return list(out["input_ids"])

    columns = {"": encode(data.queries), "pos_": encode(data.positives)}
    if data.negatives is not None:
        columns["neg_"] = encode(data.negatives)
    _, groups = np.unique(np.asarray(data.positives, dtype=object), return_inverse=True)
    lengths = np.fromiter((len(s) for s in columns["pos_"]), dtype=np.int64, count=len(data))
    sampler = LengthGroupedBatches(lengths, batch_size, seed, shuffle=True)
    pad_id = int(getattr(tokenizer, "pad_token_id", 0) or 0)
    return torch.utils.data.DataLoader(IndexDataset(len(data)), batch_sampler=sampler,
                                       collate_fn=PairCollator(columns, groups.astype(np.int64), pad_id))
