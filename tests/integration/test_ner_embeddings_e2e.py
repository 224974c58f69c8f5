"""NER and semantic search end to end through the CLI on slices of the shared datasets (slow)."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import run_cli, shared

pytestmark = pytest.mark.slow


def conll_slice(src: Path, dst: Path, n: int) -> Path:
    sentences = [s for s in src.read_text(encoding="utf-8").split("\n\n") if s.strip()][:n]
    dst.write_text("\n\n".join(sentences) + "\n", encoding="utf-8")
    return dst


def test_wikiann_ner_train_eval_predict(tmp_path: Path) -> None:
    train = conll_slice(shared("wikiann_en", "train.conll"), tmp_path / "train.conll", 800)
    test = conll_slice(shared("wikiann_en", "test.conll"), tmp_path / "test.conll", 200)
    run = tmp_path / "run"
    proc = run_cli("train", "--task", "ner", "--data", str(train), "--eval", str(test), "--epochs", "2", "--quiet",
                   "--max-length", "64", "--output", str(run), "--set", "train.batch_size=16")
    assert proc.returncode == 0, proc.stderr
    assert "entity f1" in proc.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["f1"] > 0.3, metrics  # 800 sentences, 2 epochs: well above chance, far from converged
    assert set(metrics["per_type"]) == {"LOC", "ORG", "PER"}
    proc = run_cli("eval", str(run), "--data", str(test), "--json")
    assert proc.returncode == 0, proc.stderr
    # Same model and data; the train process and this one may use different thread counts, so near-tie
    # argmaxes can flip a few words: close, not bit-identical.
    assert json.loads(proc.stdout)["f1"] == pytest.approx(metrics["f1"], abs=0.01)
    proc = run_cli("predict", str(run), "-", input_text="Barack Obama visited the University of Chicago .\n")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    for ent in record["entities"]:
        assert record["text"][ent["start"]:ent["end"]] == ent["text"]


def test_wnut17_reader_and_bad_file_exit_code(tmp_path: Path) -> None:
    from fmkit.data.conll import read_ner

    data = read_ner(shared("wnut17", "wnut17train.conll"))
    assert len(data) == 3394 and len(data.entity_types) == 6
    bad = tmp_path / "bad.conll"
    bad.write_text("word\tO\nbroken-line-without-tag\n", encoding="utf-8")
    proc = run_cli("train", "--task", "ner", "--data", str(bad), "--output", str(tmp_path / "r"))
    assert proc.returncode == 2 and "line 2" in proc.stderr and "Traceback" not in proc.stderr


def test_stackfaq_index_search_and_eval(tmp_path: Path) -> None:
    root = ET.parse(shared("stackfaq", "stackExchange-FAQ.xml")).getroot()
    docs, queries = [], []
    for i, pair in enumerate(root.iter("qapair")):
        question = " ".join((pair.findtext("question") or "").split())
        docs.append({"id": f"t{i}", "text": question})
        queries += [{"query": " ".join((r.text or "").split()), "relevant": [f"t{i}"]} for r in pair.iter("rephr")
                    if (r.text or "").strip() not in ("", "*")]
    docs_file = tmp_path / "docs.jsonl"
    docs_file.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    q_file = tmp_path / "queries.jsonl"
    sample = random.Random(0).sample(queries, 300)
    q_file.write_text("".join(json.dumps(q) + "\n" for q in sample), encoding="utf-8")
    index = tmp_path / "faq.index"
    assert run_cli("index", "build", "all-MiniLM-L6-v2", str(docs_file), "--output", str(index)).returncode == 0
    proc = run_cli("search", str(index), "How can I delete my facebook account?", "-k", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    top = json.loads(proc.stdout.splitlines()[0])
    assert top["id"] == "t1" and "Facebook" in top["metadata"]["text"]
    proc = run_cli("index", "eval", str(index), str(q_file), "--json")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(proc.stdout)
    assert metrics["recall@10"] > 0.8 and metrics["mrr"] > 0.5, metrics  # the bundled model is good at paraphrase
    proc = run_cli("embed", "all-MiniLM-L6-v2", str(docs_file), "--output", str(tmp_path / "v.parquet"))
    assert proc.returncode == 0, proc.stderr
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "v.parquet")
    assert table.num_rows == 125 and table.column("id").to_pylist()[:2] == ["t0", "t1"]


def test_clinc150_embedding_finetune_improves_retrieval(tmp_path: Path) -> None:
    data = json.loads(shared("clinc150", "data_full.json").read_text())
    rng = random.Random(0)
    intents = sorted({i for _, i in data["train"]})[:40]
    keep = set(intents)
    train = [{"query": u, "positive": i.replace("_", " ")} for u, i in data["train"] if i in keep]
    train = rng.sample(train, 600)
    test = [{"query": u, "positive": i.replace("_", " ")} for u, i in data["test"] if i in keep]
    for name, rows in (("train", train), ("test", test)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    run = tmp_path / "run"
    proc = run_cli("train", "--task", "embedding", "--data", str(tmp_path / "train.jsonl"), "--eval",
                   str(tmp_path / "test.jsonl"), "--epochs", "1", "--quiet", "--max-length", "32", "--output", str(run),
                   "--set", "train.learning_rate=5e-5")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["recall@1"] > metrics["baseline"]["recall@1"] + 0.05, metrics
