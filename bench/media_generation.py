"""Worked example: LoRA instruction-tuning SmolLM2-135M-Instruct to answer a shop's customer questions.

Data: fmkit/resources/generation/customer_support.jsonl (150 questions written for fmkit, 15 policies x 10
phrasings, each with the shop's one-sentence answer). The first N lines are used; a seeded share is held
out, so the held-out questions are new phrasings of policies seen in training. Reports the base model
against the tuned one on the same held-out questions: perplexity of the reference answers, exact match,
ROUGE-L, and a few answers side by side.

usage: python bench/media_generation.py [--lines 64] [--epochs 2] [--lr 3e-3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "fmkit" / "resources" / "generation" / "customer_support.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=64)
    ap.add_argument("--eval-fraction", type=float, default=0.25)
    ap.add_argument("--epochs", type=float, default=2)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--max-new-tokens", type=int, default=20)
    ap.add_argument("--output", default=None, help="keep the run here (default: a temporary folder)")
    ap.add_argument("--threads", type=int, default=0, help="train.threads (1 is far faster on an oversubscribed CPU)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        subset = tmp / "support.jsonl"
        subset.write_text("".join(DATA.read_text(encoding="utf-8").splitlines(keepends=True)[: args.lines]), encoding="utf-8")
        run = Path(args.output) if args.output else tmp / "run"
        cmd = [sys.executable, "-m", "fmkit", "train", "--task", "generation", "--data", str(subset), "--output", str(run),
               "--overwrite", "--quiet", "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
               "--set", f"strategy.lora.learning_rate={args.lr}", "--set", f"data.eval_fraction={args.eval_fraction}",
               "--set", f"generation.max_new_tokens={args.max_new_tokens}", "--set", "generation.eval_generations=100",
               "--set", "generation.max_length=128", "--set", "train.early_stopping_patience=0",
               "--set", f"train.threads={args.threads}"]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        m = json.loads((run / "metrics.json").read_text())
        samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
        keys = ("perplexity", "base_perplexity", "exact_match", "base_exact_match", "rouge_l", "base_rouge_l",
                "train_examples", "num_examples", "steps", "train_seconds", "trainable_parameters")
        print(json.dumps({
            "command": " ".join(cmd[1:]), "process_wall_s": round(wall, 1), **{k: m.get(k) for k in keys},
            "samples": [{"question": s["prompt"].split("user\n")[-1].split("<|im_end|>")[0], "reference": s["reference"],
                         "before": s.get("base_model"), "after": s["generated"]} for s in samples[:4]],
        }, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
