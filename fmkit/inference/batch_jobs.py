"""The plan of a distributed batch job (`fmkit predict|embed --engine ray`), independent of the engine.

A job turns INPUT (a file, a folder or a glob of CSV/TSV/JSONL/Parquet/txt shards) into fixed row ranges
("slices") of its files, one output Parquet shard per slice, named from the slice alone:

    OUT/part-<file index>-<first row>.parquet     e.g. part-00003-000000020000.parquet

Why this shape (and not Ray Data's own `write_parquet`): Ray names the files it writes after a fresh uuid
per execution and has no stable row index, so a re-run cannot tell which rows an earlier, failed run
already wrote. Here every input row belongs to exactly one shard name, each shard is written to a temporary
file and renamed into place (whole or absent), and a re-run of the same job skips the shards that exist:
a retried task or a re-run after a crash rewrites the same name, never adds rows. `OUT/_fmkit_job.json`
says which job the shards belong to (model, inputs with sizes and times, options); a folder holding another
job's shards is refused unless --overwrite, which removes only the files that job's manifest lists.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fmkit.errors import ConfigError, DataError
from fmkit.utils.io import atomic_write_json

MANIFEST = "_fmkit_job.json"
READABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet", ".txt")
SHARD_PREFIX = "part-"
TMP_MARKER = ".fmkit-tmp-"


@dataclass(frozen=True)
class Slice:
    """Rows [start, stop) of one input file; `first_row` is the global number of its first row."""

    file_index: int
    path: str
    start: int
    stop: int
    first_row: int

    @property
    def shard_name(self) -> str:
        return shard_name(self.file_index, self.start)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def shard_name(file_index: int, start: int) -> str:
    return f"{SHARD_PREFIX}{file_index:05d}-{start:012d}.parquet"


def expand_input(source: str) -> list[Path]:
    """The files of INPUT in a stable order: one file, a folder's readable files, or a glob's matches."""
    path = Path(source)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in READABLE_SUFFIXES
                       and not p.name.startswith("."))
        where = f"folder {source}"
    else:
        files = sorted(Path(p) for p in glob.glob(source, recursive=True) if Path(p).is_file())
        where = f"pattern {source}"
        if not glob.has_magic(source):
            raise DataError(f"{source}: file not found.")
    if not files:
        raise DataError(f"{where}: no CSV, TSV, JSONL, Parquet or txt files in it.")
    unreadable = [p for p in files if p.suffix.lower() not in READABLE_SUFFIXES]
    if unreadable:
        raise DataError(f"{unreadable[0]}: not a CSV, TSV, JSONL, Parquet or txt file; narrow the {where}.")
    return files


def count_rows(path: Path, text_column: str | None) -> int:
    """Rows of one input file (blank texts included: row numbers name input rows, blank or not)."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    from fmkit.data.readers import iter_texts

    return sum(1 for _ in iter_texts(path, text_column))


def plan_slices(row_counts: list[tuple[Path, int]], rows_per_shard: int) -> list[Slice]:
    """Cut every file into slices of at most `rows_per_shard` rows; global row numbers run across files."""
    if rows_per_shard < 1:
        raise ConfigError(f"--rows-per-shard {rows_per_shard}: give a positive number of rows.")
    slices: list[Slice] = []
    offset = 0
    for index, (path, rows) in enumerate(row_counts):
        for start in range(0, rows, rows_per_shard):
            slices.append(Slice(index, str(path), start, min(start + rows_per_shard, rows), offset + start))
        offset += rows
    return slices


def read_slice(piece: Slice, text_column: str | None, id_column: str | None) -> Iterator[tuple[int, str | None, str]]:
    """(global row number, id or None, text) for each row of a slice, read with fmkit's own readers."""
    import itertools

    from fmkit.data.readers import iter_texts

    path = Path(piece.path)
    if path.suffix.lower() == ".parquet":
        texts: Iterator[str] = _parquet_column(path, text_column, piece.start, piece.stop, text=True)
        ids: Iterator[str | None] = (_parquet_column(path, id_column, piece.start, piece.stop, text=False)
                                     if id_column else itertools.repeat(None))
    else:
        texts = itertools.islice(iter_texts(path, text_column), piece.start, piece.stop)
        ids = (itertools.islice(iter_texts(path, id_column), piece.start, piece.stop) if id_column
               else itertools.repeat(None))
    for offset, (item_id, text) in enumerate(zip(ids, texts, strict=False)):
        yield piece.first_row + offset, item_id, text


def _parquet_column(path: Path, column: str | None, start: int, stop: int, *, text: bool) -> Iterator[Any]:
    import pyarrow.parquet as pq

    from fmkit.data.readers import TEXT_COLUMN_NAMES, _pick

    names = list(pq.ParquetFile(path).schema_arrow.names)
    name = column or _pick(names, TEXT_COLUMN_NAMES, path)
    if name not in names:
        raise DataError(f"{path}: no column '{name}'. Columns present: {', '.join(names)}.")
    values = pq.read_table(path, columns=[name]).column(0).slice(start, stop - start).to_pylist()
    return iter(("" if v is None else str(v)) if text else (None if v is None else str(v)) for v in values)


# --- the output folder --------------------------------------------------------------------------------------

def job_key(kind: str, model: str, files: list[Path], options: dict[str, Any]) -> str:
    """What identifies a job: the same key on a re-run means its existing shards can be kept."""
    from fmkit.models.meta import saved_model_dir

    model_path = Path(model)
    # A model retrained into the same folder is another job: its files' sizes and times are part of the key
    # (not backend.json, the measured-backend cache written beside the model on first use).
    folder = saved_model_dir(model_path)
    model_files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != "backend.json") \
        if folder.is_dir() else []
    blob = json.dumps({"kind": kind, "model": str(model_path.resolve()) if model_path.exists() else model,
                       "model_files": [_stat(p) for p in model_files], "inputs": [_stat(p) for p in files],
                       "options": options}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _stat(path: Path) -> tuple[str, int, int]:
    info = path.stat()
    return str(path.resolve()), info.st_size, info.st_mtime_ns


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((out_dir / MANIFEST).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raise DataError(f"{out_dir / MANIFEST}: unreadable job manifest; remove the folder's shards by hand "
                        f"or choose another --output.") from None


def prepare_output(out_dir: Path, key: str, slices: list[Slice], overwrite: bool) -> set[str]:
    """Make OUT ready for job `key`; returns the shard names already done (a re-run of the same job resumes).

    Refused: Parquet files fmkit did not write (they would mix with the output), and another job's shards
    unless `overwrite`. `overwrite` starts over: only what the earlier job's manifest lists (and its leftover
    temporary files) is removed."""
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"--output {out_dir}: is a file; give a folder for the Parquet shards.")
    manifest = read_manifest(out_dir) if out_dir.is_dir() else None
    ours = set(manifest.get("shards", [])) if manifest else set()
    present = {p.name for p in out_dir.glob("*.parquet")} if out_dir.is_dir() else set()
    foreign = sorted(present - ours)
    if foreign:
        raise DataError(f"--output {out_dir}: holds Parquet files fmkit did not write ({foreign[0]}"
                        f"{', ...' if len(foreign) > 1 else ''}); choose an empty or new folder.")
    if manifest is not None and (overwrite or manifest.get("job") != key):
        if not overwrite:
            raise DataError(f"--output {out_dir}: holds the shards of another job ({manifest.get('kind')} of "
                            f"{manifest.get('input')} with {manifest.get('model')}); add --overwrite to replace them "
                            f"or choose another folder.")
        for name in [*ours, MANIFEST]:
            (out_dir / name).unlink(missing_ok=True)
        remove_leftovers(out_dir)
        manifest = None
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = {s.shard_name for s in slices}
    return {name for name in present & ours if name in wanted} if manifest is not None else set()


def write_manifest(out_dir: Path, key: str, info: dict[str, Any], slices: list[Slice], complete: bool,
                   rows: int | None = None) -> None:
    """Written before the first shard (so a crashed job's shards are known as ours) and again when complete."""
    atomic_write_json(out_dir / MANIFEST, {"job": key, **info, "complete": complete, "rows": rows,
                                           "shards": [s.shard_name for s in slices]})


def remove_leftovers(out_dir: Path) -> None:
    """Temporary files of shards whose writer died mid-write (the retry wrote the shard again)."""
    for leftover in out_dir.glob(f".*{TMP_MARKER}*"):
        leftover.unlink(missing_ok=True)


def write_shard_atomically(out_dir: Path, name: str, table: Any) -> None:
    """The shard appears whole or not at all: written beside its final name, then renamed."""
    import pyarrow.parquet as pq

    tmp = out_dir / f".{name}{TMP_MARKER}{os.getpid()}"
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, out_dir / name)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
