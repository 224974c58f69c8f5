"""FAQ-shaped documents for a grouped index: several questions share one answer id, and the answer text is
indexed once more as a field of its own.

Which column holds the answer id (the group): `--group-column`, else the first column named one of
GROUP_COLUMN_NAMES. Two layouts are accepted:
  id,question,answer           the id column IS the answer id and repeats: rows get ids "a22#1", "a22#2"...
  id,answer_id,question,answer  a row id of its own, which must stay unique (a typo would silently merge
                                two rows), and the answer id in its own column
With an answer column (`--answer-column`, else one named answer/response/reply), the first row of each
group also yields an "a22#answer" record holding the answer text, so a query phrased like the answer
finds it too; `field` in the metadata says which ("question" or "answer").
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fmkit.data.records import DocRecord, iter_records
from fmkit.errors import DataError

GROUP_COLUMN_NAMES = ("answer_id", "faq_id", "group_id", "group")
ANSWER_COLUMN_NAMES = ("answer", "response", "reply")


def detect_group_column(source: str | Path, text_column: str | None, id_column: str | None) -> str | None:
    """The answer-id column named like GROUP_COLUMN_NAMES in the file's first record, if any."""
    first = next(iter_records(source, text_column, id_column, unique_ids=False), None)
    if first is None:
        return None
    lowered = {str(k).lower(): str(k) for k in first.metadata}
    return next((lowered[name] for name in GROUP_COLUMN_NAMES if name in lowered), None)


def grouped_records(source: str | Path, group_column: str, text_column: str | None = None,
                    id_column: str | None = None, answer_column: str | None = None,
                    answers: bool = True) -> Iterator[DocRecord]:
    """Question records (and one answer record per group) with the group in metadata[group_column]."""
    seen_rows: set[str] = set()
    seen_groups: dict[str, int] = {}
    answer_col: str | None = None
    for n, record in enumerate(iter_records(source, text_column, id_column, unique_ids=False), start=1):
        metadata: dict[str, Any] = dict(record.metadata)
        if group_column in metadata:  # a column of its own: the record's id is a row id and must stay unique
            group, row_id = _group_value(metadata[group_column], source, n), record.id
            if row_id in seen_rows:
                raise DataError(f"{source}: row {n}: duplicate row id '{row_id}'; row ids must be unique (the answer "
                                f"id goes in '{group_column}', which may repeat).")
        else:  # the id column is the group: number the rows within it
            group = record.id
            row_id = f"{group}#{seen_groups.get(group, 0) + 1}"
        seen_rows.add(row_id)
        metadata[group_column] = group
        if answer_col is None and answers:
            answer_col = _answer_column(metadata, answer_column, source)
        first_of_group = group not in seen_groups
        seen_groups[group] = seen_groups.get(group, 0) + 1
        yield DocRecord(row_id, record.text, {**metadata, "field": "question"})
        if answers and answer_col and first_of_group and str(metadata.get(answer_col) or "").strip():
            yield DocRecord(f"{group}#answer", str(metadata[answer_col]), {**metadata, "field": "answer"})


def _group_value(value: Any, source: str | Path, n: int) -> str:
    text = "" if value is None else str(value).strip()
    if not text or text.lower() == "nan":
        raise DataError(f"{source}: row {n} has no answer id; every question needs the id of its answer.")
    return text


def _answer_column(metadata: dict[str, Any], wanted: str | None, source: str | Path) -> str:
    if wanted is not None:
        if wanted not in metadata:
            raise DataError(f"{source}: no answer column '{wanted}'; columns present: {', '.join(map(str, metadata))}.")
        return wanted
    lowered = {str(k).lower(): str(k) for k in metadata}
    return next((lowered[name] for name in ANSWER_COLUMN_NAMES if name in lowered), "")
