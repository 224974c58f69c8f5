"""News monitor throughput: the full monitor (read, parse, score, store in SQLite, windows, alerts) vs
bare batched scoring of the same texts with the same predictor, for the PyTorch model and its int8
ONNX export (`fmkit export --quantize int8`), all in one run.

The model is MiniLM with a 3-class head; its head is untrained because throughput does not depend
on the weights' values (accuracy is measured by `fmkit train`, not here).

    .venv/bin/python bench/apps_monitor.py [--items 2000] > .bench/apps_monitor.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._common import SHARED, WORK, machine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    from fmkit.apps.monitor import Monitor, init_monitor, run_stream
    from fmkit.inference import load_predictor
    from fmkit.models.backbone import load_tokenizer, resolve_model_path
    from fmkit.models.classifier import TextClassifier

    work = WORK / "apps_monitor"
    work.mkdir(parents=True, exist_ok=True)
    torch_dir = work / "minilm-3class"
    if not (torch_dir / "fmkit.json").exists():
        path = resolve_model_path("all-MiniLM-L6-v2")
        TextClassifier.from_backbone(path, ["Bearish", "Bullish", "Neutral"], max_length=64).save_pretrained(
            torch_dir, load_tokenizer(path))
    onnx_dir = work / "minilm-3class-int8"
    if not (onnx_dir / "fmkit.json").exists():
        subprocess.run([sys.executable, "-m", "fmkit", "export", str(torch_dir), "--quantize", "int8", "--force",
                        "--output", str(onnx_dir)], check=True, capture_output=True)
    with open(SHARED / "twitter_financial_news_sentiment/sent_valid.csv", newline="", encoding="utf-8") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)][: args.items]
    stream = work / "stream.jsonl"
    stream.write_text("".join(json.dumps({"text": t, "time": 1_700_000_000 + 3 * i, "ticker": "MKT"}) + "\n"
                              for i, t in enumerate(texts)))
    out: dict[str, object] = {"machine": machine(), "items": len(texts), "batch_size": args.batch_size,
                              "load_average": os.getloadavg()}
    for name, model_dir in (("torch", torch_dir), ("onnx-int8", onnx_dir)):
        predictor = load_predictor(model_dir, batch_size=args.batch_size)
        predictor.predict_proba(texts[:64])  # warm-up
        start = time.perf_counter()
        predictor.predict_proba(texts)
        bare = time.perf_counter() - start
        app = work / f"app-{name}"
        for f in ("monitor.db", "monitor.db-wal", "monitor.db-shm", "alerts.jsonl", "monitor.json"):
            (app / f).unlink(missing_ok=True)
        init_monitor(app, str(model_dir), window_seconds=600, batch_size=args.batch_size)
        monitor = Monitor.load(app)
        full = run_stream(monitor, str(stream), follow=False)
        out[name] = {"bare_scoring_items_per_s": round(len(texts) / bare, 1), "monitor": full,
                     "monitor_vs_bare": round(float(full["items_per_second"]) / (len(texts) / bare), 3)}
        print(json.dumps({name: out[name]}), file=sys.stderr)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
