"""Write a filtered, relabelled copy of a data file in the format it came in (for `fmkit audit --drop-suspects`).

CSV/TSV keep their delimiter and whether they had a header row; JSON lines keep every field of each record with
its JSON type (only the label changes); Parquet keeps its columns. The copy is written atomically: the
destination is whole or untouched.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from fmkit.data.readers import read_table
from fmkit.errors import ConfigError
from fmkit.utils.io import atomic_write_bytes

JSON_SUFFIXES = (".jsonl", ".json")


def table_format(path: Path) -> str:
    """csv | tsv | jsonl | parquet, by suffix (read_table sniffs other suffixes as delimited text)."""
    suffix = path.suffix.lower()
    if suffix in JSON_SUFFIXES:
        return "jsonl"
    if suffix == ".parquet":
        return "parquet"
    return "tsv" if suffix == ".tsv" else "csv"


def write_rows_like(source: Path, dest: Path, keep: Sequence[int], label_column: str,
                    new_labels: Mapping[int, str] | None = None) -> None:
    """Rows `keep` (0-based data rows, in this order) of `source` into `dest`, in `source`'s format, with the
    label of row i replaced by `new_labels[i]` where given."""
    source, dest = Path(source), Path(dest)
    if dest.resolve() == source.resolve():
        raise ConfigError(f"{dest}: this is the input file; write the cleaned copy to another path.")
    wanted, given = table_format(dest), table_format(source)
    if dest.suffix and wanted != given:
        raise ConfigError(f"{dest}: the cleaned copy keeps the input's format ({given}); give it a "
                          f"{source.suffix or '.' + given} name.")
    relabel = dict(new_labels or {})
    if given == "jsonl":
        atomic_write_bytes(dest, _jsonl_rows(source, keep, label_column, relabel))
        return
    df = read_table(source)
    delimiter, header = df.attrs.get("delimiter", ","), df.attrs.get("header", True)
    for row, label in relabel.items():
        df.iat[row, df.columns.get_loc(label_column)] = label
    kept = df.iloc[list(keep)]
    if given == "parquet":
        buffer = io.BytesIO()
        kept.to_parquet(buffer, index=False)
        atomic_write_bytes(dest, buffer.getvalue())
        return
    text = kept.to_csv(sep=delimiter, header=header, index=False, lineterminator="\n",
                       quoting=csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE,
                       escapechar=None if delimiter == "," else "\\")
    atomic_write_bytes(dest, text.encode("utf-8"))


def _jsonl_rows(source: Path, keep: Sequence[int], label_column: str, relabel: dict[int, str]) -> bytes:
    """The kept records as JSON lines, each with all its original fields and types (read_table reads the same
    records in the same order: a JSON array or one object per non-blank line)."""
    text = source.read_text(encoding="utf-8-sig")
    if text.lstrip().startswith("["):
        records = json.loads(text)
    else:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    lines = []
    for row in keep:
        record = dict(records[row])
        if row in relabel:
            record[label_column] = relabel[row]
        lines.append(json.dumps(record, ensure_ascii=False))
    return ("\n".join(lines) + "\n").encode("utf-8")


__all__ = ["table_format", "write_rows_like"]
