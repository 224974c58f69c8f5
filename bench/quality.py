"""Accuracy with fmkit's defaults and the bundled model on real data (issue 2's quality table).

    python bench/quality.py                       # all datasets
    python bench/quality.py --only sst2 --write   # one dataset, and update BENCHMARKS.md

Each run is `fmkit train --strategy full` (fine-tuning every weight, head started from a quick linear
probe, auto precision) with its defaults except where the table says otherwise; wall time includes
tokenisation, the probe, evaluation and saving.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ISSUE2_SECTION, REPO, SHARED, machine, run_child, write_subsection

CHILD = r"""
import json, sys, time
sys.path.insert(0, "bench")
from _common import peak_rss_mb
import fmkit
train, evaluation, out, extra = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
start = time.perf_counter()
result = fmkit.train(data=train, eval=evaluation, output=out, **{"train.progress": False, "strategy.name": "full", **extra})
m = result.metrics
print(json.dumps({"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "epochs": m["epochs_completed"],
                  "train_examples_per_second": m["train_examples_per_second"], "wall_seconds": time.perf_counter() - start,
                  "peak_rss_mb": peak_rss_mb()}))
"""

DATASETS = {
    # name: (train, eval, overrides, what the eval is, reference)
    "sst2": ("sst2/SST-2/train.tsv", "sst2/SST-2/dev.tsv", {"train.epochs": 2}, "SST-2 dev (872)",
             "DistilBERT 91.3 (3x larger); target >= 90"),
    "twitter_fin": ("twitter_financial_news_sentiment/sent_train.csv", "twitter_financial_news_sentiment/sent_valid.csv",
                    {}, "valid (2,388)", ""),
    "banking77": ("banking77/train.csv", "banking77/test.csv", {"train.epochs": 5}, "test (3,080)", "BERT-base ~93"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", action="append", choices=sorted(DATASETS))
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    rows = []
    for name in args.only or list(DATASETS):
        train, evaluation, extra, what, reference = DATASETS[name]
        out = REPO / ".bench" / "quality" / name
        shutil.rmtree(out, ignore_errors=True)
        print(f"training {name}...", flush=True)
        r = run_child(CHILD, str(SHARED / train), str(SHARED / evaluation), str(out), json.dumps(extra))
        print("  ", json.dumps(r), flush=True)
        settings = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in extra.items()) or "defaults"
        rows.append(f"| {name} | {what} | {settings} | {100 * r['accuracy']:.1f}% | {100 * r['macro_f1']:.1f}% | "
                    f"{r['epochs']} | {r['train_examples_per_second']:.0f} | {r['wall_seconds'] / 60:.1f} | {reference} |")
    table = "\n".join(["| data | evaluated on | settings | accuracy | macro-F1 | epochs run | train ex/s | wall (min) | reference |",
                       "|---|---|---|---|---|---|---|---|---|", *rows])
    text = f"Bundled all-MiniLM-L6-v2, `fmkit train` defaults unless noted; {machine()}.\n\n{table}\n\n" \
           f"Command: `python bench/quality.py{''.join(' --only ' + o for o in (args.only or []))}`\n"
    print(text)
    if args.write:
        write_subsection(ISSUE2_SECTION, "### Quality with the default model", text)

if __name__ == "__main__":
    main()
