"""fmkit `fewshot` vs SetFit (the PyPI package, offline, same MiniLM folder), side by side, k examples per class.

Each run is a fresh process timed from start to predictions on the test rows (model load,
training, prediction; fmkit also writes its run directory). Same samples, same test rows.

    python bench/setfit_compare.py --datasets sst2 ag_news --k 8 --seeds 0 1 2 --test-rows 2000 --threads 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import WORK, machine, run_child
from _strategy_data import load, per_class, stratified_rows, write_tsv

SETFIT_CHILD = r"""
import json, sys, time
start = time.perf_counter()
import torch
torch.set_num_threads(int(sys.argv[3]))
import pandas as pd
from datasets import Dataset
from setfit import SetFitModel, Trainer, TrainingArguments
from fmkit.models.backbone import bundled_minilm_path
imported = time.perf_counter()
train = pd.read_csv(sys.argv[1], sep="\t", dtype=str, keep_default_na=False)
test = pd.read_csv(sys.argv[2], sep="\t", dtype=str, keep_default_na=False)
model = SetFitModel.from_pretrained(str(bundled_minilm_path()))
args = TrainingArguments(seed=int(sys.argv[4]), show_progress_bar=False)  # SetFit's defaults, as a user runs it
trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_dict({"text": train.text.tolist(), "label": train.label.tolist()}))
fit_start = time.perf_counter()
trainer.train()
fit_seconds = time.perf_counter() - fit_start
pred = model.predict(test.text.tolist(), batch_size=64)
acc = sum(str(p) == y for p, y in zip(pred, test.label)) / len(test)
end = time.perf_counter()
print(json.dumps({"accuracy": acc, "seconds": round(end - start, 1), "work_seconds": round(end - imported, 1),
                  "fit_seconds": round(fit_seconds, 1)}))
"""

FMKIT_CHILD = r"""
import json, sys, time
start = time.perf_counter()
import fmkit
import fmkit.workflows.classification, fmkit.workflows.strategy_runs, transformers.models.bert.modeling_bert
imported = time.perf_counter()
result = fmkit.train(data=sys.argv[1], eval=sys.argv[2], output=sys.argv[5], seed=int(sys.argv[4]),
                     **{"strategy.name": "fewshot", "train.progress": False, "train.threads": int(sys.argv[3]),
                        "data.max_length": 128}, **json.loads(sys.argv[6]))
end = time.perf_counter()
print(json.dumps({"accuracy": result.metrics["accuracy"], "seconds": round(end - start, 1),
                  "work_seconds": round(end - imported, 1), "details": result.metrics["strategy_details"]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=["sst2", "ag_news"])
    ap.add_argument("--k", type=int, nargs="+", default=[8])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--test-rows", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fmkit-set", default="{}", help="JSON of extra fmkit config keys")
    ap.add_argument("--only", choices=["both", "fmkit", "setfit"], default="both")
    ap.add_argument("--out", default=str(WORK / "setfit_compare.jsonl"))
    a = ap.parse_args()
    rows = []
    for ds in a.datasets:
        train, test = load(ds)
        test_path = write_tsv(stratified_rows(test, a.test_rows), f"{ds}_test_{a.test_rows}")
        for k in a.k:
            for seed in a.seeds:
                train_path = write_tsv(per_class(train, k, seed), f"{ds}_k{k}_s{seed}")
                row = {"dataset": ds, "k": k, "seed": seed}
                if a.only in ("both", "setfit"):
                    row["setfit"] = run_child(SETFIT_CHILD, str(train_path), str(test_path), str(a.threads), str(seed))
                if a.only in ("both", "fmkit"):
                    out = WORK / "runs" / f"fewshot_{ds}_k{k}_s{seed}"
                    shutil.rmtree(out, ignore_errors=True)
                    extra = json.loads(a.fmkit_set)
                    row["fmkit"] = run_child(FMKIT_CHILD, str(train_path), str(test_path), str(a.threads), str(seed),
                                             str(out), json.dumps(extra),
                                             env={"OMP_NUM_THREADS": str(a.threads)})
                print(json.dumps(row), flush=True)
                rows.append(row)
                with open(a.out, "a") as fh:
                    fh.write(json.dumps(row) + "\n")
    print(f"\nmachine: {machine()}, torch threads per run: {a.threads}")
    for ds in a.datasets:
        for k in a.k:
            sel = [r for r in rows if r["dataset"] == ds and r["k"] == k]
            line = [f"{ds} k={k} ({len(sel)} seeds)"]
            for tool in ("fmkit", "setfit"):
                if all(tool in r for r in sel):
                    accs = [r[tool]["accuracy"] for r in sel]
                    secs = [r[tool]["seconds"] for r in sel]
                    line.append(f"{tool}: acc mean {statistics.mean(accs):.3f} (min {min(accs):.3f}, max {max(accs):.3f}) "
                                f"median {statistics.median(secs):.0f}s")
            if all("fmkit" in r and "setfit" in r for r in sel):
                ratios = [r["fmkit"]["seconds"] / r["setfit"]["seconds"] for r in sel]
                work = [r["fmkit"]["work_seconds"] / r["setfit"]["work_seconds"] for r in sel]
                fit = [(r["fmkit"]["details"]["pair_seconds"] + r["fmkit"]["details"]["head_seconds"])
                       / r["setfit"]["fit_seconds"] for r in sel]
                line.append(f"time ratio fmkit/setfit median {statistics.median(ratios):.2f} "
                            f"(after imports: {statistics.median(work):.2f}; training phases only: {statistics.median(fit):.2f})")
            print(" | ".join(line))


if __name__ == "__main__":
    main()
