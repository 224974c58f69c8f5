"""VectorIndex: exact and HNSW answers, metadata, add/replace/delete, atomic save and reload."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fmkit.errors import DataError, ModelError
from fmkit.inference.index import VectorIndex
from fmkit.inference.search import SemanticSearch


def unit(rng: np.random.Generator, n: int, dim: int = 8) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_exact_search_orders_by_cosine_and_returns_metadata() -> None:
    index = VectorIndex(3, backend="exact")
    vecs = np.array([[1, 0, 0], [0, 1, 0], [0.8, 0.6, 0], [0, 0, 5]], dtype=np.float32)  # unnormalised on purpose
    index.add(["a", "b", "c", "d"], vecs, [{"t": "A"}, {"t": "B"}, {"t": "C"}, {"t": "D"}])
    hits = index.search(np.array([2, 0, 0]), k=3)
    assert [h.id for h in hits] == ["a", "c", "b"]
    assert hits[0].score == pytest.approx(1.0) and hits[1].score == pytest.approx(0.8)
    assert hits[1].metadata == {"t": "C"}
    assert index.search(np.array([0, 0, 1.0]), k=10)[0].id == "d"
    assert len(index.search(np.array([0, 0, 1.0]), k=10)) == 4  # k larger than the index


def test_delete_and_replace() -> None:
    index = VectorIndex(3, backend="exact")
    index.add(["a", "b"], np.eye(3, dtype=np.float32)[:2])
    assert index.delete(["a", "zzz"]) == 1
    assert "a" not in index and len(index) == 1
    assert [h.id for h in index.search(np.array([1, 0, 0]), k=5)] == ["b"]
    index.add(["b"], np.array([[0, 0, 1]], dtype=np.float32), [{"v": 2}])  # replaces b
    hits = index.search(np.array([0, 0, 1]), k=5)
    assert [(h.id, h.metadata) for h in hits] == [("b", {"v": 2})]
    index.compact()
    assert len(index) == 1 and index.get("b")[1] == {"v": 2}


def test_bad_input_errors() -> None:
    index = VectorIndex(3)
    with pytest.raises(DataError, match="dimension 3"):
        index.add(["a"], np.zeros((1, 4), dtype=np.float32))
    with pytest.raises(DataError, match="duplicate ids"):
        index.add(["a", "a"], np.ones((2, 3), dtype=np.float32))
    with pytest.raises(DataError, match="must match"):
        index.add(["a"], np.ones((2, 3), dtype=np.float32))


def test_hnsw_matches_exact_and_survives_save_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = unit(rng, 400)
    ids = [f"id{i}" for i in range(400)]
    exact = VectorIndex(8, backend="exact")
    graph = VectorIndex(8, backend="auto", exact_threshold=300)  # crosses the threshold during the second add
    for index in (exact, graph):
        index.add(ids[:200], data[:200], [{"row": i} for i in range(200)])
        index.add(ids[200:], data[200:], [{"row": i} for i in range(200, 400)])
    assert exact.active_backend == "exact" and graph.active_backend == "hnsw"
    queries = unit(rng, 20)
    want = [[h.id for h in hits] for hits in exact.search_many(queries, k=5)]
    got = [[h.id for h in hits] for hits in graph.search_many(queries, k=5, ef=200)]
    assert np.mean([len(set(a) & set(b)) / 5 for a, b in zip(want, got, strict=True)]) >= 0.95
    graph.delete(["id0", "id1"])
    graph.add(["new"], data[:1], [{"row": "new"}])
    graph.save(tmp_path / "idx")
    again = VectorIndex.load(tmp_path / "idx")
    assert again.active_backend == "hnsw" and len(again) == 399
    top = again.search(data[0], k=3)
    assert top[0].id == "new" and top[0].metadata == {"row": "new"}
    assert "id0" not in {h.id for h in again.search(data[0], k=50)}
    assert "id1" not in {h.id for h in again.search(data[1], k=50)}


def test_save_is_atomic_and_load_checks(tmp_path: Path) -> None:
    index = VectorIndex(3, model="m")
    index.add(["a"], np.ones((1, 3), dtype=np.float32), [{"x": 1}])
    index.save(tmp_path / "idx")
    index.add(["b"], np.eye(3, dtype=np.float32)[:1])
    index.save(tmp_path / "idx")  # overwrite in one rename
    assert len(VectorIndex.load(tmp_path / "idx")) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left behind
    with pytest.raises(ModelError, match=r"index\.json"):
        VectorIndex.load(tmp_path)


def test_semantic_search_roundtrip(tiny_model: Path, tmp_path: Path) -> None:
    texts = ["shares jump after profit report", "the movie was awful", "bank stock drop", "great film plot"]
    search = SemanticSearch.build(tiny_model, ["s1", "s2", "s3", "s4"], texts, [{"text": t} for t in texts], chunk=3)
    search.save(tmp_path / "idx")
    loaded = SemanticSearch.load(tmp_path / "idx")
    for i, text in enumerate(texts):
        hit = loaded.search(text, k=1)[0]
        assert hit.id == f"s{i + 1}" and hit.metadata["text"] == text and hit.score == pytest.approx(1.0, abs=1e-4)


def test_cli_index_build_search_delete(tiny_model: Path, tmp_path: Path) -> None:
    import json

    from tests.conftest import run_cli

    docs = tmp_path / "docs.csv"
    docs.write_text("id,text,source\na1,shares jump after profit report,news\na2,the movie was awful,review\n",
                    encoding="utf-8")
    index = tmp_path / "idx"
    proc = run_cli("index", "build", str(tiny_model), str(docs), "--output", str(index))
    assert proc.returncode == 0, proc.stderr
    assert "index: embed: 2 texts, " in proc.stderr  # a progress line off a terminal, then the summary
    proc = run_cli("search", str(index), "the movie was awful", "-k", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    hit = json.loads(proc.stdout)
    assert hit["id"] == "a2" and hit["metadata"] == {"text": "the movie was awful", "source": "review"}
    assert run_cli("index", "delete", str(index), "a2").returncode == 0
    proc = run_cli("search", str(index), "the movie was awful", "--json")
    assert [json.loads(line)["id"] for line in proc.stdout.splitlines()] == ["a1"]
    proc = run_cli("search", str(tmp_path / "missing"), "x")
    assert proc.returncode == 2 and "index.json" in proc.stderr and "Traceback" not in proc.stderr


# --- grouped indexes: several FAQ questions (and the answer text) per answer id --------------------------

def faq_index(backend: str = "exact") -> VectorIndex:
    index = VectorIndex(3, backend=backend, group_key="answer_id")  # type: ignore[arg-type]
    rows = {"r1": ([1.0, 0.0, 0.0], "a1"), "r2": ([0.9, 0.1, 0.0], "a1"), "r3": ([0.7, 0.7, 0.0], "a2"),
            "a2#answer": ([0.0, 1.0, 0.0], "a2"), "r5": ([0.0, 0.0, 1.0], "a3")}
    index.add(list(rows), np.array([v for v, _ in rows.values()], dtype=np.float32),
              [{"answer_id": g} for _, g in rows.values()])
    return index


@pytest.mark.parametrize("backend", ["exact", "hnsw"])
def test_grouped_search_returns_one_hit_per_answer_scored_by_its_best_row(backend: str) -> None:
    index = faq_index(backend)
    hits = index.search(np.array([1.0, 0.2, 0.0]), k=10)
    # r1 and r2 are both a1: one hit, scored by the better row; a2's best is r3 (0.94), then a3.
    assert [h.id for h in hits] == ["a1", "a2", "a3"]
    r2_cosine = 0.92 / (np.linalg.norm([0.9, 0.1]) * np.linalg.norm([1.0, 0.2]))  # 0.9963 > r1's 0.9806
    assert hits[0].metadata["matched_id"] == "r2" and hits[0].score == pytest.approx(r2_cosine, abs=1e-6)
    assert hits[1].metadata["matched_id"] == "r3"
    assert [h.id for h in index.search(np.array([0.0, 1.0, 0.0]), k=2)] == ["a2", "a1"]  # matched on the answer text
    assert [h.id for h in index.search(np.array([1.0, 0.2, 0.0]), k=1)] == ["a1"]


def test_grouped_index_saves_its_group_key_and_deletes_whole_answers(tmp_path: Path) -> None:
    index = faq_index()
    index.save(tmp_path / "idx")
    loaded = VectorIndex.load(tmp_path / "idx")
    assert loaded.group_key == "answer_id"
    assert loaded.delete(["a1"]) == 2 and len(loaded) == 3  # an answer id stands for all its rows
    assert loaded.delete(["r3"]) == 1  # a row id still deletes one row
    assert [h.id for h in loaded.search(np.array([1.0, 0.2, 0.0]), k=10)] == ["a2", "a3"]


def test_faq_records_share_answer_ids_but_keep_row_ids_unique(tmp_path: Path) -> None:
    from fmkit.data.faq_records import detect_group_column, grouped_records

    faq = tmp_path / "faq.csv"
    faq.write_text("id,question,answer\na22,reset password,Use the link.\na22,forgot password,Use the link.\n"
                   "a23,delete account,Settings.\n")
    assert detect_group_column(faq, None, None) is None  # the id column repeats: say --group-column id
    records = list(grouped_records(faq, "id"))
    assert [(r.id, r.text, r.metadata["field"]) for r in records] == [
        ("a22#1", "reset password", "question"), ("a22#answer", "Use the link.", "answer"),
        ("a22#2", "forgot password", "question"), ("a23#1", "delete account", "question"),
        ("a23#answer", "Settings.", "answer")]
    assert {r.metadata["id"] for r in records} == {"a22", "a23"}
    assert [r.id for r in grouped_records(faq, "id", answers=False)] == ["a22#1", "a22#2", "a23#1"]

    own_ids = tmp_path / "faq2.csv"
    own_ids.write_text("id,answer_id,question,answer\nq1,a22,reset password,x\nq1,a22,forgot password,x\n")
    assert detect_group_column(own_ids, None, None) == "answer_id"
    with pytest.raises(DataError, match="row 2: duplicate row id 'q1'"):
        list(grouped_records(own_ids, "answer_id"))


def test_cli_index_of_an_faq_with_shared_answer_ids(tiny_model: Path, tmp_path: Path) -> None:
    import contextlib
    import io
    import json

    from fmkit.cli import main

    faq = tmp_path / "faq.csv"
    faq.write_text("id,question,answer\na22,reset my password,Use the link.\na22,i forgot my password,Use the link.\n"
                   "a23,delete my account,Open settings.\n")

    def cli(*args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
        return code, out.getvalue(), err.getvalue()

    code, _, err = cli("index", "build", str(tiny_model), str(faq), "--output", str(tmp_path / "plain"))
    assert code == 2 and "duplicate id 'a22'" in err and "--group-column" in err
    code, _, err = cli("index", "build", str(tiny_model), str(faq), "--output", str(tmp_path / "idx"),
                       "--group-column", "id")
    assert code == 0, err
    code, out, _ = cli("search", str(tmp_path / "idx"), "i forgot my password", "-k", "10", "--json")
    hits = [json.loads(line) for line in out.splitlines()]
    assert [h["id"] for h in hits] == ["a22", "a23"]  # five rows, two answers
    assert hits[0]["metadata"]["matched_id"] == "a22#2" and hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    (tmp_path / "q.csv").write_text("query,relevant\ni forgot my password,a22\ndelete my account,a23\n")
    code, out, err = cli("index", "eval", str(tmp_path / "idx"), str(tmp_path / "q.csv"), "--json")
    assert code == 0, err
    assert json.loads(out)["recall@1"] == 1.0
