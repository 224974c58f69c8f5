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
    pairs: list[str] | None = None  # the second text of each example, for text-pair data
    columns: tuple[str, ...] = ()  # the text column(s) read

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
            pairs=[self.pairs[i] for i in idx] if self.pairs is not None else None,
            columns=self.columns,
        )

    def examples(self) -> LabeledTexts:
        """Each example as one text (a pair's two texts joined): what duplicate and conflict checks compare."""
        if self.pairs is None:
            return self
        joined = [f"{a} [SEP] {b}" for a, b in zip(self.texts, self.pairs, strict=True)]
        return LabeledTexts(joined, self.labels, self.source, self.rows)

    def class_counts(self) -> dict[str, int]:
        values, counts = np.unique(np.asarray(self.labels, dtype=object), return_counts=True)
        return {str(v): int(c) for v, c in sorted(zip(values, counts, strict=True), key=lambda vc: -vc[1])}


# Column pairs that hold the two texts of a pair example, found without --text-column.
PAIR_COLUMN_NAMES = (("sentence1", "sentence2"), ("text_a", "text_b"), ("premise", "hypothesis"),
                     ("question1", "question2"), ("text1", "text2"), ("query", "passage"))


def text_columns(present: list[str], wanted: str | None) -> tuple[str, ...] | None:
    """The text column(s) `wanted` names ("a,b": a pair), or a known pair of column names; None: look for one."""
    if wanted is not None:
        names = tuple(n.strip() for n in wanted.split(","))
        if len(names) > 2 or not all(names):
            raise DataError(f"--text-column '{wanted}': give one column, or two separated by a comma (A,B).")
        return names
    lowered = {c.lower(): c for c in present}
    for first, second in PAIR_COLUMN_NAMES:
        if first in lowered and second in lowered:
            return lowered[first], lowered[second]
    return None


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
    columns = text_columns([str(c) for c in df.columns], text_column) or (None,)
    found = tuple(find_column(df, name, TEXT_COLUMN_NAMES, "text", path) for name in columns)
    text_col = found[0]
    label_col = find_column(df, label_column, LABEL_COLUMN_NAMES, "label", path)
    if label_col in found:
        raise DataError(f"{path}: the text and label columns are both '{label_col}'. Name them apart.")
    pairs = None
    if len(found) == 2:
        pairs = df[found[1]].astype(str).tolist()
        empty_pair = [i + 1 for i, t in enumerate(pairs) if not t.strip()]
        if empty_pair:
            raise DataError(f"{path}: {len(empty_pair)} row(s) have an empty text in column '{found[1]}' "
                            f"(first at row {_rows(empty_pair)}). Fill them in or remove those rows.")
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
    return LabeledTexts(texts=texts, labels=labels, source=str(path), pairs=pairs, columns=found)


def _rows(rows: list[int], limit: int = 5) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (", ..." if len(rows) > limit else "")
