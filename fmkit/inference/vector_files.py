"""Write (id, vector) streams to .parquet or .npy without holding them all in memory; atomic.

.parquet: columns `id` (string) and `vector` (fixed-size list of float32), one row group per chunk.
.npy:     float32 (n, dim) rows in input order, plus OUTPUT.ids.jsonl with one JSON id string per line
          (the .npy format cannot hold strings).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from fmkit.errors import DataError

Block = tuple[list[str], np.ndarray]  # ids and their (n, dim) vectors


def ids_path_for(npy_path: Path) -> Path:
    return npy_path.with_suffix(".ids.jsonl")


def write_vectors(output: Path | str, blocks: Iterable[Block]) -> int:
    """Write every block to `output` (by suffix); returns the number of vectors written."""
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in (".parquet", ".npy"):
        raise DataError(f"--output {output}: give a .parquet or .npy file.")
    output.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        return _write_parquet(output, iter(blocks))
    return _write_npy(output, iter(blocks))


def _tmp(path: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


def _write_parquet(output: Path, blocks: Iterator[Block]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = _tmp(output)
    writer = None
    count = 0
    try:
        for ids, vectors in blocks:
            dim = vectors.shape[1]
            flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
            table = pa.table({"id": pa.array(ids, type=pa.string()),
                              "vector": pa.FixedSizeListArray.from_arrays(flat, dim)})
            if writer is None:
                writer = pq.ParquetWriter(str(tmp), table.schema)
            writer.write_table(table)
            count += len(ids)
        if writer is None:  # no input: still a valid, empty file
            schema = pa.schema([("id", pa.string()), ("vector", pa.list_(pa.float32()))])
            writer = pq.ParquetWriter(str(tmp), schema)
        writer.close()
        os.replace(tmp, output)
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return count


def _write_npy(output: Path, blocks: Iterator[Block]) -> int:
    raw, ids_tmp, final_tmp = _tmp(output), _tmp(ids_path_for(output)), _tmp(output)
    count, dim = 0, 0
    try:
        # Rows go to a raw file first: the .npy header needs the row count, known only at the end.
        with open(raw, "wb") as data_fh, open(ids_tmp, "w", encoding="utf-8") as ids_fh:
            for ids, vectors in blocks:
                dim = vectors.shape[1]
                data_fh.write(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
                ids_fh.writelines(json.dumps(i, ensure_ascii=False) + "\n" for i in ids)
                count += len(ids)
        with open(final_tmp, "wb") as out_fh, open(raw, "rb") as data_fh:
            np.lib.format.write_array_header_1_0(
                out_fh, {"descr": "<f4", "fortran_order": False, "shape": (count, dim)})
            shutil.copyfileobj(data_fh, out_fh, length=1 << 20)
        os.replace(final_tmp, output)
        os.replace(ids_tmp, ids_path_for(output))
    finally:
        for path in (raw, ids_tmp, final_tmp):
            path.unlink(missing_ok=True)
    return count


def read_vectors(path: Path | str) -> tuple[list[str], np.ndarray]:
    """Read back what write_vectors wrote (ids, float32 matrix)."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        ids = [str(i) for i in table.column("id").to_pylist()]
        vectors = table.column("vector").combine_chunks()
        dim = vectors.type.list_size if len(ids) else 0
        return ids, np.asarray(vectors.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(len(ids), dim)
    matrix = np.load(path, allow_pickle=False)
    with open(ids_path_for(path), encoding="utf-8") as fh:
        ids = [json.loads(line) for line in fh]
    return ids, matrix
