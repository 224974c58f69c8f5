"""Read tabular files into a DataFrame of strings, or stream their texts.

Formats by suffix: .csv, .tsv, .jsonl/.json, .parquet; anything else is sniffed.
Every problem becomes a `DataError` naming the file, the row and the fix.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from fmkit.data.legacy_encodings import conversion_advice, legacy_chinese_encoding
from fmkit.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

# pandas is imported by the functions that build tables: predicting a plain .txt file never pays for it.

# Column names that mark a header row; also used to auto-detect text and label columns.
TEXT_COLUMN_NAMES = ("text", "sentence", "content", "review", "document", "utterance", "query", "question", "title")
LABEL_COLUMN_NAMES = ("label", "labels", "category", "target", "class", "intent", "sentiment", "topic", "y")

_SNIFF_BYTES = 64 * 1024


def read_table(path: Path | str) -> pd.DataFrame:
    """Read a whole table as strings (no NA conversion: an empty cell stays '')."""
    path = Path(path)
    check_readable(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _read_parquet(path)
    raw = _read_bytes(path)
    text = _decode(raw, path)
    if not text.strip():
        raise DataError(f"{path}: the file is empty. Give a table with a header row and one example per row.")
    if suffix in (".jsonl", ".json", ".ndjson"):
        return _read_jsonl(text, path)
    delimiter = {".csv": ",", ".tsv": "\t"}.get(suffix) or _sniff_delimiter(text, path)
    return _read_delimited(text, path, delimiter)


def _read_bytes(path: Path, limit: int = -1) -> bytes:
    """The file's bytes (the first `limit`); a file that exists but cannot be read is a DataError naming it.

    Why here: a failed read() carries no file name, so the CLI could not say which file it was."""
    try:
        with open(path, "rb") as fh:
            return fh.read(limit)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}). Give a regular data file you can read, "
                        "or copy it somewhere readable.") from None


def check_readable(path: Path) -> None:
    """Fail with the fix on a path that is missing or a folder (not yet on its contents)."""
    if str(path) == "-":
        return
    if not path.exists():
        hint = ""
        if path.parent.is_dir():
            near = sorted(p.name for p in path.parent.iterdir() if p.suffix.lower() in (".csv", ".tsv", ".jsonl", ".parquet"))
            if near:
                hint = f" Files here: {', '.join(near[:8])}."
        raise DataError(f"{path}: file not found.{hint}")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give a data file (CSV, TSV, JSONL or Parquet).")


def _decode(raw: bytes, path: Path) -> str:
    _check_head(raw[:_SNIFF_BYTES], path, complete=len(raw) <= _SNIFF_BYTES)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, raw, exc) from None


def check_text_file(path: Path | str) -> None:
    """Fail early, with the fix, on a file that is missing, a folder, binary (Excel, Parquet, an image...)
    or not UTF-8 in its first 64 KiB: every reader calls this before it opens a file as text."""
    path = Path(path)
    check_readable(path)
    head = _read_bytes(path, _SNIFF_BYTES + 1)
    complete = len(head) <= _SNIFF_BYTES
    _check_head(head[:_SNIFF_BYTES], path, complete)
    if complete and not head.strip():
        raise DataError(f"{path}: the file is empty. Give one text per line, or a table with a text column.")


# Leading bytes of formats people rename to .csv/.txt or pick by mistake -> what to tell them.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "this is an Excel (.xls) or other Office file, not a table: "
                                          "open it and save it as CSV UTF-8"),
    (b"PAR1", "this is a Parquet file: give it the .parquet suffix"),
    (b"\x1f\x8b", "this is a gzip archive: decompress it first (`gunzip FILE`)"),
    (b"%PDF", "this is a PDF document, not a table: export its text to a CSV or .txt file"),
    (b"\x89PNG", "this is a PNG image, not a table"),
    (b"\xff\xd8\xff", "this is a JPEG image, not a table"),
    (b"GIF8", "this is a GIF image, not a table"),
)


def _check_head(head: bytes, path: Path, complete: bool) -> None:
    """Name the format of a file that is not UTF-8 text, or the first line that does not decode."""
    if head.startswith(b"PK\x03\x04"):
        if b"xl/" in head:
            raise DataError(f"{path}: this is an Excel file (.xlsx), not a CSV: open it and save it as CSV UTF-8 "
                            "(File > Save As > CSV UTF-8), then give that file.")
        raise DataError(f"{path}: this is a ZIP archive, not a table: unzip it and give the CSV, TSV, JSONL or "
                        "Parquet file inside.")
    for signature, problem in _SIGNATURES:
        if head.startswith(signature):
            raise DataError(f"{path}: {problem}.")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{path}: the file is UTF-16 text (Excel's 'Unicode Text'); re-save it as UTF-8, e.g. "
                        f"`iconv -f utf-16 -t utf-8 {path} > {_utf8_name(path)}`.")
    if b"\x00" in head:
        raise DataError(
            f"{path}: this is a binary file, not a table. Give a CSV, TSV, JSONL or Parquet file "
            "(a .parquet file needs the .parquet suffix)."
        )
    try:
        # Not final unless this is the whole file: the 64 KiB cut may split a multi-byte character.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, head, exc) from None


def _not_utf8(path: Path, raw: bytes | None = None, exc: UnicodeDecodeError | None = None) -> DataError:
    """The message for text that is not UTF-8: where, and the `iconv` line that fixes it."""
    where = "is not valid UTF-8"
    if raw is not None and exc is not None:
        line = raw[: exc.start].count(b"\n") + 1
        found = f"bytes {raw[exc.start : exc.start + 4]!r} at offset {exc.start}"
        legacy = legacy_chinese_encoding(raw, exc.start)
        if legacy is not None:  # converted from Latin-1, as the advice below says, Chinese would be garbage
            return DataError(f"{path}: looks like {legacy.label}-encoded {legacy.language} text, not UTF-8 (line "
                             f"{line}: {found}). {conversion_advice(str(path), _utf8_name(path), legacy)}")
        where = f"line {line} is not valid UTF-8 ({found})"
    return DataError(
        f"{path}: {where}; it is probably Latin-1/Windows-1252. Re-save it as UTF-8, e.g. "
        f"`iconv -f latin1 -t utf-8 {path} > {_utf8_name(path)}`."
    )


def _utf8_name(path: Path) -> str:
    return str(path.with_name(f"{path.stem}.utf8{path.suffix}"))


def _sniff_delimiter(text: str, path: Path) -> str:
    sample = text[:_SNIFF_BYTES]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        first = sample.splitlines()[0] if sample else ""
        if "\t" in first:
            return "\t"
        if "," in first:
            return ","
        raise DataError(
            f"{path}: cannot tell how the columns are separated. Use .csv (comma), .tsv (tab), "
            ".jsonl or .parquet, with one example per row."
        ) from None


def _has_header(text: str, delimiter: str) -> bool:
    rows = list(csv.reader(io.StringIO(text[:_SNIFF_BYTES]), delimiter=delimiter))[:200]
    if not rows:
        return False
    first = [cell.strip().lower() for cell in rows[0]]
    known = set(TEXT_COLUMN_NAMES) | set(LABEL_COLUMN_NAMES)
    if any(cell in known for cell in first):
        return True
    # A first-row value that repeats further down its column is data (a label), not a name.
    for col, cell in enumerate(rows[0]):
        if any(len(r) > col and r[col] == cell for r in rows[1:]):
            return False
    try:
        return csv.Sniffer().has_header(text[:_SNIFF_BYTES])
    except csv.Error:
        return False


def _read_delimited(text: str, path: Path, delimiter: str) -> pd.DataFrame:
    import pandas as pd

    header = 0 if _has_header(text, delimiter) else None
    try:
        df = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            header=header,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            quoting=csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE,
            engine="c",
        )
    except pd.errors.ParserError as exc:
        raise DataError(
            f"{path}: not a well-formed table ({exc}). Check that every row has the same number of "
            "columns and that quotes are closed."
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file has no rows.") from None
    if header is None:
        # Headerless two-column files are "text, label" or "label, text": name them by content.
        df.columns = [f"column_{i}" for i in range(df.shape[1])]
        if df.shape[1] == 2:
            lengths = [df[c].str.len().mean() for c in df.columns]
            text_col = int(lengths[1] > lengths[0])
            df.columns = ["label", "text"] if text_col == 1 else ["text", "label"]
    df.columns = [str(c).strip() for c in df.columns]
    if df.shape[1] < 1 or len(df) == 0:
        raise DataError(f"{path}: the table has no data rows.")
    # How it was read, so a filtered copy (`fmkit audit --drop-suspects`) is written the same way.
    df.attrs["delimiter"] = delimiter
    df.attrs["header"] = header is not None
    return df


def _read_jsonl(text: str, path: Path) -> pd.DataFrame:
    import pandas as pd

    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}.") from None
    else:
        records = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}: line {lineno} is not valid JSON ({exc.msg}). Each line must be one JSON object, "
                    'like {"text": "...", "label": "..."}.'
                ) from None
    if not records:
        raise DataError(f"{path}: the file has no records.")
    for i, rec in enumerate(records, start=1):
        if not isinstance(rec, dict):
            raise DataError(f"{path}: record {i} is {type(rec).__name__}, not a JSON object with named fields.")
    df = pd.DataFrame.from_records(records)
    return df.astype(object).where(df.notna(), "").astype(str).replace({"None": ""})


def _read_parquet(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a non-parquet file
        raise DataError(f"{path}: cannot read as Parquet ({exc}).") from None
    return df.astype(object).where(df.notna(), "").astype(str)


def iter_texts(source: str | Path, text_column: str | None = None) -> Iterator[str]:
    """Stream texts from a file or '-' (stdin) in constant memory.

    Plain text and stdin: one text per line (a JSON object line uses its text field).
    CSV/TSV/JSONL/Parquet: the text column, read in chunks.
    """
    if str(source) == "-":
        yield from _iter_lines(sys.stdin, text_column)
        return
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        check_readable(path)
        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for a non-parquet file
            raise DataError(f"{path}: cannot read as Parquet ({exc}).") from None
        column = text_column or _pick(list(pf.schema_arrow.names), TEXT_COLUMN_NAMES, path)
        for batch in pf.iter_batches(columns=[column], batch_size=4096):
            yield from (str(t) if t is not None else "" for t in batch.column(0).to_pylist())
        return
    check_text_file(path)
    if suffix in (".csv", ".tsv"):
        import pandas as pd

        sep = "," if suffix == ".csv" else "\t"
        with open(path, encoding="utf-8-sig", errors="strict", newline="") as fh:
            head = fh.read(_SNIFF_BYTES)
        header = 0 if _has_header(head, sep) else None
        try:
            chunks = pd.read_csv(
                path, sep=sep, header=header, dtype=str, keep_default_na=False, chunksize=4096,
                quoting=csv.QUOTE_MINIMAL if sep == "," else csv.QUOTE_NONE, encoding="utf-8-sig",
            )
            for chunk in chunks:
                if header is None:
                    column_index = int(chunk.apply(lambda c: c.str.len().mean()).to_numpy().argmax())
                    yield from chunk.iloc[:, column_index].tolist()
                else:
                    names = [str(c).strip() for c in chunk.columns]
                    col = text_column or _pick(names, TEXT_COLUMN_NAMES, path)
                    if col not in names:
                        raise DataError(f"{path}: no column '{col}'. Columns present: {', '.join(names)}.")
                    yield from chunk.iloc[:, names.index(col)].tolist()
        except UnicodeDecodeError:
            raise _not_utf8(path) from None
        except pd.errors.ParserError as exc:
            raise DataError(f"{path}: not a well-formed table ({exc}).") from None
        return
    with open(path, encoding="utf-8-sig") as fh:
        try:
            yield from _iter_lines(fh, text_column, path)
        except UnicodeDecodeError:
            raise _not_utf8(path) from None


def _iter_lines(stream: Iterable[str], text_column: str | None, path: Path | None = None) -> Iterator[str]:
    for lineno, line in enumerate(stream, start=1):
        line = line.rstrip("\r\n")
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                yield line
                continue
            names = list(record)
            col = text_column or _pick(names, TEXT_COLUMN_NAMES, path or Path("<stdin>"), lineno)
            yield str(record.get(col, ""))
        else:
            yield line


def _pick(names: list[str], candidates: tuple[str, ...], path: Path, lineno: int | None = None) -> str:
    lowered = {n.lower(): n for n in names}
    for cand in candidates:
        if cand in lowered:
            return lowered[cand]
    where = f" (line {lineno})" if lineno else ""
    raise DataError(
        f"{path}{where}: cannot tell which column holds the text; columns present: {', '.join(names)}. "
        "Name it with --text-column."
    )
