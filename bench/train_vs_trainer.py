"""Fine-tuning speed and accuracy: fmkit against the Hugging Face Trainer, side by side in one run.

Same model (bundled all-MiniLM-L6-v2), same fixed SST-2 train subset, 1 epoch, batch 32, lr 5e-5,
max length 64, evaluated on SST-2 dev (872). Each configuration runs in a fresh process, one at a
time, and reports its own training examples/s, wall time, peak memory and dev accuracy.

`--precision` puts both sides on the same numeric path: `fp32` (fmkit `train.mixed_precision: no`,
`eval.precision: fp32`; the Trainer's CPU default), what a CPU without native bf16 runs, or `bf16`
(fmkit bf16 autocast for training and evaluation; the Trainer with `bf16=True`, its CPU autocast).

    python bench/train_vs_trainer.py --rows 20000 --precision fp32            # the issue's setting
    python bench/train_vs_trainer.py --rows 4000 --repeats 3 --precision bf16 --skip-random --skip-defaults
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ISSUE2_SECTION, REPO, machine, run_child, sst2_subset, write_subsection

TRAINER_CHILD = r"""
import json, sys, time, os
import numpy as np, pandas as pd, torch
sys.path.insert(0, "bench")
from _common import peak_rss_mb
from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments, DataCollatorWithPadding
from fmkit.models.backbone import bundled_minilm_path
train_path, dev_path, strategy, out, precision, threads = sys.argv[1:7]
torch.set_num_threads(int(threads) or os.cpu_count())
path = str(bundled_minilm_path())
tok = AutoTokenizer.from_pretrained(path)
def load(p):
    df = pd.read_csv(p, sep="\t", quoting=3, dtype=str, keep_default_na=False)
    text = "sentence" if "sentence" in df else "content"
    enc = tok(df[text].tolist(), truncation=True, max_length=64)
    return [{"input_ids": i, "attention_mask": m, "labels": int(l)} for i, m, l in zip(enc["input_ids"], enc["attention_mask"], df["label"])]
train, dev = load(train_path), load(dev_path)
model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
args = TrainingArguments(output_dir=out, num_train_epochs=1, per_device_train_batch_size=32, per_device_eval_batch_size=64,
    learning_rate=5e-5, use_cpu=True, report_to="none", save_strategy="no", eval_strategy="no", disable_tqdm=True,
    train_sampling_strategy=strategy, seed=42, logging_strategy="no", bf16=precision == "bf16")
trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=DataCollatorWithPadding(tok))
start = time.perf_counter(); trainer.train(); seconds = time.perf_counter() - start
pred = trainer.predict(dev)
acc = float((pred.predictions.argmax(-1) == pred.label_ids).mean())
print(json.dumps({"train_seconds": seconds, "examples_per_second": len(train) / seconds, "dev_accuracy": acc,
                  "peak_rss_mb": peak_rss_mb(), "threads": torch.get_num_threads()}))
"""

FMKIT_CHILD = r"""
import json, sys, time
sys.path.insert(0, "bench")
from _common import peak_rss_mb
import fmkit, torch
train_path, dev_path, out, mode, precision, threads = sys.argv[1:7]
same = {"train.epochs": 1, "train.batch_size": 32, "train.learning_rate": 5e-5, "data.max_length": 64,
        "strategy.name": "full", "strategy.probe.init": False}
overrides = same if mode == "same-settings" else {}
path = {"train.mixed_precision": "no" if precision == "fp32" else "bf16", "eval.precision": precision,
        "train.threads": int(threads)}
extra = json.loads(sys.argv[7]) if len(sys.argv) > 7 else {}
start = time.perf_counter()
result = fmkit.train(data=train_path, eval=dev_path, output=out,
                     **{"train.progress": False, **overrides, **path, **extra})
wall = time.perf_counter() - start
m = result.metrics
print(json.dumps({"train_seconds": m["train_seconds"], "examples_per_second": m["train_examples_per_second"],
                  "dev_accuracy": m["accuracy"], "epochs": m["epochs_completed"], "run_wall_seconds": wall,
                  "peak_rss_mb": peak_rss_mb(), "threads": torch.get_num_threads()}))
"""


def fmkit_row(name: str, overrides: str) -> str:
    """The row's name says which extra settings (--fmkit-set) it ran with."""
    extra = ", ".join(f"{key}: {json.dumps(value)}" for key, value in json.loads(overrides).items())
    return f"{name[:-1]}, {extra})" if extra else name


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration (medians reported)")
    parser.add_argument("--skip-defaults", action="store_true", help="skip fmkit's own-defaults run")
    parser.add_argument("--skip-random", action="store_true", help="skip the Trainer's (slow) random-sampling run")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="numeric path of both sides: fp32 (what a CPU without native bf16 runs) or bf16 autocast")
    parser.add_argument("--threads", type=int, default=0, help="torch threads on both sides; 0: every core")
    parser.add_argument("--fmkit-set", default="{}", metavar="JSON",
                        help='extra fmkit overrides for its rows, e.g. \'{"train.freeze_word_embeddings": true}\'')
    parser.add_argument("--write", action="store_true", help="write the table into BENCHMARKS.md")
    args = parser.parse_args()
    threads = args.threads or os.cpu_count() or 1
    load_before = os.getloadavg()[0]  # 1-minute load average: timings hold for an idle machine only if it is ~0
    train_path, dev_path = sst2_subset(args.rows)
    scratch = REPO / ".bench" / "train_vs_trainer"
    configs = [
        ("HF Trainer (random sampling)", TRAINER_CHILD, ["random"]),
        ("HF Trainer (group_by_length)", TRAINER_CHILD, ["group_by_length"]),
        (fmkit_row("fmkit (same settings)", args.fmkit_set), FMKIT_CHILD, ["same-settings"]),
    ]
    if args.skip_random:
        configs = configs[1:]
    if not args.skip_defaults:
        configs.append((fmkit_row("fmkit (its own defaults)", args.fmkit_set), FMKIT_CHILD, ["defaults"]))
    results: dict[str, list[dict]] = {}
    for repeat in range(args.repeats):
        for name, code, extra in configs:
            out = scratch / f"{name.split()[0]}-{extra[0]}-{repeat}"
            if code is FMKIT_CHILD:
                import shutil

                shutil.rmtree(out, ignore_errors=True)
                argv = [str(train_path), str(dev_path), str(out), extra[0], args.precision, str(threads),
                        args.fmkit_set]
            else:
                argv = [str(train_path), str(dev_path), extra[0], str(out), args.precision, str(threads)]
            print(f"running {name} (repeat {repeat + 1}/{args.repeats})...", flush=True)
            result = run_child(code, *argv)
            print("  ", json.dumps(result), flush=True)
            results.setdefault(name, []).append(result)

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    fastest_trainer = max(med(n, "examples_per_second") for n in results if n.startswith("HF"))
    rows = ["| configuration | train examples/s | speed vs faster Trainer | train time (s) | peak memory (MB) | SST-2 dev accuracy |",
            "|---|---|---|---|---|---|"]
    for name in results:
        eps = med(name, "examples_per_second")
        rows.append(f"| {name} | {eps:.1f} | {eps / fastest_trainer:.2f}x | {med(name, 'train_seconds'):.0f} | "
                    f"{med(name, 'peak_rss_mb'):.0f} | {100 * med(name, 'dev_accuracy'):.1f}% |")
    table = "\n".join(rows)
    command = " ".join(["python bench/train_vs_trainer.py", *sys.argv[1:]])
    path = ("fp32 path (fmkit `train.mixed_precision: no`, Trainer default)" if args.precision == "fp32"
            else "bf16 path (fmkit bf16 autocast, Trainer `bf16=True`)")
    text = (f"SST-2 train subset of {args.rows:,} rows (fixed seed), 1 epoch, batch 32, lr 5e-5, max length 64 "
            f"(fmkit's defaults row: its own config, 3 epochs max with early stopping); {path}; {machine()}; "
            f"{threads} thread(s); load average {load_before:.2f} before the runs; medians of {args.repeats} run(s).\n\n{table}\n\nCommand: `{command}`\n")
    print(text)
    if args.write:
        write_subsection(ISSUE2_SECTION, "### Trainer comparison", text)

if __name__ == "__main__":
    main()
