"""What `fmkit predict` reads and prints: each output line carries its input (text, or the id column).

Inputs: blank texts are skipped (and counted), never predicted. Outputs: JSON lines (the default when
writing to a file or a pipe) or a table, one readable line per input, for a person at a terminal;
`--fields` keeps or leaves out keys.
"""

from __future__ import annotations

import csv
import itertools
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from fmkit.errors import ConfigError, DataError

_TABLES = (".csv", ".tsv", ".parquet", ".jsonl", ".ndjson")


@dataclass
class SkipCount:
    blank: int = 0
    unit: str = "lines"

    def report(self) -> None:
        if self.blank:
            unit = self.unit if self.blank > 1 else self.unit.rstrip("s")
            print(f"skipped {self.blank} blank {unit}", file=sys.stderr)


def _column_names(path: Path) -> list[str]:
    """The header of a table file (empty when it has none we can name columns by)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return [str(n) for n in pq.ParquetFile(path).schema_arrow.names]
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
            if suffix in (".jsonl", ".ndjson"):
                first = next((line for line in fh if line.strip()), "")
                record = json.loads(first) if first.lstrip().startswith("{") else {}
                return [str(k) for k in record] if isinstance(record, dict) else []
            return next(csv.reader(fh, delimiter="," if suffix == ".csv" else "\t"), [])
    except (OSError, ValueError, StopIteration):
        return []  # the text reader names the problem when it reads the file


def id_column(source: str, wanted: str | None) -> str | None:
    """The input's id column: --id-column, else one named like an id (as `fmkit embed` / `index build` detect it)."""
    from fmkit.data.records import ID_COLUMN_NAMES

    path = Path(source)
    names = [n.strip() for n in _column_names(path)] if source != "-" and path.suffix.lower() in _TABLES else []
    if wanted is not None:
        if wanted not in names:
            where = "a table file (CSV, TSV, JSONL or Parquet)" if not names else f"one of: {', '.join(names)}"
            raise DataError(f"{source}: no id column '{wanted}'; --id-column needs {where}.")
        return wanted
    lowered = {n.lower(): n for n in names}
    return next((lowered[c] for c in ID_COLUMN_NAMES if c in lowered), None)


def iter_inputs(source: str, text_column: str | None, id_col: str | None, skipped: SkipCount
                ) -> Iterator[tuple[str | None, str]]:
    """(id or None, text) per input, blank texts left out and counted in `skipped`."""
    from fmkit.data.readers import iter_texts

    is_table = source != "-" and Path(source).suffix.lower() in _TABLES[:3]
    skipped.unit = "rows" if is_table else "lines"
    texts = iter_texts(source, text_column)
    # The id column read as a second stream of the same file: one pass each, constant memory.
    ids: Iterable[str | None] = iter_texts(source, id_col) if id_col else itertools.repeat(None)
    for item_id, text in zip(ids, texts, strict=False):  # the ids may be an endless None
        if not str(text).strip():
            skipped.blank += 1
            continue
        yield item_id, text


def with_inputs(predictor: Any, inputs: Iterable[tuple[str | None, str]]) -> Iterator[dict[str, Any]]:
    """Predict on the texts; each record starts with its input: the id when there is one, else the text."""
    for_model, for_output = itertools.tee(inputs)
    records = predictor.predict_stream(text for _, text in for_model)
    for (item_id, text), record in zip(for_output, records, strict=True):
        yield {**({"id": item_id} if item_id is not None else {"text": text}), **record}


def with_pair_inputs(predictor: Any, source: str, text_column: str | None, skipped: SkipCount
                     ) -> Iterator[dict[str, Any]]:
    """A pair model's predictions on a table: its two text columns (--text-column A,B, else the ones it was
    trained on), each record starting with both texts; rows with a blank side are left out and counted."""
    from fmkit.data.readers import iter_texts

    columns = [c.strip() for c in text_column.split(",")] if text_column else list(predictor.text_columns)
    if len(columns) != 2 or source == "-" or Path(source).suffix.lower() not in _TABLES:
        raise DataError(f"{source}: this model reads text pairs; give a table file (CSV, TSV, JSONL or Parquet) "
                        f"with two text columns, named with --text-column A,B (trained on: "
                        f"{', '.join(predictor.text_columns) or 'unknown'}).")
    names = [n.strip() for n in _column_names(Path(source))]
    missing = [c for c in columns if c not in names]
    if missing and names:
        raise DataError(f"{source}: no column {', '.join(repr(c) for c in missing)}; columns present: "
                        f"{', '.join(names)}. Name the two text columns with --text-column A,B.")
    skipped.unit = "rows"

    def pairs() -> Iterator[tuple[str, str]]:
        for first, second in zip(iter_texts(source, columns[0]), iter_texts(source, columns[1]), strict=False):
            if not str(first).strip() or not str(second).strip():
                skipped.blank += 1
                continue
            yield str(first), str(second)

    for_model, for_output = itertools.tee(pairs())
    for (first, second), record in zip(for_output, predictor.predict_pairs_stream(for_model), strict=True):
        yield {"text": first, "text_pair": second, **record}


def select_fields(records: Iterable[dict[str, Any]], fields: str | None) -> Iterator[dict[str, Any]]:
    """`--fields label,scores` keeps those keys (in that order); `--fields=-scores` leaves keys out."""
    if not fields:
        yield from records
        return
    names = [f.strip() for f in fields.split(",") if f.strip()]
    dropping = all(n.startswith("-") for n in names)
    if not dropping and any(n.startswith("-") for n in names):
        raise ConfigError(f"--fields {fields}: either name the fields to keep or, each with '-', those to leave out.")
    wanted = [n.lstrip("-") for n in names]
    for index, record in enumerate(records):
        unknown = [n for n in wanted if n not in record]
        if index == 0 and unknown:
            raise ConfigError(f"--fields: no field {', '.join(map(repr, unknown))} in this model's output; "
                              f"fields: {', '.join(record)}.")
        if dropping:
            yield {k: v for k, v in record.items() if k not in wanted}
        else:
            yield {k: record[k] for k in wanted if k in record}


def _table_line(record: dict[str, Any]) -> str:
    """label, top score, input: readable at a glance whatever the task."""
    scores = record.get("scores")
    if "label" in record:
        # An abstaining classifier answers no label; the table still shows what it would have said.
        answer = str(record["label"]) if record["label"] is not None else f"(abstained: {record.get('top_label')})"
    elif "entities" in record:
        answer = ", ".join(f"{e['type']}:{e['text']}" for e in record["entities"]) or "(no entities)"
    elif "generated" in record:
        answer = json.dumps(record["generated"], ensure_ascii=False)
    else:
        answer = ", ".join(k for k in record if k not in ("id", "text", "path", "prompt", "audio"))
    score = f"{max(scores.values()):.3f}" if isinstance(scores, dict) and scores else "-"
    source = next((str(record[k]) for k in ("text", "prompt", "path", "audio", "id") if k in record), "")
    return f"{answer:<16} {score:>5}  {source}"


def write_records(records: Iterable[dict[str, Any]], out: TextIO, table: bool) -> None:
    for record in records:
        out.write((_table_line(record) if table else json.dumps(record, ensure_ascii=False)) + "\n")
