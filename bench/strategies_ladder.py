"""The strategy ladder: every fmkit strategy (and reference tools) on the same splits, accuracy + wall time.

  datasets  sst2 (train -> dev), ag_news (dev.tsv -> test.tsv), banking77 (train -> test), twitter_fin
  sizes     k examples per class (--k 8 64, --seeds 0 1 2) and/or the full training set (--full;
            --full-seeds 0 1 2 trains it with several train.seed values)
  tools     zeroshot linear-probe fewshot lora full auto  (fmkit strategies)
            sklearn-lr  (sentence-transformers embeddings + scikit-learn LogisticRegression: the usual baseline)

Every run is a fresh process with its own empty embedding cache (no run profits from another's
vectors), timed from start to test predictions. Results append to .bench/ladder.jsonl; the summary
gives mean/min/max accuracy and median seconds per (dataset, size, tool), plus time ratios against
--ratio-base (default sklearn-lr for linear-probe, full for lora).

    python bench/strategies_ladder.py --datasets sst2 --full --train-rows 20000 --tools linear-probe sklearn-lr
    python bench/strategies_ladder.py --datasets sst2 --full --train-rows 2000 --tools lora full --set train.epochs=2
    python bench/strategies_ladder.py --datasets sst2 ag_news banking77 --k 8 64 --seeds 0 1 2 --full   # everything
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, machine, run_child
from _strategy_data import load, per_class, stratified_rows, write_tsv

FMKIT_CHILD = r"""
import json, sys, time
start = time.perf_counter()
import fmkit
result = fmkit.train(data=sys.argv[1], eval=sys.argv[2], output=sys.argv[5], seed=int(sys.argv[4]),
                     **{"train.progress": False, "train.threads": int(sys.argv[3]), **json.loads(sys.argv[6])})
m = result.metrics
print(json.dumps({"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "seconds": round(time.perf_counter() - start, 1),
                  "strategy": m["strategy"], "train_seconds": m["train_seconds"], "details": m.get("strategy_details")}))
"""

SKLEARN_CHILD = r"""
import json, sys, time
start = time.perf_counter()
import torch
torch.set_num_threads(int(sys.argv[3]))
import pandas as pd
from sentence_transformers import SentenceTransformer
from sklearn.linear_model import LogisticRegression
from fmkit.models.backbone import bundled_minilm_path
train = pd.read_csv(sys.argv[1], sep="\t", dtype=str, keep_default_na=False)
test = pd.read_csv(sys.argv[2], sep="\t", dtype=str, keep_default_na=False)
encoder = SentenceTransformer(str(bundled_minilm_path()), device="cpu")
x_train = encoder.encode(train.text.tolist(), batch_size=64, normalize_embeddings=False)
x_test = encoder.encode(test.text.tolist(), batch_size=64, normalize_embeddings=False)
clf = LogisticRegression(max_iter=1000).fit(x_train, train.label)
acc = float((clf.predict(x_test) == test.label.to_numpy()).mean())
print(json.dumps({"accuracy": acc, "seconds": round(time.perf_counter() - start, 1)}))
"""

RATIO_BASE = {"linear-probe": "sklearn-lr", "lora": "full", "fewshot": "setfit"}


def run_tool(tool: str, train_path: Path, test_path: Path, seed: int, threads: int, extra: dict[str, Any],
             tag: str) -> dict[str, Any]:
    env = {"OMP_NUM_THREADS": str(threads)}
    with tempfile.TemporaryDirectory(prefix="fmkit-cache-") as cache:
        env["FMKIT_CACHE_DIR"] = cache  # every run computes its own vectors
        if tool == "sklearn-lr":
            return run_child(SKLEARN_CHILD, str(train_path), str(test_path), str(threads), str(seed), env=env)
        out = WORK / "runs" / f"ladder_{tag}_{tool}"
        cfg = {"strategy.name": tool, **extra}
        shutil.rmtree(out, ignore_errors=True)
        return run_child(FMKIT_CHILD, str(train_path), str(test_path), str(threads), str(seed), str(out), json.dumps(cfg),
                         env=env)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["sst2", "ag_news", "banking77"])
    ap.add_argument("--k", type=int, nargs="*", default=[])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--full", action="store_true", help="also the whole training set (see --train-rows)")
    ap.add_argument("--train-rows", type=int, default=None, help="subsample the full training set (stratified)")
    ap.add_argument("--full-seeds", type=int, nargs="+", default=[0],
                    help="train.seed values for --full (the same training rows each time; --seeds is for --k samples)")
    ap.add_argument("--test-rows", type=int, default=2000)
    ap.add_argument("--tools", nargs="+", default=["zeroshot", "linear-probe", "fewshot", "lora", "full", "sklearn-lr"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fmkit config for every fmkit run")
    ap.add_argument("--out", default=str(WORK / "ladder.jsonl"))
    a = ap.parse_args()
    extra: dict[str, Any] = {}
    for item in a.set:
        key, value = item.split("=", 1)
        try:
            extra[key] = json.loads(value)  # numbers, true/false, lists
        except json.JSONDecodeError:
            extra[key] = value  # plain strings such as 10m
    rows: list[dict[str, Any]] = []
    for ds in a.datasets:
        train, test = load(ds)
        test_path = write_tsv(stratified_rows(test, a.test_rows), f"{ds}_test_{a.test_rows}")
        sizes: list[tuple[str, int, Any]] = [(f"k{k}", seed, per_class(train, k, seed)) for k in a.k for seed in a.seeds]
        if a.full:
            full_split = stratified_rows(train, a.train_rows)
            sizes += [(f"full{a.train_rows or ''}", seed, full_split) for seed in a.full_seeds]
        for size, seed, split in sizes:
            train_path = write_tsv(split, f"{ds}_{size}_s{seed}")
            for tool in a.tools:
                result = run_tool(tool, train_path, test_path, seed, a.threads, extra, f"{ds}_{size}_s{seed}")
                row = {"dataset": ds, "size": size, "seed": seed, "train_rows": len(split.texts), "tool": tool,
                       "config": extra, **result}
                print(json.dumps(row), flush=True)
                rows.append(row)
                with open(a.out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
    print(f"\nmachine: {machine()}, torch threads per run: {a.threads}, test rows: {a.test_rows}")
    print("| dataset | size | tool | runs | accuracy mean (min-max) | median s | time ratio (median) |")
    print("|---|---|---|---|---|---|---|")
    keys = sorted({(r["dataset"], r["size"], r["tool"]) for r in rows}, key=lambda k: (k[0], k[1], a.tools.index(k[2])))
    for ds, size, tool in keys:
        sel = [r for r in rows if (r["dataset"], r["size"], r["tool"]) == (ds, size, tool)]
        accs = [r["accuracy"] for r in sel]
        secs = [r["seconds"] for r in sel]
        base = RATIO_BASE.get(tool)
        ratio = ""
        if base:
            pairs = [(r, b) for r in sel for b in rows if (b["dataset"], b["size"], b["tool"], b["seed"]) == (ds, size, base, r["seed"])]
            if pairs:
                ratio = f"{statistics.median(r['seconds'] / b['seconds'] for r, b in pairs):.2f} vs {base}"
        print(f"| {ds} | {size} | {tool} | {len(sel)} | {100 * statistics.mean(accs):.1f} ({100 * min(accs):.1f}-{100 * max(accs):.1f}) "
              f"| {statistics.median(secs):.0f} | {ratio} |")


if __name__ == "__main__":
    main()
