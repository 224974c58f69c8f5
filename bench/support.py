"""Support assistant (issue 21): learned fusion vs embeddings-only retrieval on StackFAQ and CLINC150, and the
learning curve over the number of calibration queries, all on the same held-out test queries in one run.

Each row of the curve rebuilds the app with N calibration queries drawn from the validation split
(N = 0: phrasings held out of the FAQ itself calibrate instead) and reports, on the test split:
  hybrid     what the assistant answers with (fusion weights learned from the calibration queries)
  embedding  plain semantic search over the FAQ questions, one hit per answer (sentence-transformers'
             semantic_search with the same model, deduplicated per answer)
  bm25       BM25 alone
with accuracy@1, recall@5 and nDCG@10 over in-scope queries, and the out-of-scope hand-off F1.

    flock /tmp/fmkit/heavy.lock .venv/bin/python bench/support.py [--clinc-per-intent 50] > .bench/support.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._common import SHARED, machine
from fmkit.apps.support import FaqEntry
from fmkit.apps.support_eval import calibration_curve, clinc_faq, read_clinc, read_stackfaq, split_stackfaq
from fmkit.inference.embedder import Embedder


def clinc_split(per_intent: int | None, test_per_intent: int | None, seed: int
                ) -> tuple[list[FaqEntry], list[tuple[str, str | None]], list[tuple[str, str | None]]]:
    return clinc_faq(read_clinc(SHARED / "clinc150/data_full.json", per_intent, test_per_intent, seed))


def summary(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    keep = []
    for row in rows:
        hybrid, emb, bm25, hand = (row[k] for k in ("hybrid", "embedding", "bm25", "handoff"))
        assert isinstance(hybrid, dict) and isinstance(emb, dict) and isinstance(bm25, dict) and isinstance(hand, dict)
        keep.append({"calibration_queries": row["calibration_queries"], "weights": row["weights"],
                     "hybrid_acc1": hybrid["accuracy@1"], "embedding_acc1": emb["accuracy@1"],
                     "bm25_acc1": bm25["accuracy@1"], "hybrid_ndcg10": hybrid["ndcg@10"],
                     "embedding_ndcg10": emb["ndcg@10"], "bm25_ndcg10": bm25["ndcg@10"],
                     "oos_f1": hand["oos_f1"], "oos_precision": hand["oos_precision"], "oos_recall": hand["oos_recall"],
                     "in_scope_answered_right": hand["in_scope_answered_right"], "threshold": row["threshold"]})
    return keep


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 50, 200, -1], help="-1: the whole validation split")
    parser.add_argument("--clinc-per-intent", type=int, default=None, help="training utterances per intent (default all)")
    parser.add_argument("--clinc-test-per-intent", type=int, default=None, help="val/test utterances per intent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-clinc", action="store_true")
    parser.add_argument("--stackfaq-index-share", type=float, default=0.4,
                        help="share of each thread's paraphrases put into the FAQ beside its question (0: the FAQ "
                             "holds each thread's original question only, as an FAQ written before any user asked)")
    args = parser.parse_args()
    embedder = Embedder.load("all-MiniLM-L6-v2")
    out: dict[str, object] = {"machine": machine(), "load_average_before": os.getloadavg(),
                              "stackfaq_index_share": args.stackfaq_index_share}
    threads = read_stackfaq(SHARED / "stackfaq/stackExchange-FAQ.xml")
    datasets = {"stackfaq": split_stackfaq(threads, seed=args.seed, index_share=args.stackfaq_index_share)}
    if not args.skip_clinc:
        datasets["clinc150"] = clinc_split(args.clinc_per_intent, args.clinc_test_per_intent, args.seed)
    for name, (entries, val, test) in datasets.items():
        start = time.perf_counter()
        sizes = [len(val) if n < 0 else n for n in args.sizes]
        rows = calibration_curve(entries, val, test, sizes, embedder, seed=args.seed)
        out[name] = {"faq_answers": len(entries), "faq_phrasings": sum(len(e.phrasings) for e in entries),
                     "validation_queries": len(val), "test_queries": len(test),
                     "test_in_scope": sum(g is not None for _, g in test), "seconds": round(time.perf_counter() - start),
                     "curve": summary(rows), "details": rows}
        print(json.dumps({name: summary(rows)}), file=sys.stderr)
    out["load_average_after"] = os.getloadavg()
    print(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
