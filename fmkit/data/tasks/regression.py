"""Text regression data: a number per text or per text pair, read and checked before anything trains.

    data = read_scored("sts-train.tsv", "sentence1,sentence2", "score")   # pairs: two text columns
    data = read_scored("reviews.csv", None, "rating")                      # one text column, auto-detected

Targets are standardised for training (`TargetScaling`): an MSE on a 0-5 or a 0-1000 scale then has the same
size, so one learning rate suits both, and the scaling is saved with the model to undo it at prediction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fmkit.data.labeled import _rows, find_column, is_missing_label, text_columns
from fmkit.data.readers import LABEL_COLUMN_NAMES, TEXT_COLUMN_NAMES, read_table
from fmkit.errors import DataError

TARGET_COLUMN_NAMES = ("score", "value", "rating", "similarity", *LABEL_COLUMN_NAMES)


@dataclass
class ScoredTexts:
    """Texts (and, for pair data, their second texts) with a numeric target each."""

    texts: list[str]
    targets: np.ndarray  # float64, one per text
    source: str
    pairs: list[str] | None = None  # the second text of each example (None: single texts)
    columns: tuple[str, ...] = ()  # the text column(s) read: what `fmkit predict` reads from a file too
    target_column: str = "value"
    rows: list[int] = field(default_factory=list)  # 1-based data rows in `source`

    def __post_init__(self) -> None:
        if not self.rows:
            self.rows = list(range(1, len(self.texts) + 1))

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int] | np.ndarray) -> ScoredTexts:
        idx = [int(i) for i in indices]
        return ScoredTexts([self.texts[i] for i in idx], self.targets[idx], self.source,
                           [self.pairs[i] for i in idx] if self.pairs is not None else None, self.columns,
                           self.target_column, [self.rows[i] for i in idx])


@dataclass(frozen=True)
class TargetScaling:
    """target = mean + std * model output."""

    mean: float
    std: float

    @classmethod
    def fit(cls, targets: np.ndarray) -> TargetScaling:
        return cls(float(np.mean(targets)), float(np.std(targets)) or 1.0)

    def scale(self, targets: np.ndarray) -> np.ndarray:
        return ((targets - self.mean) / self.std).astype(np.float32)

    def unscale(self, outputs: np.ndarray) -> np.ndarray:
        return outputs * self.std + self.mean


def read_scored(path: Path | str, text_column: str | None = None, target_column: str | None = None) -> ScoredTexts:
    """Read a file of texts (or text pairs) and numbers; every row that cannot train is named."""
    path = Path(path)
    df = read_table(path)
    present = [str(c) for c in df.columns]
    columns = text_columns(present, text_column)
    if columns is None:
        columns = (find_column(df, None, TEXT_COLUMN_NAMES, "text", path),)
    columns = tuple(find_column(df, name, (), "text", path) for name in columns)
    target_col = find_column(df, target_column, TARGET_COLUMN_NAMES, "label", path)
    if target_col in columns:
        raise DataError(f"{path}: column '{target_col}' is both a text and the target. Name them apart with "
                        "--text-column and --label-column.")
    sides = [df[name].astype(str).tolist() for name in columns]
    for name, texts in zip(columns, sides, strict=True):
        empty = [i + 1 for i, t in enumerate(texts) if not t.strip() or t == "nan"]
        if empty:
            raise DataError(f"{path}: {len(empty)} row(s) have an empty text in column '{name}' (first at row "
                            f"{_rows(empty)}). Fill them in or remove those rows.")
    targets = parse_targets(df[target_col].tolist(), target_col, path)
    return ScoredTexts(sides[0], targets, str(path), sides[1] if len(sides) == 2 else None, columns, target_col)


def parse_targets(values: list[object], column: str, path: Path) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    bad: list[int] = []
    not_finite: list[int] = []
    for i, value in enumerate(values):
        text = str(value).strip()
        if is_missing_label(text):  # an empty cell, NaN, null: missing, not a word that is not a number
            not_finite.append(i + 1)
            out[i] = math.nan
            continue
        try:
            number = float(text)
        except ValueError:
            bad.append(i + 1)
            continue
        if not math.isfinite(number):
            not_finite.append(i + 1)
        out[i] = number
    if bad:
        raise DataError(f"{path}: {len(bad)} row(s) have a target in column '{column}' that is not a number "
                        f"(first at row {_rows(bad)}: {values[bad[0] - 1]!r}). --task regression needs numbers; "
                        "for named classes use --task classification.")
    if not_finite:
        raise DataError(f"{path}: {len(not_finite)} row(s) have a missing or infinite target in column '{column}' "
                        f"(first at row {_rows(not_finite)}: {values[not_finite[0] - 1]!r}). Fill them in or remove "
                        "those rows.")
    return out


def validate_scored(train: ScoredTexts, evaluation: ScoredTexts | None, min_rows: int = 10) -> list[str]:
    """Refuse what cannot train (too few rows, a constant target, mismatched inputs); warn about the rest."""
    if len(train) < min_rows:
        raise DataError(f"{train.source}: {len(train)} rows; regression needs at least {min_rows}.")
    if float(np.ptp(train.targets)) == 0.0:
        raise DataError(f"{train.source}: every target is {train.targets[0]:g}; a constant has nothing to learn.")
    warnings: list[str] = []
    if evaluation is not None:
        if (evaluation.pairs is None) != (train.pairs is None):
            raise DataError(f"{evaluation.source}: reads {len(evaluation.columns)} text column(s) "
                            f"({', '.join(evaluation.columns)}) where {train.source} has {len(train.columns)} "
                            f"({', '.join(train.columns)}). Give both files the same columns.")
        low, high = float(train.targets.min()), float(train.targets.max())
        outside = int(np.sum((evaluation.targets < low) | (evaluation.targets > high)))
        if outside:
            warnings.append(f"{evaluation.source}: {outside} target(s) lie outside the training range "
                            f"[{low:g}, {high:g}]; a model rarely predicts beyond what it saw.")
    distinct = len(np.unique(train.targets))
    if distinct <= 3:
        warnings.append(f"{train.source}: the targets take only {distinct} values; if they are classes, "
                        "--task classification fits better (regression treats them as ordered and equally spaced).")
    return warnings


def random_split(data: ScoredTexts, eval_fraction: float, seed: int) -> tuple[ScoredTexts, ScoredTexts]:
    order = np.random.default_rng(seed).permutation(len(data))
    n_eval = max(1, round(len(data) * eval_fraction))
    return data.subset(sorted(order[n_eval:].tolist())), data.subset(sorted(order[:n_eval].tolist()))
