"""The news monitor on PostgreSQL with 1 and 2 workers vs SQLite with 1: items/s scored and stored, storage per item.

Every run scores the same tweets (twitter_financial_news_sentiment, train then valid, first --items) with the
MiniLM 3-class int8 ONNX export that bench/apps_monitor.py writes (its head is untrained: throughput does not
depend on the weights' values), split in two JSON-lines files. Each worker is a real
`fmkit app monitor run APP FILES --once [--partition K/2]` process; 1 worker follows both files, 2 workers one
each on one database. PostgreSQL is a throwaway local server (tests/pg_helpers.py: initdb + pg_ctl, fsync off as
in the tests, so commit costs are a floor). Reported per run: items/s from the first worker start to the last
worker exit (model loading included) and over the streaming only (the slowest worker's run_stream time), the
seconds spent in storage transactions per item, and bytes per item on disk (PostgreSQL: items table with its
indexes and TOAST; SQLite: the database file after a checkpoint).

    flock /tmp/fmkit/heavy.lock .venv/bin/python bench/monitor_postgres.py [--items 6000]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._common import REPO, SHARED, WORK, machine


def write_streams(work: Path, n: int) -> list[Path]:
    """Two files whose names fall in partitions 0/2 and 1/2, holding alternate tweets."""
    from fmkit.apps.monitor_workers import partition_of

    texts: list[str] = []
    for name in ("sent_train.csv", "sent_valid.csv"):
        with open(SHARED / "twitter_financial_news_sentiment" / name, newline="", encoding="utf-8") as fh:
            texts += [row["text"] for row in csv.DictReader(fh)]
    texts = texts[:n]
    names = [next(f"news-{k}.jsonl" for k in range(100) if partition_of(f"news-{k}.jsonl", 2) == part) for part in (0, 1)]
    paths = [work / name for name in names]
    for j, path in enumerate(paths):
        path.write_text("".join(json.dumps({"text": t, "time": 1_700_000_000 + 3 * i, "ticker": "MKT"}) + "\n"
                                for i, t in enumerate(texts) if i % 2 == j), encoding="utf-8")
    return paths


def run_workers(app: Path, files: list[Path], workers: int, items: int) -> dict[str, Any]:
    """Start the workers together, wait for all; `items` is what they store together (checked by the caller).

    A worker's report is run_stream's result merged with monitor.stats(), whose "items" is the database's
    count at that moment, so the per-worker item counts are not summed here."""
    base = [sys.executable, "-m", "fmkit", "app", "monitor", "run", str(app), *map(str, files), "--once"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FMKIT_THREADS": str(max(1, (os.cpu_count() or 1) // workers))}
    start = time.perf_counter()
    procs = [subprocess.Popen(base + (["--partition", f"{k}/{workers}"] if workers > 1 else []), env=env, cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(workers)]
    reports = []
    for proc in procs:
        _, err = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(err)
        reports.append(json.loads(err.strip().splitlines()[-1]))
    wall = time.perf_counter() - start
    stream_s = max(r["seconds"] for r in reports)
    storing = sum(r["storing_seconds"] for r in reports)
    return {"workers": workers, "items": items, "wall_s": round(wall, 2), "items_per_s_wall": round(items / wall, 1),
            "items_per_s_streaming": round(items / stream_s, 1), "scoring_s": round(sum(r["scoring_seconds"] for r in reports), 2),
            "storing_s": round(storing, 2), "storing_ms_per_item": round(1000 * storing / items, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=6000)
    ap.add_argument("--model", type=Path, default=WORK / "apps_monitor" / "minilm-3class-int8")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    if not (args.model / "fmkit.json").exists():
        sys.exit(f"{args.model}: no model; run bench/apps_monitor.py first (it writes the int8 export) or pass --model")
    from fmkit.apps.monitor import init_monitor
    from tests.pg_helpers import ThrowawayPostgres, unavailable_reason

    if unavailable_reason():
        sys.exit(str(unavailable_reason()))
    work = WORK / "monitor_postgres"
    work.mkdir(parents=True, exist_ok=True)
    files = write_streams(work, args.items)
    server = ThrowawayPostgres()
    rows: list[dict[str, Any]] = []
    try:
        for db, workers in (("sqlite", 1), ("postgresql", 1), ("postgresql", 2)):
            app = work / f"app-{db}-{workers}"
            for f in ("monitor.db", "monitor.db-wal", "monitor.db-shm", "alerts.jsonl", "monitor.json"):
                (app / f).unlink(missing_ok=True)
            url = server.fresh_database(f"bench_{workers}_{int(time.time())}") if db == "postgresql" else None
            init_monitor(app, str(args.model), db=url, window_seconds=600, batch_size=args.batch_size)
            row = run_workers(app, files, workers, args.items)
            if db == "postgresql":
                dbname = url.rsplit("/", 1)[1] if url else "fmkit"
                size, count = server.sql("SELECT pg_total_relation_size('items'), count(*) FROM items", database=dbname)[0]
            else:
                with sqlite3.connect(app / "monitor.db") as conn:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    count = conn.execute("SELECT count(*) FROM items").fetchone()[0]
                size = (app / "monitor.db").stat().st_size  # items plus the small progress/state tables
            row.update(db=db, stored_rows=int(str(count)), bytes_per_item=round(int(str(size)) / max(int(str(count)), 1)),
                       load_average=[round(x, 2) for x in os.getloadavg()])
            assert row["stored_rows"] == args.items, row
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        server.close()
    result = {"command": " ".join(["python", *sys.argv]), "model": str(args.model), "machine": machine(), "rows": rows}
    (WORK / "monitor_postgres.json").write_text(json.dumps(result, indent=2))
    print("\n| database | workers | items/s (wall, incl. model load) | items/s (streaming) | storing ms/item | bytes/item |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['db']} | {r['workers']} | {r['items_per_s_wall']} | {r['items_per_s_streaming']} | "
              f"{r['storing_ms_per_item']} | {r['bytes_per_item']} |")


if __name__ == "__main__":
    main()
