"""Retrieval metrics (hand-computed values), document/relevance readers, vector files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fmkit.data.records import iter_records, read_relevance
from fmkit.errors import DataError
from fmkit.evaluation.retrieval import retrieval_metrics
from fmkit.inference.vector_files import read_vectors, write_vectors


def test_retrieval_metrics_by_hand() -> None:
    ranked = [["a", "b", "c"], ["x", "y", "z"], ["p", "q", "r"]]
    relevant = [{"a"}, {"z", "y"}, {"nope"}]
    m = retrieval_metrics(ranked, relevant, ks=(1, 2, 3), ndcg_k=3)
    assert m["recall@1"] == pytest.approx((1 + 0 + 0) / 3)
    assert m["recall@2"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert m["recall@3"] == pytest.approx((1 + 1 + 0) / 3)
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 0) / 3)
    ndcg_q2 = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert m["ndcg@3"] == pytest.approx((1 + ndcg_q2 + 0) / 3)
    assert m["num_queries"] == 3


def test_records_from_csv_jsonl_and_text(tmp_path: Path) -> None:
    csv_path = tmp_path / "docs.csv"
    csv_path.write_text("doc_id,title,lang\nd1,hello there,en\nd2,bonjour,fr\n", encoding="utf-8")
    recs = list(iter_records(csv_path))
    assert [(r.id, r.text, r.metadata) for r in recs] == [("d1", "hello there", {"title": "hello there", "lang": "en"}),
                                                          ("d2", "bonjour", {"title": "bonjour", "lang": "fr"})]
    jl = tmp_path / "docs.jsonl"
    jl.write_text('{"text": "a", "tag": 1}\n\n{"text": "b", "tag": 2}\n', encoding="utf-8")
    assert [(r.id, r.text, r.metadata) for r in iter_records(jl)] == [("0", "a", {"text": "a", "tag": 1}),
                                                                      ("1", "b", {"text": "b", "tag": 2})]
    txt = tmp_path / "docs.txt"
    txt.write_text("one\ntwo\n", encoding="utf-8")
    assert [r.id for r in iter_records(txt)] == ["0", "1"]
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 2: duplicate id '1'"):
        list(iter_records(dup))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"body": "a"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 1: cannot tell which column holds the text"):
        list(iter_records(bad))


def test_read_relevance(tmp_path: Path) -> None:
    jl = tmp_path / "q.jsonl"
    jl.write_text('{"query": "q1", "relevant": ["a", "b"]}\n{"query": "q2", "relevant": "c"}\n', encoding="utf-8")
    got = read_relevance(jl)
    assert [(q.query, set(q.relevant)) for q in got] == [("q1", {"a", "b"}), ("q2", {"c"})]
    csv_path = tmp_path / "q.csv"
    csv_path.write_text("query,relevant\nq1,a|b\nq2,\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 3: query without relevant ids"):
        read_relevance(csv_path)


@pytest.mark.parametrize("suffix", [".parquet", ".npy"])
def test_vector_files_roundtrip(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((2, 4)).astype(np.float32)
    out = tmp_path / f"v{suffix}"
    assert write_vectors(out, iter([(["x", "y", "z"], a), (["u", "v"], b)])) == 5
    ids, matrix = read_vectors(out)
    assert ids == ["x", "y", "z", "u", "v"]
    np.testing.assert_array_equal(matrix, np.concatenate([a, b]))
    assert matrix.dtype == np.float32
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name] + (["v.ids.jsonl"] if suffix == ".npy" else []))
    with pytest.raises(DataError, match=r"\.parquet or \.npy"):
        write_vectors(tmp_path / "v.csv", iter([]))
