"""The plan of a `--engine ray` job, without Ray: inputs, slices, shard names, the output folder's rules."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fmkit.errors import ConfigError, DataError
from fmkit.inference.batch_jobs import (
    MANIFEST,
    Slice,
    count_rows,
    expand_input,
    job_key,
    plan_slices,
    prepare_output,
    read_manifest,
    read_slice,
    remove_leftovers,
    shard_name,
    write_manifest,
    write_shard_atomically,
)


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("doc_id,text\n" + "".join(f"{i},{t}\n" for i, t in rows), encoding="utf-8")
    return path


def test_expand_input_file_folder_glob(tmp_path: Path) -> None:
    a = write_csv(tmp_path / "b.csv", [("1", "x")])
    b = write_csv(tmp_path / "a.csv", [("2", "y")])
    (tmp_path / ".hidden.csv").write_text("text\nz\n")
    (tmp_path / "notes.md").write_text("not data")
    assert expand_input(str(a)) == [a]
    assert expand_input(str(tmp_path)) == [b, a]  # sorted, hidden and unknown suffixes left out of a folder
    assert expand_input(str(tmp_path / "*.csv")) == [b, a]
    with pytest.raises(DataError, match="not a CSV"):
        expand_input(str(tmp_path / "*"))  # a glob that matches a non-data file is refused, not skipped
    with pytest.raises(DataError, match="file not found"):
        expand_input(str(tmp_path / "missing.csv"))
    with pytest.raises(DataError, match="no CSV"):
        expand_input(str(tmp_path / "none-*.parquet"))


def test_slices_cover_every_row_once_with_global_row_numbers() -> None:
    slices = plan_slices([(Path("a.csv"), 5), (Path("b.csv"), 0), (Path("c.csv"), 3)], rows_per_shard=2)
    assert [(s.file_index, s.start, s.stop, s.first_row) for s in slices] == [
        (0, 0, 2, 0), (0, 2, 4, 2), (0, 4, 5, 4), (2, 0, 2, 5), (2, 2, 3, 7)]
    assert [s.shard_name for s in slices][:2] == ["part-00000-000000000000.parquet", "part-00000-000000000002.parquet"]
    assert len({s.shard_name for s in slices}) == len(slices)
    with pytest.raises(ConfigError, match="rows-per-shard"):
        plan_slices([(Path("a.csv"), 5)], rows_per_shard=0)


def test_shard_names_are_deterministic_and_sort_in_input_order() -> None:
    names = [shard_name(f, s) for f in (0, 1, 10) for s in (0, 5, 100_000)]
    assert names == sorted(names)
    assert shard_name(3, 20_000) == "part-00003-000000020000.parquet"


def test_read_slice_csv_and_parquet(tmp_path: Path) -> None:
    csv_path = write_csv(tmp_path / "a.csv", [(str(i), f"text {i}") for i in range(7)])
    piece = Slice(0, str(csv_path), 2, 5, 102)
    assert count_rows(csv_path, None) == 7
    assert list(read_slice(piece, None, "doc_id")) == [(102, "2", "text 2"), (103, "3", "text 3"), (104, "4", "text 4")]
    assert next(read_slice(piece, None, None)) == (102, None, "text 2")
    parquet = tmp_path / "b.parquet"
    pq.write_table(pa.table({"id": [10, 11, 12], "text": ["a", None, "c"]}), parquet)
    assert count_rows(parquet, None) == 3
    assert list(read_slice(Slice(1, str(parquet), 1, 3, 8), None, "id")) == [(8, "11", ""), (9, "12", "c")]


def test_job_key_changes_with_input_options_and_model(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "a.csv", [("1", "x")])
    model = tmp_path / "model"
    model.mkdir()
    (model / "fmkit.json").write_text("{}")
    key = job_key("predict", str(model), [data], {"rows_per_shard": 10})
    assert key == job_key("predict", str(model), [data], {"rows_per_shard": 10})
    (model / "backend.json").write_text("{}")  # the backend cache written on first use is not the model
    assert key == job_key("predict", str(model), [data], {"rows_per_shard": 10})
    assert key != job_key("embed", str(model), [data], {"rows_per_shard": 10})
    assert key != job_key("predict", str(model), [data], {"rows_per_shard": 11})
    write_csv(data, [("1", "x"), ("2", "longer")])
    assert key != job_key("predict", str(model), [data], {"rows_per_shard": 10})
    before_retraining = job_key("predict", str(model), [data], {})
    (model / "fmkit.json").write_text('{"retrained": true}')  # a model retrained into the same folder
    assert job_key("predict", str(model), [data], {}) != before_retraining


def _shard(out: Path, name: str) -> None:
    write_shard_atomically(out, name, pa.table({"row": [0]}))


def test_same_job_resumes_and_keeps_its_shards(tmp_path: Path) -> None:
    out = tmp_path / "out"
    slices = plan_slices([(Path("a.csv"), 25)], rows_per_shard=10)
    assert prepare_output(out, "job1", slices, overwrite=False) == set()
    write_manifest(out, "job1", {"kind": "predict"}, slices, complete=False)
    _shard(out, slices[0].shard_name)
    (out / f".{slices[1].shard_name}.fmkit-tmp-123").write_bytes(b"half a shard")  # a writer killed mid-write
    assert prepare_output(out, "job1", slices, overwrite=False) == {slices[0].shard_name}
    remove_leftovers(out)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, slices[0].shard_name]


def test_another_jobs_shards_refused_then_overwritten_leaving_other_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = plan_slices([(Path("a.csv"), 25)], rows_per_shard=10)
    prepare_output(out, "job1", first, overwrite=False)
    write_manifest(out, "job1", {"kind": "predict", "input": "a.csv", "model": "m"}, first, complete=True)
    for s in first:
        _shard(out, s.shard_name)
    (out / "README.txt").write_text("the user's own note")
    second = plan_slices([(Path("b.csv"), 5)], rows_per_shard=10)
    with pytest.raises(DataError, match=r"another job.*--overwrite"):
        prepare_output(out, "job2", second, overwrite=False)
    assert len(list(out.glob("*.parquet"))) == 3  # refused: nothing removed
    assert prepare_output(out, "job2", second, overwrite=True) == set()
    assert sorted(p.name for p in out.iterdir()) == ["README.txt"]  # only what job1 wrote is gone
    # --overwrite on the same job starts over too
    write_manifest(out, "job2", {}, second, complete=True)
    _shard(out, second[0].shard_name)
    assert prepare_output(out, "job2", second, overwrite=True) == set()
    assert not (out / second[0].shard_name).exists()


def test_parquet_files_fmkit_did_not_write_are_refused_even_with_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    pq.write_table(pa.table({"x": [1]}), out / "someone-elses.parquet")
    slices = plan_slices([(Path("a.csv"), 5)], rows_per_shard=10)
    for overwrite in (False, True):
        with pytest.raises(DataError, match=r"did not write.*someone-elses\.parquet"):
            prepare_output(out, "job", slices, overwrite=overwrite)
    assert (out / "someone-elses.parquet").is_file()
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is a file"):
        prepare_output(tmp_path / "file", "job", slices, overwrite=False)


def test_manifest_lists_the_shards_and_completion(tmp_path: Path) -> None:
    slices = plan_slices([(Path("a.csv"), 15)], rows_per_shard=10)
    tmp_path.mkdir(exist_ok=True)
    write_manifest(tmp_path, "k", {"kind": "embed"}, slices, complete=True, rows=15)
    manifest = read_manifest(tmp_path)
    assert manifest == {"job": "k", "kind": "embed", "complete": True, "rows": 15,
                        "shards": [s.shard_name for s in slices]}
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(DataError, match="unreadable job manifest"):
        read_manifest(tmp_path)
    assert json.loads(json.dumps(slices[0].to_dict()))["first_row"] == 0
