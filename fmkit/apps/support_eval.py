"""Evaluation harnesses for the support assistant on public data.

StackFAQ (Karan & Šnajder 2018; XML of threads with paraphrased queries): threads are split first,
so out-of-scope queries come from whole threads that are not in the FAQ (half of those threads
calibrate, half test); each in-scope thread's original question and part of its paraphrases form
the FAQ, other paraphrases calibrate the threshold, the rest are test queries.

CLINC150 (Larson et al. 2019; JSON with train/val/test and oos_* splits): the FAQ is the training
utterances grouped by intent (the "answer" is the intent), val + oos_val calibrate, test + oos_test
measure intent accuracy and out-of-scope precision/recall.

Both report the fused ranking and each retriever alone, so the gain of fusion is measured in the
same run; `calibration_curve` rebuilds the app with 0, 50, 200... calibration queries to show what
the learned fusion and threshold need.
"""

from __future__ import annotations

import json
import math
import random
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fmkit.apps.support import CachedEmbedder, FaqEntry, Reply, SupportAssistant, build_support
from fmkit.errors import DataError


def read_stackfaq(path: Path | str) -> list[dict[str, Any]]:
    """Threads as {question, answer (the first), queries (paraphrases, '*' placeholders dropped)}."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise DataError(f"{path}: cannot read the StackFAQ XML ({exc}).") from None
    threads = []
    for pair in root.iter("qapair"):
        queries = [(r.text or "").strip() for r in pair.findall("rephr")]
        answers = [(a.text or "").strip() for a in pair.findall("answer")]
        question = (pair.findtext("question") or "").strip()
        if question and answers:
            threads.append({"question": question, "answer": answers[0],
                            "queries": [q for q in queries if q and q != "*"]})
    if not threads:
        raise DataError(f"{path}: no <qapair> threads found.")
    return threads


def split_stackfaq(threads: list[dict[str, Any]], seed: int = 0, oos_share: float = 0.2, index_share: float = 0.4,
                   val_share: float = 0.2) -> tuple[list[FaqEntry], list[tuple[str, str | None]], list[tuple[str, str | None]]]:
    rng = random.Random(seed)
    order = list(range(len(threads)))
    rng.shuffle(order)
    n_oos = round(len(order) * oos_share)
    oos_ids, in_ids = order[:n_oos], order[n_oos:]
    entries: list[FaqEntry] = []
    val: list[tuple[str, str | None]] = []
    test: list[tuple[str, str | None]] = []
    for t in sorted(in_ids):
        thread = threads[t]
        queries = list(thread["queries"])
        rng.shuffle(queries)
        n_index = round(len(queries) * index_share)
        n_val = round(len(queries) * val_share)
        entry_id = f"thread-{t}"
        entries.append(FaqEntry(entry_id, thread["answer"], [thread["question"], *queries[:n_index]]))
        val.extend((q, entry_id) for q in queries[n_index:n_index + n_val])
        test.extend((q, entry_id) for q in queries[n_index + n_val:])
    for k, t in enumerate(oos_ids):
        (val if k % 2 == 0 else test).extend((q, None) for q in threads[t]["queries"])
    return entries, val, test


def read_clinc(path: Path | str, per_intent: int | None = None, test_per_intent: int | None = None,
               seed: int = 0) -> dict[str, list[tuple[str, str]]]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read the CLINC150 JSON ({exc}).") from None
    rng = random.Random(seed)

    def take(rows: list[list[str]], n: int | None) -> list[tuple[str, str]]:
        if n is None:
            return [(t, i) for t, i in rows]
        by: dict[str, list[tuple[str, str]]] = {}
        for t, i in rows:
            by.setdefault(i, []).append((t, i))
        out = []
        for i in sorted(by):
            group = by[i]
            rng.shuffle(group)
            out.extend(group[:n])
        return out

    return {"train": take(data["train"], per_intent), "val": take(data["val"], test_per_intent),
            "test": take(data["test"], test_per_intent), "oos_train": [(t, i) for t, i in data["oos_train"]],
            "oos_val": [(t, i) for t, i in data["oos_val"]], "oos_test": [(t, i) for t, i in data["oos_test"]]}


# --- metrics -------------------------------------------------------------------------------------------

def ranking_metrics(ranked: Sequence[Sequence[int]], gold: Sequence[int | None]) -> dict[str, float]:
    """accuracy@1, recall@5 and nDCG@10 (one relevant answer per query) over in-scope queries (gold not None)."""
    hits1, hits5, ndcg, n = 0, 0, 0.0, 0
    for order, g in zip(ranked, gold, strict=True):
        if g is None:
            continue
        n += 1
        top = list(order[:10])
        hits1 += int(len(top) > 0 and top[0] == g)
        hits5 += int(g in top[:5])
        ndcg += 1.0 / math.log2(top.index(g) + 2) if g in top else 0.0
    return {"accuracy@1": round(hits1 / max(n, 1), 4), "recall@5": round(hits5 / max(n, 1), 4),
            "ndcg@10": round(ndcg / max(n, 1), 4), "in_scope_queries": n}


def handoff_metrics(replies: Sequence[Reply], gold: Sequence[int | None], assistant: SupportAssistant) -> dict[str, float]:
    """Out-of-scope precision/recall of the hand-off, and how often an in-scope query gets a right answer."""
    oos_true = np.array([g is None for g in gold])
    handoff = np.array([r.handoff for r in replies])
    tp = float((handoff & oos_true).sum())
    precision = tp / max(handoff.sum(), 1)
    recall = tp / max(oos_true.sum(), 1)
    answered_right = [not r.handoff and r.entry_id == assistant.entries[g].id
                      for r, g in zip(replies, gold, strict=True) if g is not None]
    answered = [not r.handoff for r, g in zip(replies, gold, strict=True) if g is not None]
    return {
        "oos_precision": round(precision, 4), "oos_recall": round(recall, 4),
        "oos_f1": round(0.0 if tp == 0 else 2 * precision * recall / (precision + recall), 4),
        "in_scope_answered_right": round(float(np.mean(answered_right)) if answered_right else 0.0, 4),
        "in_scope_handed_off": round(1 - float(np.mean(answered)) if answered else 0.0, 4),
        "oos_queries": int(oos_true.sum()),
    }


def component_rankings(assistant: SupportAssistant, queries: Sequence[str]) -> dict[str, list[list[int]]]:
    """Top-10 entries by the fused score, by the question embeddings alone (plain semantic search, one hit
    per answer) and by BM25 alone (for the ablation in the same run)."""
    out: dict[str, list[list[int]]] = {"hybrid": [], "embedding": [], "bm25": []}
    for start in range(0, len(queries), 256):
        scores, _ = assistant.entry_scores(queries[start:start + 256])
        fused = scores.fused(assistant.settings.weights)
        for i in range(len(fused)):
            out["hybrid"].append(list(np.argsort(-fused[i], kind="stable")[:10]))
            out["embedding"].append(list(np.argsort(-scores.question[i], kind="stable")[:10]))
            bm = scores.bm25[i]
            out["bm25"].append(list(np.argsort(-bm, kind="stable")[:10]) if bm.max() > 0 else [])
    return out


def evaluate_queries(assistant: SupportAssistant, test: Sequence[tuple[str, str | None]]) -> dict[str, Any]:
    assistant.embedder = CachedEmbedder(assistant.embedder)  # the ablation re-ranks the same queries
    queries = [q for q, _ in test]
    gold = [assistant.gold_index(g) for _, g in test]
    start = time.perf_counter()
    replies = assistant.answer_many(queries)
    seconds = time.perf_counter() - start
    result: dict[str, Any] = {"queries": len(queries), "ms_per_query": round(1000 * seconds / max(len(queries), 1), 2)}
    for name, ranked in component_rankings(assistant, queries).items():
        result[name] = ranking_metrics(ranked, gold)
    result["handoff"] = handoff_metrics(replies, gold, assistant)
    result["threshold"] = round(assistant.settings.threshold, 4)
    result["weights"] = {k: v for k, v in vars(assistant.settings.weights).items()}
    return result


def sample_calibration(pairs: Sequence[tuple[str, str | None]], n: int, seed: int) -> list[tuple[str, str | None]]:
    """n queries drawn at random (in-scope and out-of-scope in their natural proportion)."""
    rng = random.Random(seed)
    return rng.sample(list(pairs), min(n, len(pairs)))


def calibration_curve(entries: list[FaqEntry], val: Sequence[tuple[str, str | None]],
                      test: Sequence[tuple[str, str | None]], sizes: Sequence[int], embedder: Any,
                      seed: int = 0, work_dir: Path | None = None) -> list[dict[str, Any]]:
    """Build the app with each number of calibration queries (0: phrasings held out of the FAQ instead) and
    evaluate it on the same test queries; the embeddings-only ranking is in every row."""
    embedder = CachedEmbedder(embedder)  # every build embeds the same FAQ and queries
    rows = []
    for n in sizes:
        calibration = sample_calibration(val, n, seed) if n > 0 else None
        with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
            build = build_support(entries, Path(tmp) / "app", calibration=calibration, embedder=embedder, seed=seed)
            assistant = SupportAssistant.load(build.app_dir, embedder=embedder)
            result = evaluate_queries(assistant, test)
        rows.append({"calibration_queries": n, **result, "calibration": build.calibration})
    return rows


# --- the two benchmarks -------------------------------------------------------------------------------

def eval_stackfaq(xml_path: Path | str, model: str = "all-MiniLM-L6-v2", seed: int = 0, work_dir: Path | None = None,
                  embedder: Any | None = None) -> dict[str, Any]:
    entries, val, test = split_stackfaq(read_stackfaq(xml_path), seed=seed)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        build = build_support(entries, Path(tmp) / "app", model=model, calibration=val, embedder=embedder)
        assistant = SupportAssistant.load(build.app_dir, embedder=embedder)
        result = evaluate_queries(assistant, test)
    result.update({"dataset": "stackfaq", "faq_entries": len(entries), "faq_phrasings": build.phrasings,
                   "calibration_queries": len(val), "calibration": build.calibration})
    return result


def clinc_faq(data: dict[str, list[tuple[str, str]]]
              ) -> tuple[list[FaqEntry], list[tuple[str, str | None]], list[tuple[str, str | None]]]:
    """CLINC150 (as `read_clinc` gives it) as an FAQ, one entry per intent with its training utterances as
    phrasings, and the val/test queries, out-of-scope ones with no answer (None)."""
    by_intent: dict[str, list[str]] = {}
    for text, intent in data["train"]:
        by_intent.setdefault(intent, []).append(text)
    entries = [FaqEntry(intent, f"[{intent}]", texts, intent) for intent, texts in sorted(by_intent.items())]
    val: list[tuple[str, str | None]] = [(t, i) for t, i in data["val"]] + [(t, None) for t, _ in data["oos_val"]]
    test: list[tuple[str, str | None]] = [(t, i) for t, i in data["test"]] + [(t, None) for t, _ in data["oos_test"]]
    return entries, val, test


def eval_clinc(json_path: Path | str, model: str = "all-MiniLM-L6-v2", per_intent: int | None = None,
               test_per_intent: int | None = None, intent_epochs: float = 0, seed: int = 0,
               work_dir: Path | None = None, embedder: Any | None = None,
               intent_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Intent accuracy and OOS precision/recall; intent_epochs > 0 also fine-tunes the intent re-ranker."""
    data = read_clinc(json_path, per_intent, test_per_intent, seed)
    entries, val, test = clinc_faq(data)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        intents_file = None
        if intent_epochs > 0:
            intents_file = Path(tmp) / "intents.csv"
            import csv

            with open(intents_file, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(["text", "label"])
                writer.writerows(data["train"])
        start = time.perf_counter()
        build = build_support(entries, Path(tmp) / "app", model=model, calibration=val, intents=intents_file,
                              intent_epochs=intent_epochs, seed=seed, embedder=embedder,
                              intent_overrides=intent_overrides)
        build_seconds = time.perf_counter() - start
        assistant = SupportAssistant.load(build.app_dir, embedder=embedder)
        result = evaluate_queries(assistant, test)
    result["intent_accuracy"] = result["hybrid"]["accuracy@1"]
    result.update({"dataset": "clinc150", "faq_entries": len(entries), "train_utterances": len(data["train"]),
                   "calibration_queries": len(val), "intent_classifier": intent_epochs > 0,
                   "build_seconds": round(build_seconds, 1), "calibration": build.calibration})
    return result
