"""Multi-label data: any number of labels per text, read and checked before anything trains.

Three ways a file can hold the labels, all read by `read_multilabeled`:
  - one column of delimited names, `billing|refund` (separator `data.label_separator`, or found: | ; ,);
  - a JSON list per row in JSONL, `"labels": ["billing", "refund"]` (`[]`: no label applies);
  - one 0/1 column per label, named with `--label-column billing,refund,shipping`.
Labels become a multi-hot matrix (examples x labels) in `MultiLabelMap` order.
"""

from __future__ import annotations

import ast
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fmkit.data.labeled import LabeledTexts, _rows, find_column, is_missing_label
from fmkit.data.readers import LABEL_COLUMN_NAMES, TEXT_COLUMN_NAMES, read_table
from fmkit.errors import DataError

SEPARATORS = ("|", ";", ",")
MULTILABEL_COLUMN_NAMES = ("labels", "tags", "categories", "topics", "emotions", *LABEL_COLUMN_NAMES)
INDICATOR_TRUE = frozenset({"1", "1.0", "true", "yes", "y"})
INDICATOR_FALSE = frozenset({"0", "0.0", "false", "no", "n", ""})


@dataclass
class MultiLabeled:
    texts: list[str]
    labels: list[list[str]]  # per text, in the order the file gives them
    source: str
    rows: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.rows:
            self.rows = list(range(1, len(self.texts) + 1))

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int] | np.ndarray) -> MultiLabeled:
        idx = [int(i) for i in indices]
        return MultiLabeled([self.texts[i] for i in idx], [self.labels[i] for i in idx], self.source,
                            [self.rows[i] for i in idx])

    def label_counts(self) -> dict[str, int]:
        counts = Counter(label for labels in self.labels for label in labels)
        return dict(counts.most_common())

    def as_labeled(self) -> LabeledTexts:
        """Each text with its labels joined: what the label-agnostic checks (duplicates, lengths) read."""
        return LabeledTexts(self.texts, ["|".join(sorted(ls)) for ls in self.labels], self.source, self.rows)


@dataclass(frozen=True)
class MultiLabelMap:
    labels: tuple[str, ...]

    @classmethod
    def from_labels(cls, labels: Sequence[Sequence[str]]) -> MultiLabelMap:
        return cls(tuple(sorted({label for row in labels for label in row})))

    def encode(self, labels: Sequence[Sequence[str]], source: str = "data") -> np.ndarray:
        """Multi-hot float32 (examples x labels): BCE's targets."""
        index = {label: i for i, label in enumerate(self.labels)}
        out = np.zeros((len(labels), len(self.labels)), dtype=np.float32)
        for row, names in enumerate(labels):
            for name in names:
                if name not in index:
                    raise DataError(f"{source}: row {row + 1} has label {name!r}, which never occurs in the training "
                                    f"data (labels: {', '.join(self.labels[:30])}).")
                out[row, index[name]] = 1.0
        return out

    def __len__(self) -> int:
        return len(self.labels)


def read_multilabeled(path: Path | str, text_column: str | None = None, label_column: str | None = None,
                      separator: str | None = None) -> MultiLabeled:
    path = Path(path)
    df = read_table(path)
    text_col = find_column(df, text_column, TEXT_COLUMN_NAMES, "text", path)
    texts = df[text_col].astype(str).tolist()
    empty = [i + 1 for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise DataError(f"{path}: {len(empty)} row(s) have an empty text in column '{text_col}' (first at row "
                        f"{_rows(empty)}). Fill them in or remove those rows.")
    if label_column is not None and "," in label_column:
        columns = [find_column(df, name.strip(), (), "label", path) for name in label_column.split(",")]
        labels = indicator_labels(df, columns, path)
    else:
        label_col = find_column(df, label_column, MULTILABEL_COLUMN_NAMES, "label", path)
        if label_col == text_col:
            raise DataError(f"{path}: the text and label columns are both '{text_col}'. Name them apart.")
        labels = delimited_labels([str(v) for v in df[label_col].tolist()], label_col, separator, path)
    return MultiLabeled(texts, labels, str(path))


def indicator_labels(df: object, columns: list[str], path: Path) -> list[list[str]]:
    import pandas as pd

    assert isinstance(df, pd.DataFrame)
    out: list[list[str]] = [[] for _ in range(len(df))]
    for name in columns:
        for row, value in enumerate(df[name].astype(str).str.strip().str.lower().tolist()):
            if value in INDICATOR_TRUE:
                out[row].append(name)
            elif value not in INDICATOR_FALSE:
                raise DataError(f"{path}: row {row + 1} has {value!r} in label column '{name}'; one column per label "
                                "holds 1 (applies) or 0 (does not).")
    return out


def delimited_labels(cells: list[str], column: str, separator: str | None, path: Path) -> list[list[str]]:
    """Each cell's labels: a JSON (or Python) list, or names joined by one separator."""
    stripped = [c.strip() for c in cells]
    missing = [i + 1 for i, c in enumerate(stripped) if is_missing_label(c)]
    if missing:
        raise DataError(f"{path}: {len(missing)} row(s) have no labels in column '{column}' (first at row "
                        f"{_rows(missing)}). Give each row its labels; in JSONL, [] says that none applies.")
    if all(c.startswith("[") for c in stripped):
        return [_list_cell(c, i + 1, column, path) for i, c in enumerate(stripped)]
    sep = separator or _find_separator(stripped, column, path)
    return [sorted({part.strip() for part in cell.split(sep) if part.strip()}) if sep else [cell] for cell in stripped]


def _list_cell(cell: str, row: int, column: str, path: Path) -> list[str]:
    try:
        value = json.loads(cell)
    except ValueError:
        try:
            value = ast.literal_eval(cell)  # how pandas writes a JSONL list back as text: ['a', 'b']
        except (ValueError, SyntaxError):
            raise DataError(f"{path}: row {row} column '{column}' starts like a list but is not one: {cell[:60]!r}. "
                            'Write it as ["a", "b"].') from None
    if not isinstance(value, list):
        raise DataError(f"{path}: row {row} column '{column}' is {type(value).__name__}, not a list of labels.")
    return sorted({str(v).strip() for v in value if str(v).strip()})


def _find_separator(cells: list[str], column: str, path: Path) -> str | None:
    """The one separator the cells use (None: every cell is one label). Two in use is ambiguous: ask."""
    used = [sep for sep in SEPARATORS if any(sep in c for c in cells)]
    if len(used) > 1:
        example = next(c for c in cells if sum(sep in c for sep in used) > 1 or used[0] in c)
        raise DataError(f"{path}: the labels in column '{column}' contain both {' and '.join(repr(s) for s in used)} "
                        f"(e.g. {example[:60]!r}), so which one separates labels is unclear. Say it with "
                        "--set data.label_separator='|' (or write the labels as a JSON list).")
    return used[0] if used else None


def validate_multilabel(train: MultiLabeled, evaluation: MultiLabeled | None) -> list[str]:
    if len(train) < 10:
        raise DataError(f"{train.source}: {len(train)} rows; multi-label training needs at least 10.")
    warnings: list[str] = []
    counts = train.label_counts()
    if len(counts) < 2:
        raise DataError(f"{train.source}: only one label ({', '.join(counts) or 'none'}) occurs; nothing to tell apart.")
    if all(len(labels) <= 1 for labels in train.labels):
        warnings.append(f"{train.source}: no row has more than one label; --task classification fits better "
                        "(one softmax over the labels, calibrated against each other).")
    rare = [label for label, n in counts.items() if n < 3]
    if rare:
        warnings.append(f"{train.source}: {len(rare)} label(s) occur fewer than 3 times ({', '.join(rare[:8])}); "
                        "their thresholds and scores will be unreliable.")
    if evaluation is not None:
        unknown = sorted({label for labels in evaluation.labels for label in labels} - set(counts))
        if unknown:
            raise DataError(f"{evaluation.source}: label(s) {', '.join(repr(u) for u in unknown[:10])} never occur in "
                            f"the training data {train.source}; the model cannot learn them. Add training examples "
                            "or remove them from the eval file.")
    return warnings


def random_split(data: MultiLabeled, eval_fraction: float, seed: int) -> tuple[MultiLabeled, MultiLabeled]:
    order = np.random.default_rng(seed).permutation(len(data))
    n_eval = max(1, round(len(data) * eval_fraction))
    return data.subset(sorted(order[n_eval:].tolist())), data.subset(sorted(order[:n_eval].tolist()))
