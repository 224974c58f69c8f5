"""Support assistant on StackFAQ and CLINC150: hybrid (BM25 + MiniLM, fused) vs each retriever alone.

The "embedding" row is what plain sentence-transformers semantic search with the same model gives,
the "bm25" row what a BM25 library gives: all three rank the same queries in the same run.

    .venv/bin/python bench/apps_support.py [--per-intent N] [--intent-epochs E] > .bench/apps_support.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._common import SHARED, machine
from fmkit.apps.support_eval import eval_clinc, eval_stackfaq
from fmkit.inference.embedder import Embedder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-intent", type=int, default=None)
    parser.add_argument("--test-per-intent", type=int, default=None)
    parser.add_argument("--intent-epochs", type=float, default=0)
    parser.add_argument("--skip-stackfaq", action="store_true")
    args = parser.parse_args()
    embedder = Embedder.load("all-MiniLM-L6-v2")
    out = {"machine": machine()}
    if not args.skip_stackfaq:
        out["stackfaq"] = eval_stackfaq(SHARED / "stackfaq/stackExchange-FAQ.xml", embedder=embedder)
        print(json.dumps(out["stackfaq"]), file=sys.stderr)
    out["clinc150"] = eval_clinc(SHARED / "clinc150/data_full.json", per_intent=args.per_intent,
                                 test_per_intent=args.test_per_intent, intent_epochs=args.intent_epochs,
                                 embedder=embedder)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
