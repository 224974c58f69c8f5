"""Stream (id, text, metadata) records from a file of documents, for embedding and indexing.

Plain text or '-' (stdin): one text per line, the id is the 0-based line number.
JSONL: one object per line, read lazily. CSV/TSV/Parquet: read as a table of strings.
The id comes from an `id` column (or --id-column) when there is one, else the row number;
every other column is kept as metadata, so search hits come back with their text and fields.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmkit.data.readers import TEXT_COLUMN_NAMES, check_readable, check_text_file, read_table
from fmkit.errors import DataError

ID_COLUMN_NAMES = ("id", "doc_id", "docid", "_id", "uid", "key", "pid")


@dataclass(frozen=True)
class DocRecord:
    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def iter_records(source: str | Path, text_column: str | None = None, id_column: str | None = None,
                 unique_ids: bool = True) -> Iterator[DocRecord]:
    """`unique_ids` False: an id may repeat (several questions of one FAQ answer share its id)."""
    seen: set[str] | None = set() if unique_ids else None
    if str(source) == "-":
        yield from _from_lines(sys.stdin, Path("<stdin>"), text_column, id_column, seen)
        return
    path = Path(source)
    check_readable(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".parquet"):
        df = read_table(path)
        names = [str(c) for c in df.columns]
        text_col = str(_column(names, text_column, TEXT_COLUMN_NAMES, "text", path, required=True))
        id_col = _column(names, id_column, ID_COLUMN_NAMES, "id", path, required=False)
        for row, values in enumerate(df.itertuples(index=False, name=None)):
            record = dict(zip(names, values, strict=True))
            item_id = str(record.pop(id_col)) if id_col else str(row)
            _check_unique(item_id, seen, path, row + 2)  # +2: 1-based and the header line
            yield DocRecord(item_id, str(record[text_col]), record)
        return
    check_text_file(path)
    with open(path, encoding="utf-8-sig") as fh:
        try:
            yield from _from_lines(fh, path, text_column, id_column, seen)
        except UnicodeDecodeError:
            raise DataError(f"{path}: not valid UTF-8. Re-save the file as UTF-8.") from None


def _from_lines(stream: Iterable[str], path: Path, text_column: str | None, id_column: str | None,
                seen: set[str] | None) -> Iterator[DocRecord]:
    row = 0
    for lineno, raw in enumerate(stream, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue  # blank lines are not documents
        if line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path} line {lineno}: not valid JSON ({exc.msg}).") from None
            names = list(obj)
            text_col = str(_column(names, text_column, TEXT_COLUMN_NAMES, "text", path, required=True, lineno=lineno))
            id_col = _column(names, id_column, ID_COLUMN_NAMES, "id", path, required=False, lineno=lineno)
            item_id = str(obj.pop(id_col)) if id_col else str(row)
            text = obj.get(text_col)
            if not isinstance(text, str):
                raise DataError(f"{path} line {lineno}: '{text_col}' is {type(text).__name__}, not a string.")
            _check_unique(item_id, seen, path, lineno)
            yield DocRecord(item_id, text, obj)
        else:
            item_id = str(row)
            _check_unique(item_id, seen, path, lineno)
            yield DocRecord(item_id, line, {"text": line})
        row += 1


def _column(names: list[str], wanted: str | None, candidates: tuple[str, ...], role: str, path: Path,
            required: bool, lineno: int | None = None) -> str | None:
    where = f" line {lineno}" if lineno else ""
    if wanted is not None:
        if wanted not in names:
            raise DataError(f"{path}{where}: no {role} column '{wanted}'; columns present: {', '.join(names)}.")
        return wanted
    lowered = {n.lower(): n for n in names}
    for cand in candidates:
        if cand in lowered:
            return lowered[cand]
    if required:
        raise DataError(f"{path}{where}: cannot tell which column holds the {role}; columns present: "
                        f"{', '.join(names)}. Name it with --{role}-column.")
    return None


def _check_unique(item_id: str, seen: set[str] | None, path: Path, lineno: int) -> None:
    if seen is None:
        return
    if item_id in seen:
        raise DataError(f"{path} line {lineno}: duplicate id '{item_id}'; ids must be unique (for questions that "
                        "share one answer, name the answer-id column with `fmkit index build --group-column`).")
    seen.add(item_id)


@dataclass(frozen=True)
class RelevanceQuery:
    query: str
    relevant: frozenset[str]


RELEVANT_COLUMN_NAMES = ("relevant", "relevant_ids", "positives", "answer_ids", "ids", "id", "label", "intent")


def read_relevance(path: Path | str, query_column: str | None = None, relevant_column: str | None = None
                   ) -> list[RelevanceQuery]:
    """A (query, relevant ids) file: JSONL with a list or string of ids, or CSV/TSV with ids split by '|' or ';'."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found.")
    rows: list[tuple[int, dict[str, Any]]] = []
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        check_text_file(path)
        with open(path, encoding="utf-8-sig") as fh:
            for lineno, line in enumerate(fh, start=1):
                if line.strip():
                    try:
                        rows.append((lineno, json.loads(line)))
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{path} line {lineno}: not valid JSON ({exc.msg}).") from None
    else:
        df = read_table(path)
        rows = [(i + 2, dict(zip([str(c) for c in df.columns], values, strict=True)))
                for i, values in enumerate(df.itertuples(index=False, name=None))]
    if not rows:
        raise DataError(f"{path}: no queries. Give one (query, relevant ids) row per line.")
    out: list[RelevanceQuery] = []
    for lineno, obj in rows:
        names = list(obj)
        q_col = str(_column(names, query_column, ("query", "question", "text", "utterance"), "query", path, True, lineno))
        r_col = str(_column(names, relevant_column, RELEVANT_COLUMN_NAMES, "relevant", path, True, lineno))
        value = obj[r_col]
        if isinstance(value, list):
            ids = [str(v) for v in value]
        else:
            text = str(value)
            ids = [p.strip() for p in text.replace(";", "|").split("|")] if text.strip() else []
        ids = [i for i in ids if i]
        if not ids:
            raise DataError(f"{path} line {lineno}: query without relevant ids; every query needs at least one.")
        out.append(RelevanceQuery(str(obj[q_col]), frozenset(ids)))
    return out
