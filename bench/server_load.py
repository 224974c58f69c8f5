"""Load test of `fmkit serve` on loopback (127.0.0.1 only): throughput, latency, errors, server memory.

Starts `fmkit serve MODEL` as a subprocess, waits for /ready, then an asyncio + httpx client sends
N one-sentence POST /v1/predict requests (sentences from SST-2 dev+test, cycled) at each concurrency
level, bounded by a request count and a wall-time cap per level. Then the same at concurrency 32 with
`--no-batching` (each request its own forward pass) for the batching on/off ratio.
Server peak RSS is the server process's VmHWM, read after each level (growth across levels = a leak).
The client runs on the same 2 cores as the server, so absolute numbers are a floor; compare ratios.

    .venv/bin/python bench/server_load.py [--model DIR] [--requests 2000] [--levels 1,8,32,64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sst2_model import REPO, SST2, WORK, read_tsv

HOST = "127.0.0.1"  # never anything else


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, model: Path, backend: str, extra: list[str]) -> None:
        self.port = free_port()
        self.cmd = [sys.executable, "-m", "fmkit", "serve", str(model), "--host", HOST, "--port", str(self.port),
                    "--backend", backend, "--log-level", "error", *extra]
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        print("+", " ".join(self.cmd), flush=True)
        self.proc = subprocess.Popen(self.cmd, cwd=REPO)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://{HOST}:{self.port}/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("server exited during start-up")
            time.sleep(0.5)
        raise RuntimeError("server not ready after 300 s")

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def load(port: int, sentences: list[str], requests: int, concurrency: int, max_seconds: float) -> dict[str, Any]:
    url = f"http://{HOST}:{port}/v1/predict"
    latencies: list[float] = []
    errors: dict[str, int] = {}
    next_index = 0
    deadline = time.perf_counter() + max_seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal next_index
        while next_index < requests and time.perf_counter() < deadline:
            i = next_index
            next_index += 1
            start = time.perf_counter()
            try:
                r = await client.post(url, json={"texts": [sentences[i % len(sentences)]]})
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors[str(r.status_code)] = errors.get(str(r.status_code), 0) + 1
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    lat = sorted(latencies)

    def q(p: float) -> float:
        return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else float("nan")

    return {"concurrency": concurrency, "requests_ok": len(lat), "errors": errors, "seconds": round(elapsed, 2),
            "requests_per_s": round(len(lat) / elapsed, 1), "p50_ms": q(0.50), "p95_ms": q(0.95), "p99_ms": q(0.99),
            "mean_ms": round(1000 * statistics.fmean(lat), 1) if lat else float("nan"),
            "capped_by_time": len(lat) + sum(errors.values()) < requests}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=WORK / "onnx-int8")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--levels", default="1,8,32,64")
    ap.add_argument("--max-seconds", type=float, default=120, help="wall-time cap per level")
    args = ap.parse_args()
    dev, _ = read_tsv(SST2 / "dev.tsv")
    test, _ = read_tsv(SST2 / "test.tsv")
    sentences = dev + test
    levels = [int(x) for x in args.levels.split(",")]
    rows: list[dict[str, Any]] = []
    with Server(args.model, args.backend, []) as server:
        assert server.proc is not None
        asyncio.run(load(server.port, sentences, 64, 8, 30))  # warm-up
        for c in levels:
            row = asyncio.run(load(server.port, sentences, args.requests, c, args.max_seconds))
            row.update(batching=True, server_rss_mb=round(rss_mb(server.proc.pid)),
                       server_peak_rss_mb=round(peak_rss_mb(server.proc.pid)))
            rows.append(row)
            print(json.dumps(row), flush=True)
        metrics = httpx.get(f"http://{HOST}:{server.port}/metrics").text
    with Server(args.model, args.backend, ["--no-batching"]) as server:
        assert server.proc is not None
        asyncio.run(load(server.port, sentences, 64, 8, 30))
        row = asyncio.run(load(server.port, sentences, args.requests, 32, args.max_seconds))
        row.update(batching=False, server_rss_mb=round(rss_mb(server.proc.pid)),
                   server_peak_rss_mb=round(peak_rss_mb(server.proc.pid)))
        rows.append(row)
        print(json.dumps(row), flush=True)
    on = next(r for r in rows if r["batching"] and r["concurrency"] == 32)
    off = rows[-1]
    ratio = on["requests_per_s"] / off["requests_per_s"] if off["requests_per_s"] else float("nan")
    batch_lines = [line for line in metrics.splitlines() if line.startswith(("fmkit_batch_size_sum", "fmkit_batch_size_count"))]
    result = {"command": " ".join(["python", *sys.argv]), "model": str(args.model), "rows": rows,
              "batching_speedup_c32": round(ratio, 2), "batch_size_metrics": batch_lines}
    (WORK / "server_load.json").write_text(json.dumps(result, indent=2))
    print("\n| concurrency | batching | req/s | p50 ms | p95 ms | p99 ms | errors | server RSS MB (peak) |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['concurrency']} | {'on' if r['batching'] else 'off'} | {r['requests_per_s']} | {r['p50_ms']} | "
              f"{r['p95_ms']} | {r['p99_ms']} | {sum(r['errors'].values())} | {r['server_rss_mb']} ({r['server_peak_rss_mb']}) |")
    print(f"\nbatching on/off at concurrency 32: {ratio:.2f}x; {' '.join(batch_lines)}")


if __name__ == "__main__":
    main()
