"""Monitor throughput end to end: a JSON-lines file read to its end -> parse -> score -> SQLite (items, offsets,
windows), items/s for the PyTorch model and for its int8 ONNX export chosen by `backend: auto`.

The run directory looks like a user's: run/model (MiniLM + a 3-class head, untrained: throughput does
not depend on the weights' values) and run/int8 (`fmkit export run/model --quantize int8`). Each
backend gets a fresh monitor folder and database for each of `--repeats` rounds (the backends
alternate, and the best and median round are reported: other jobs on a shared machine only ever
slow a round down). "bare" is the same predictor scoring the same texts without reading or storing,
in calls of 64 items (what the monitor does per batch) and of 512.

    flock /tmp/fmkit/heavy.lock .venv/bin/python bench/monitor_throughput.py [--items 3000] > .bench/monitor_throughput.json
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._common import SHARED, WORK, machine


def prepare_run(run: Path) -> None:
    from fmkit.models.backbone import load_tokenizer, resolve_model_path
    from fmkit.models.classifier import TextClassifier

    if not (run / "model" / "fmkit.json").exists():
        path = resolve_model_path("all-MiniLM-L6-v2")
        TextClassifier.from_backbone(path, ["Bearish", "Bullish", "Neutral"], max_length=64).save_pretrained(
            run / "model", load_tokenizer(path))
    if not (run / "int8" / "fmkit.json").exists():
        subprocess.run([sys.executable, "-m", "fmkit", "export", str(run / "model"), "--quantize", "int8", "--force",
                        "--output", str(run / "int8")], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from fmkit.apps.monitor import Monitor, init_monitor, run_stream
    from fmkit.inference.backends import cpu_threads

    work = WORK / "monitor_throughput"
    run = work / "run"
    prepare_run(run)
    with open(SHARED / "twitter_financial_news_sentiment/sent_valid.csv", newline="", encoding="utf-8") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    texts = (texts * (args.items // len(texts) + 1))[: args.items]
    stream = work / "stream.jsonl"
    stream.write_text("".join(json.dumps({"text": t, "time": 1_700_000_000 + 3 * i, "ticker": "MKT"}) + "\n"
                              for i, t in enumerate(texts)))
    out: dict[str, object] = {"machine": machine(), "threads": cpu_threads(), "items": len(texts),
                              "batch_size": args.batch_size, "load_average_before": os.getloadavg()}
    rounds: dict[str, list[dict[str, float]]] = {"torch": [], "int8 (backend auto)": []}
    for _ in range(args.repeats):
        for name, backend in (("torch", "torch"), ("int8 (backend auto)", "auto")):
            app = work / f"app-{backend}"
            shutil.rmtree(app, ignore_errors=True)
            init_monitor(app, str(run / "model"), window_seconds=600, batch_size=args.batch_size, backend=backend)
            monitor = Monitor.load(app, log=io.StringIO())
            monitor.predictor.predict_proba(texts[:64])  # warm-up: the first ONNX/torch call allocates
            result = run_stream(monitor, str(stream), follow=False)
            row = {"monitor_items_per_second": float(result["items_per_second"]), "load_average_1m": os.getloadavg()[0]}
            for call in (64, 512):
                start = time.perf_counter()
                for i in range(0, len(texts), call):
                    monitor.predictor.predict_proba(texts[i:i + call])
                row[f"bare_calls_of_{call}_items_per_second"] = round(len(texts) / (time.perf_counter() - start), 1)
            assert monitor.stats()["items"] == len(texts)
            rounds[name].append(row)
            print(json.dumps({name: row, "backend": monitor.scoring_backend}), file=sys.stderr)
    for name, rows in rounds.items():
        out[name] = {"rounds": rows, **{f"{key} best": max(r[key] for r in rows) for key in rows[0]
                                        if key != "load_average_1m"},
                     **{f"{key} median": statistics.median(r[key] for r in rows) for key in rows[0]
                        if key != "load_average_1m"}}
    out["load_average_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
