"""Labelled text examples: pick the columns of a table and check them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fmkit.data.readers import LABEL_COLUMN_NAMES, TEXT_COLUMN_NAMES, read_table
from fmkit.errors import DataError

# Spellings of "no value" that spreadsheets, pandas and JSON exports write into a label cell. Training on
# them would make a class called "nan"; they mean the label is missing, like an empty cell.
MISSING_LABEL_SPELLINGS = frozenset({"nan", "null", "none", "<na>", "n/a"})


def is_missing_label(label: str) -> bool:
    return not label or label.lower() in MISSING_LABEL_SPELLINGS


@dataclass
class LabeledTexts:
    """Texts with string labels, remembering where they came from for error messages."""

    texts: list[str]
    labels: list[str]
    source: str
    rows: list[int] = field(default_factory=list)  # 1-based data row numbers in `source`

    def __post_init__(self) -> None:
        if not self.rows:
            self.rows = list(range(1, len(self.texts) + 1))

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: np.ndarray | list[int], source: str | None = None) -> LabeledTexts:
        idx = [int(i) for i in indices]
        return LabeledTexts(
            texts=[self.texts[i] for i in idx],
            labels=[self.labels[i] for i in idx],
            source=source or self.source,
            rows=[self.rows[i] for i in idx],
        )

    def class_counts(self) -> dict[str, int]:
        values, counts = np.unique(np.asarray(self.labels, dtype=object), return_counts=True)
        return {str(v): int(c) for v, c in sorted(zip(values, counts, strict=True), key=lambda vc: -vc[1])}


def find_column(df: pd.DataFrame, wanted: str | None, candidates: tuple[str, ...], role: str, path: Path) -> str:
    """Return the column to use for `role`: the one asked for, or the first known name present."""
    present = [str(c) for c in df.columns]
    flag = "--text-column" if role == "text" else "--label-column"
    if wanted is not None:
        if wanted in present:
            return wanted
        lowered = {c.lower(): c for c in present}
        if wanted.lower() in lowered:
            return lowered[wanted.lower()]
        raise DataError(
            f"{path}: no {role} column '{wanted}'. Columns present: {', '.join(present)}. "
            f"Pass one of them with {flag}."
        )
    lowered = {c.lower(): c for c in present}
    for cand in candidates:
        if cand in lowered:
            return lowered[cand]
    raise DataError(
        f"{path}: cannot tell which column holds the {role}. Columns present: {', '.join(present)}. "
        f"Name it with {flag}."
    )


def read_labeled(path: Path | str, text_column: str | None = None, label_column: str | None = None) -> LabeledTexts:
    """Read a labelled file and fail on rows that cannot be trained on (empty text or label)."""
    path = Path(path)
    df = read_table(path)
    text_col = find_column(df, text_column, TEXT_COLUMN_NAMES, "text", path)
    label_col = find_column(df, label_column, LABEL_COLUMN_NAMES, "label", path)
    if text_col == label_col:
        raise DataError(f"{path}: the text and label columns are both '{text_col}'. Name them apart.")
    texts = df[text_col].astype(str).tolist()
    labels = [str(v).strip() for v in df[label_col].tolist()]
    empty_text = [i + 1 for i, t in enumerate(texts) if not t.strip()]
    if empty_text:
        raise DataError(
            f"{path}: {len(empty_text)} row(s) have an empty text in column '{text_col}' "
            f"(first at row {_rows(empty_text)}). Fill them in or remove those rows."
        )
    empty_label = [i + 1 for i, lab in enumerate(labels) if is_missing_label(lab)]
    if empty_label:
        spelled = sorted({labels[i - 1] for i in empty_label if labels[i - 1]})
        how = f" ({', '.join(repr(s) for s in spelled)} count as missing)" if spelled else ""
        raise DataError(
            f"{path}: {len(empty_label)} row(s) have no label in column '{label_col}'{how} "
            f"(first at row {_rows(empty_label)}). Label them or remove those rows."
        )
    return LabeledTexts(texts=texts, labels=labels, source=str(path))


def _rows(rows: list[int], limit: int = 5) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (", ..." if len(rows) > limit else "")
