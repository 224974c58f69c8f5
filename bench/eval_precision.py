"""Accuracy and speed of a saved text classifier evaluated in fp32 and in bf16, side by side.

For each MODEL_DIR:TEST_TSV pair (TSV with text/label columns, e.g. the ladder's .bench/*_test_*.tsv and
.bench/runs/ladder_*/model), both precisions predict the whole file, interleaved round by round so a
drifting machine load hits both alike; prints accuracy, agreement of the two predictions and the median
texts/s. bf16 only pays on CPUs with native bf16 (AMX / AVX512-BF16): see `native bf16` in the header.

    python bench/eval_precision.py .bench/runs/ladder_banking77_full_s0_full/model:.bench/banking77_test_3080.tsv \
        --rounds 3 --threads 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _common import WORK, machine


def read_test(path: Path) -> tuple[list[str], list[str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("pairs", nargs="+", metavar="MODEL_DIR:TEST_TSV")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(WORK / "eval_precision.jsonl"))
    args = ap.parse_args()

    import torch

    from fmkit.inference.predictor import Predictor
    from fmkit.models.precision import cpu_has_native_bf16

    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}, native bf16: {cpu_has_native_bf16()}, torch threads: {args.threads}\n")
    rows = []
    for pair in args.pairs:
        model_dir, test_path = (Path(p) for p in pair.rsplit(":", 1))
        texts, labels = read_test(test_path)
        gold = np.asarray(labels)
        predictors = {p: Predictor.load(model_dir, backend="torch", precision=p) for p in ("fp32", "bf16")}
        rates: dict[str, list[float]] = {p: [] for p in predictors}
        preds: dict[str, np.ndarray] = {}
        for predictor in predictors.values():
            predictor.predict_proba(texts[:64])  # warm-up
        for _ in range(args.rounds):
            for name, predictor in predictors.items():
                start = time.perf_counter()
                probs = predictor.predict_proba(texts)
                rates[name].append(len(texts) / (time.perf_counter() - start))
                preds[name] = np.asarray(predictor.labels)[probs.argmax(1)]
        row = {"model": str(model_dir), "test": str(test_path), "texts": len(texts),
               **{f"{p}_accuracy": float((preds[p] == gold).mean()) for p in predictors},
               **{f"{p}_texts_per_s": round(statistics.median(rates[p]), 1) for p in predictors},
               "agreement": float((preds["fp32"] == preds["bf16"]).mean()),
               "speedup": round(statistics.median(rates["bf16"]) / statistics.median(rates["fp32"]), 2),
               "rounds": args.rounds, "threads": args.threads}
        rows.append(row)
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")
    print("\n| model | test texts | fp32 accuracy | bf16 accuracy | agreement | fp32 texts/s | bf16 texts/s | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {Path(r['model']).parent.name} | {r['texts']} | {100 * r['fp32_accuracy']:.2f} | "
              f"{100 * r['bf16_accuracy']:.2f} | {100 * r['agreement']:.2f} | {r['fp32_texts_per_s']} | "
              f"{r['bf16_texts_per_s']} | {r['speedup']}x |")


if __name__ == "__main__":
    main()
