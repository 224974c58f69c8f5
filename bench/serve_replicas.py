"""`fmkit serve --workers 1` vs `--workers 2` on loopback (127.0.0.1 only): requests/s and latency at concurrency 32.

Both servers serve the same model folder (default: MiniLM 3-class int8 ONNX written by bench/apps_monitor.py);
the load generator is bench/server_load.py's (asyncio + httpx, one SST-2 sentence per request, bounded by a
request count and a wall-time cap). With --workers N each worker loads its own model and gets cores/N threads.
The client shares the machine's cores with the server, so absolute numbers are a floor; compare the two rows.

    flock /tmp/fmkit/heavy.lock .venv/bin/python bench/serve_replicas.py [--requests 4000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from server_load import REPO, SST2, WORK, Server, load, read_tsv


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=REPO / ".bench" / "apps_monitor" / "minilm-3class-int8")
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--max-seconds", type=float, default=90, help="wall-time cap per run")
    ap.add_argument("--workers", default="1,2,2,1", help="one run per entry, in this order (ABBA evens out drift)")
    args = ap.parse_args()
    if not (args.model / "fmkit.json").exists():
        sys.exit(f"{args.model}: no model; run bench/apps_monitor.py first (it writes the int8 export) or pass --model")
    dev, _ = read_tsv(SST2 / "dev.tsv")
    rows: list[dict[str, Any]] = []
    for workers in (int(w) for w in args.workers.split(",")):
        with Server(args.model, "auto", ["--workers", str(workers)]) as server:
            asyncio.run(load(server.port, dev, 128, 16, 30))  # warm-up: reaches every worker
            row = asyncio.run(load(server.port, dev, args.requests, args.concurrency, args.max_seconds))
            row.update(workers=workers, load_average=[round(x, 2) for x in os.getloadavg()])
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {"command": " ".join(["python", *sys.argv]), "model": str(args.model), "cpu_count": os.cpu_count(), "rows": rows}
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "serve_replicas.json").write_text(json.dumps(result, indent=2))
    print("\n| --workers | concurrency | req/s | p50 ms | p99 ms | errors |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['workers']} | {r['concurrency']} | {r['requests_per_s']} | {r['p50_ms']} | {r['p99_ms']} | "
              f"{sum(r['errors'].values())} |")


if __name__ == "__main__":
    main()
