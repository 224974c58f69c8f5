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
