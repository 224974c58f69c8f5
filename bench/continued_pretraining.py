"""Does continued MLM pretraining on the domain's own unlabelled text help? With and without, side by side.

1. `fmkit pretrain` on the texts of twitter_financial_news_sentiment's train split (labels dropped; the
   validation texts stay unseen, so nothing about the test set leaks into the backbone).
2. The same fmkit strategies on its labels (train -> valid), from the bundled MiniLM and from the
   pretrained backbone: fewshot at k examples per class (several seeds) and full on the whole train split.

    python bench/continued_pretraining.py --epochs 3 --k 8 --seeds 0 1 2 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, machine
from _strategy_data import load, per_class, stratified_rows, write_tsv
from strategies_ladder import run_tool


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tools", nargs="+", default=["fewshot", "full"])
    ap.add_argument("--out", default=str(WORK / "continued_pretraining.jsonl"))
    a = ap.parse_args()

    train, test = load("twitter_fin")
    corpus = WORK / "twitter_fin_train_texts.txt"
    corpus.write_text("\n".join(t.replace("\n", " ") for t in train.texts) + "\n", encoding="utf-8")
    run_dir = WORK / "runs" / "twitter_fin_mlm"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "fmkit", "pretrain", "--data", str(corpus), "--output", str(run_dir), "--overwrite",
         "--epochs", str(a.epochs), "--quiet", "--set", f"train.threads={a.threads}"],
        capture_output=True, text=True, check=False, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    pretrain_seconds = time.perf_counter() - start
    pre = json.loads((run_dir / "metrics.json").read_text())
    print(f"pretrain: {len(train.texts)} texts, {a.epochs} epochs, {pretrain_seconds:.0f}s, held-out perplexity "
          f"{pre['perplexity_before']:.2f} -> {pre['perplexity']:.2f}", flush=True)

    test_path = write_tsv(test, "twitter_fin_test_all")
    rows = []
    backbones = {"MiniLM": {}, "MiniLM+MLM": {"model.name": str(run_dir / "model")}}
    for tool in a.tools:
        splits = ([(f"k{a.k}", s, per_class(train, a.k, s)) for s in a.seeds] if tool == "fewshot"
                  else [("full", 0, stratified_rows(train, None))])
        for size, seed, split in splits:
            train_path = write_tsv(split, f"twitter_fin_{size}_s{seed}")
            for backbone, extra in backbones.items():
                result = run_tool(tool, train_path, test_path, seed, a.threads, extra, f"tf_{size}_s{seed}_{backbone}")
                row = {"tool": tool, "size": size, "seed": seed, "backbone": backbone, **result}
                print(json.dumps(row), flush=True)
                rows.append(row)
                with open(a.out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")

    print(f"\nmachine: {machine()}; pretraining {a.epochs} epochs on {len(train.texts)} texts: {pretrain_seconds:.0f}s, "
          f"held-out perplexity {pre['perplexity_before']:.2f} -> {pre['perplexity']:.2f}")
    print("| strategy | size | backbone | runs | accuracy mean (min-max) | macro-F1 mean | median s |")
    print("|---|---|---|---|---|---|---|")
    for tool in a.tools:
        for backbone in backbones:
            sel = [r for r in rows if r["tool"] == tool and r["backbone"] == backbone]
            accs = [r["accuracy"] for r in sel]
            print(f"| {tool} | {sel[0]['size']} | {backbone} | {len(sel)} | {100 * statistics.mean(accs):.1f} "
                  f"({100 * min(accs):.1f}-{100 * max(accs):.1f}) | {100 * statistics.mean(r['macro_f1'] for r in sel):.1f} "
                  f"| {statistics.median(r['seconds'] for r in sel):.0f} |")


if __name__ == "__main__":
    main()
