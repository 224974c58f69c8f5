"""Embeddings and semantic search, side by side with what a user would otherwise pick.

  throughput  fmkit Embedder.embed vs sentence-transformers encode: same model, texts, batch size;
              rounds interleaved, median of each, ratio (and max |cosine - 1| between the two).
  index       build time and single-query latency p50/p99 at 10k and 100k random unit vectors (384-d):
              exact numpy (fmkit's exact backend), FAISS IndexFlatIP, hnswlib HNSW, FAISS HNSW;
              recall@10 of the HNSW ones against exact search.
  stackfaq    FAQ retrieval (query paraphrases -> thread), threads split 80/20 by seed: test queries
              against all 125 threads, bundled model before and after `--task embedding` fine-tuning
              on the training threads' (query, thread) pairs.
  clinc150    utterance -> intent retrieval (intent names as documents), before/after fine-tuning on
              a subsample of train (query, intent name) pairs; test queries subsampled.

    .venv/bin/python bench/embeddings.py [--only throughput,index,stackfaq,clinc150] [--index-sizes 10000,100000]
Prints one JSON object per section and writes .bench/embeddings.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
SHARED = REPO.parent / "shared" / "data"
WORK = REPO / ".bench" / "embeddings"


def report(name: str, result: dict[str, Any], all_results: dict[str, Any]) -> None:
    all_results[name] = result
    print(json.dumps({name: result}, indent=2), flush=True)


# -- data ------------------------------------------------------------------------------------------

def stackfaq_threads() -> list[dict[str, Any]]:
    root = ET.parse(SHARED / "stackfaq" / "stackExchange-FAQ.xml").getroot()
    threads = []
    for i, pair in enumerate(root.iter("qapair")):
        rephr = [" ".join((r.text or "").split()) for r in pair.iter("rephr")]
        question = " ".join((pair.findtext("question") or "").split())
        answers = [" ".join((a.text or "").split()) for a in pair.iter("answer")]
        threads.append({"id": f"t{i}", "queries": [q for q in rephr if q and q != "*"],
                        "doc": f"{question} {answers[0] if answers else ''}".strip()})
    return threads


def clinc150() -> dict[str, list[list[str]]]:
    data: dict[str, list[list[str]]] = json.loads((SHARED / "clinc150" / "data_full.json").read_text())
    return data


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# -- sections --------------------------------------------------------------------------------------

def bench_throughput(rounds: int, n_texts: int) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    from fmkit.inference.embedder import Embedder
    from fmkit.models.backbone import bundled_minilm_path

    texts = [q for t in stackfaq_threads() for q in t["queries"]] + [t["doc"] for t in stackfaq_threads()]
    texts += [u for u, _ in clinc150()["test"]]
    texts = random.Random(0).sample(texts, min(n_texts, len(texts)))
    ours = Embedder.load("all-MiniLM-L6-v2", batch_size=64)
    st = SentenceTransformer(str(bundled_minilm_path()), device="cpu")
    ours.embed(texts[:64])
    st.encode(texts[:64], batch_size=64)  # warm both up
    times: dict[str, list[float]] = {"fmkit": [], "sentence_transformers": []}
    a = b = None
    for r in range(rounds):  # interleaved, first one alternating, so load changes on the shared machine hit both alike
        for name in (("fmkit", "sentence_transformers") if r % 2 == 0 else ("sentence_transformers", "fmkit")):
            t = time.perf_counter()
            if name == "fmkit":
                a = ours.embed(texts)
            else:
                b = st.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
            times[name].append(time.perf_counter() - t)
    assert a is not None and b is not None
    med = {k: statistics.median(v) for k, v in times.items()}
    per_round = [s / f for f, s in zip(times["fmkit"], times["sentence_transformers"], strict=True)]
    return {"texts": len(texts), "rounds": rounds, "batch_size": 64,
            "median_seconds": {k: round(v, 3) for k, v in med.items()},
            "texts_per_second": {k: round(len(texts) / v, 1) for k, v in med.items()},
            "speed_ratio_fmkit_over_st": round(med["sentence_transformers"] / med["fmkit"], 3),
            "per_round_ratios": [round(x, 3) for x in per_round],
            "min_cosine_between_outputs": float((a * b).sum(1).min())}


def _latencies(fn: Any, queries: np.ndarray) -> tuple[float, float]:
    ts = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        ts.append(time.perf_counter() - t)
    return float(np.percentile(ts, 50) * 1e3), float(np.percentile(ts, 99) * 1e3)


def bench_index(sizes: list[int], n_queries: int, hnsw_max: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n in sizes:
        out[str(n)] = _index_at(n, n_queries, with_hnsw=n <= hnsw_max)
        print(json.dumps({f"index_{n}": out[str(n)]}), flush=True)
    return out


def _index_at(n: int, n_queries: int, with_hnsw: bool = True) -> dict[str, Any]:
    import faiss
    import hnswlib

    from fmkit.inference.index import VectorIndex

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    # queries near stored points (as real queries are near their answers), not isotropic noise
    q = x[rng.choice(n, n_queries)] + 0.5 * rng.standard_normal((n_queries, 384)).astype(np.float32) / np.sqrt(384)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    truth = np.argsort(-(q @ x.T), axis=1)[:, :10]
    ids = [str(i) for i in range(n)]
    res: dict[str, Any] = {}

    def recall(found: np.ndarray) -> float:
        return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)]))

    def row(build: float, search: Any, found: np.ndarray | None = None) -> dict[str, Any]:
        p50, p99 = _latencies(search, q)
        out = {"build_s": round(build, 3), "p50_ms": round(p50, 3), "p99_ms": round(p99, 3)}
        if found is not None:
            out["recall@10"] = round(recall(found), 4)
        return out

    t = time.perf_counter()
    exact = VectorIndex(384, backend="exact")
    exact.add(ids, x)
    res["fmkit_exact_numpy"] = row(time.perf_counter() - t, lambda v: exact.search(v, 10))

    t = time.perf_counter()
    flat = faiss.IndexFlatIP(384)
    flat.add(x)
    res["faiss_flat_ip"] = row(time.perf_counter() - t, lambda v: flat.search(v[None], 10))
    if not with_hnsw:
        return res

    t = time.perf_counter()
    graph = VectorIndex(384, backend="hnsw")
    graph.add(ids, x)
    build = time.perf_counter() - t
    found = np.array([[int(h.id) for h in hits] for hits in graph.search_many(q, 10)])
    res["fmkit_hnsw_hnswlib"] = row(build, lambda v: graph.search(v, 10), found)

    if n > 20_000:
        return res  # the raw-library duplicates of the HNSW build take minutes more; compared at 10k

    t = time.perf_counter()
    raw = hnswlib.Index(space="ip", dim=384)
    raw.init_index(max_elements=n, M=16, ef_construction=100, random_seed=0)
    raw.add_items(x, np.arange(n))
    build = time.perf_counter() - t
    raw.set_ef(64)
    res["hnswlib_raw"] = row(build, lambda v: raw.knn_query(v[None], k=10), raw.knn_query(q, k=10)[0])

    t = time.perf_counter()
    fh = faiss.IndexHNSWFlat(384, 16, faiss.METRIC_INNER_PRODUCT)
    fh.hnsw.efConstruction = 100
    fh.add(x)
    build = time.perf_counter() - t
    fh.hnsw.efSearch = 64
    res["faiss_hnsw"] = row(build, lambda v: fh.search(v[None], 10), fh.search(q, 10)[1])
    return res


def _retrieval_run(name: str, train_rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]], epochs: float,
                   batch_size: int, max_length: int) -> dict[str, Any]:
    import fmkit

    train = write_jsonl(WORK / f"{name}_train.jsonl", train_rows)
    evaluation = write_jsonl(WORK / f"{name}_eval.jsonl", eval_rows)
    shutil.rmtree(WORK / f"{name}_run", ignore_errors=True)  # a fresh run each time
    t = time.perf_counter()
    result = fmkit.train(data=str(train), eval=str(evaluation), epochs=epochs, output=str(WORK / f"{name}_run"),
                         **{"task.type": "embedding", "strategy.name": "full", "train.progress": False, "train.threads": torch_threads(),
                            "train.batch_size": batch_size, "train.learning_rate": 2e-5,
                            "data.max_length": max_length, "train.early_stopping_patience": 0})
    wall = time.perf_counter() - t
    m = result.metrics
    keys = ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10")
    return {"train_pairs": len(train_rows), "eval_queries": len(eval_rows), "epochs": epochs,
            "batch_size": batch_size, "max_length": max_length,
            "before": {k: round(m["baseline"][k], 4) for k in keys},
            "after": {k: round(m[k], 4) for k in keys},
            "train_seconds": m["train_seconds"], "wall_seconds": round(wall, 1)}


def bench_stackfaq(epochs: float, max_length: int) -> dict[str, Any]:
    threads = stackfaq_threads()
    order = random.Random(0).sample(range(len(threads)), len(threads))
    test_ids = set(order[: len(threads) // 5])
    train_rows = [{"query": q, "positive": t["doc"]} for i, t in enumerate(threads) if i not in test_ids
                  for q in t["queries"]]
    eval_rows = [{"query": q, "positive": t["doc"]} for i, t in enumerate(threads) if i in test_ids
                 for q in t["queries"]]
    out = _retrieval_run("stackfaq", train_rows, eval_rows, epochs, 32, max_length)
    out["split"] = f"{len(threads) - len(test_ids)} train threads / {len(test_ids)} test threads (seed 0); " \
                   "test queries ranked against all 125 threads"
    return out


def bench_clinc(epochs: float, per_intent: int, test_queries: int) -> dict[str, Any]:
    data = clinc150()
    rng = random.Random(0)
    by_intent: dict[str, list[str]] = {}
    for text, intent in data["train"]:
        by_intent.setdefault(intent, []).append(text)
    name = {i: i.replace("_", " ") for i in by_intent}
    train_rows = [{"query": u, "positive": name[i]} for i, us in sorted(by_intent.items())
                  for u in rng.sample(us, per_intent)]
    test = rng.sample(data["test"], test_queries)
    eval_rows = [{"query": u, "positive": name[i]} for u, i in test]
    out = _retrieval_run("clinc150", train_rows, eval_rows, epochs, 64, 32)
    out["setup"] = (f"documents = the 150 intent names ('freeze account'...); {per_intent} train utterances per intent; "
                    f"{test_queries} in-scope test utterances (seed 0); recall@1 = intent accuracy")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="throughput,index,stackfaq,clinc150")
    ap.add_argument("--index-sizes", default="10000,100000")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--hnsw-max", type=int, default=10**9, help="skip HNSW builds above this many vectors")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--stackfaq-max-length", type=int, default=64)
    ap.add_argument("--clinc-per-intent", type=int, default=20)
    ap.add_argument("--clinc-test", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both sides (see BENCHMARKS.md)")
    args = ap.parse_args()
    import torch

    # Both sides get the same thread count. On the shared machine (load ~15 on 2 cores) two threads spin-wait
    # on each other: a MiniLM forward+backward took 20-30 s with 2 threads and 5 s with 1.
    torch.set_num_threads(args.threads)
    WORK.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"command": " ".join([".venv/bin/python", *sys.argv]), "cores": os.cpu_count(),
                               "torch_threads": args.threads,
                               "load_average_at_start": os.getloadavg()[0]}
    only = set(args.only.split(","))
    if "throughput" in only:
        report("throughput", bench_throughput(args.rounds, args.texts), results)
    if "index" in only:
        report("index", bench_index([int(s) for s in args.index_sizes.split(",")], args.queries, args.hnsw_max),
               results)
    if "stackfaq" in only:
        report("stackfaq", bench_stackfaq(args.epochs, args.stackfaq_max_length), results)
    if "clinc150" in only:
        report("clinc150", bench_clinc(args.epochs, args.clinc_per_intent, args.clinc_test), results)
    results["load_average_at_end"] = os.getloadavg()[0]
    (WORK / f"results_{'_'.join(sorted(only))}.json").write_text(json.dumps(results, indent=2))
    print(f"written to {WORK}")


if __name__ == "__main__":
    main()
