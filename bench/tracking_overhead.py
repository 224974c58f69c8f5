"""Tracking side by side: fmkit's registry + TensorBoard vs MLflow (SQLite store), same metric stream, one run.

Measures, in the same process and run:
  1. per-call logging latency while "training" (train metrics every 10 steps, eval every 100; the loop's pattern),
  2. listing runs afterwards (fmkit Registry.runs vs MlflowClient.search_runs),
  3. four processes logging into one store at once (errors, rows lost),
  4. report.html + MODEL_CARD.md generation for a real banking77 run (77 classes; optional --run-dir).
Usage: python bench/tracking_overhead.py [--runs 10] [--steps 2000] [--run-dir RUN_DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TRAIN = {"loss": 0.5, "learning_rate": 1e-4, "examples_per_second": 100.0, "epoch": 0.1}
EVAL = {"eval_accuracy": 0.8, "eval_macro_f1": 0.7, "eval_macro_precision": 0.7, "eval_macro_recall": 0.7,
        "eval_weighted_f1": 0.8, "epoch": 1.0}


def stream(steps: int) -> list[tuple[int, dict[str, float], str]]:
    out = []
    for step in range(1, steps + 1):
        if step % 10 == 0:
            out.append((step, {**TRAIN, "loss": 1 / step}, "train"))
        if step % 100 == 0:
            out.append((step, EVAL, "eval"))
    return out


def fmkit_run(root: Path, name: str, events: list, latencies: list[float]) -> None:
    from fmkit.tracking.registry import Registry
    from fmkit.tracking.trackers import RegistryTracker, TensorBoardTracker

    reg = Registry(root)
    run_dir = root / name
    reg.start(name, path=run_dir, command="train", config={"train": {"epochs": 3}})
    trackers = [RegistryTracker(reg, name), TensorBoardTracker(run_dir / "tensorboard")]
    for step, metrics, kind in events:
        t = time.perf_counter()
        for tracker in trackers:
            tracker.log(step, metrics, kind)
        latencies.append(time.perf_counter() - t)
    for tracker in trackers:
        tracker.close("finished")
    reg.end(name, "finished", final_metrics={"accuracy": 0.8})


def mlflow_run(uri: str, name: str, events: list, latencies: list[float]) -> None:
    from fmkit.tracking.trackers import MlflowTracker

    tracker = MlflowTracker(uri, "bench", name, {"train": {"epochs": 3}}, {})
    for step, metrics, kind in events:
        t = time.perf_counter()
        tracker.log(step, metrics, kind)
        latencies.append(time.perf_counter() - t)
    tracker.log_final({"accuracy": 0.8})
    tracker.close("finished")


def _concurrent_fmkit(root: str, worker: int, steps: int) -> None:
    fmkit_run(Path(root), f"c{worker}", stream(steps), [])


def _concurrent_mlflow(uri: str, worker: int, steps: int) -> None:
    mlflow_run(uri, f"c{worker}", stream(steps), [])


def concurrent(target, arg: str, steps: int) -> tuple[float, list[int]]:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=target, args=(arg, w, steps)) for w in range(4)]
    t = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join(600)
    return time.perf_counter() - t, [p.exitcode or 0 for p in procs]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--run-dir", type=Path, help="a finished run to time report generation on")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fmkit-bench-tracking-"))
    events = stream(args.steps)
    print(f"{args.runs} runs x {len(events)} log calls ({args.steps} steps), store in {work}")

    import torch.utils.tensorboard  # noqa: F401 - a training process has torch loaded already; not counted

    t = time.perf_counter()
    import mlflow.tracking  # noqa: F401 - import time is part of what a user pays once

    mlflow_import = time.perf_counter() - t
    uri = f"sqlite:///{work / 'mlflow.db'}"
    fm_lat: list[float] = []
    ml_lat: list[float] = []
    t = time.perf_counter()
    mlflow_run(uri, "warmup", events[:5], [])  # creates the schema (migrations) once, not counted below
    ml_setup = time.perf_counter() - t
    fm_total = ml_total = 0.0
    for i in range(args.runs):  # interleaved, so machine noise hits both
        t = time.perf_counter()
        fmkit_run(work / "fmkit", f"run{i}", events, fm_lat)
        fm_total += time.perf_counter() - t
        t = time.perf_counter()
        mlflow_run(uri, f"run{i}", events, ml_lat)
        ml_total += time.perf_counter() - t

    from mlflow.tracking import MlflowClient

    from fmkit.tracking.registry import Registry

    reg, client = Registry(work / "fmkit"), MlflowClient(uri)
    exp = client.get_experiment_by_name("bench")
    fm_ls, ml_ls = [], []
    for _ in range(20):
        t = time.perf_counter()
        n_fm = len(reg.runs())
        fm_ls.append(time.perf_counter() - t)
        t = time.perf_counter()
        n_ml = len(client.search_runs([exp.experiment_id], max_results=1000))
        ml_ls.append(time.perf_counter() - t)

    fm_conc, fm_codes = concurrent(_concurrent_fmkit, str(work / "fmkit-conc"), args.steps)
    conc_uri = f"sqlite:///{work / 'mlflow-conc.db'}"
    mlflow_run(conc_uri, "create-store", events[:5], [])  # an existing store: 4 processes racing to create one all fail
    ml_conc, ml_codes = concurrent(_concurrent_mlflow, conc_uri, args.steps)
    fm_rows = sum(len(v) for r in Registry(work / "fmkit-conc").runs() for v in Registry(work / "fmkit-conc").curves(r.id).values())

    med = statistics.median
    print("\n| measure | fmkit (registry + TensorBoard) | MLflow (sqlite store) | MLflow / fmkit |")
    print("|---|---|---|---|")
    print(f"| median latency of one log call | {med(fm_lat) * 1e3:.2f} ms | {med(ml_lat) * 1e3:.2f} ms | {med(ml_lat) / med(fm_lat):.1f}x |")
    print(f"| p95 latency of one log call | {sorted(fm_lat)[int(0.95 * len(fm_lat))] * 1e3:.2f} ms | "
          f"{sorted(ml_lat)[int(0.95 * len(ml_lat))] * 1e3:.2f} ms | |")
    print(f"| total for {args.runs} runs (start, log, end) | {fm_total:.2f} s | {ml_total:.2f} s | {ml_total / fm_total:.1f}x |")
    print(f"| list runs ({n_fm} vs {n_ml}), median of 20 | {med(fm_ls) * 1e3:.1f} ms | {med(ml_ls) * 1e3:.1f} ms | "
          f"{med(ml_ls) / med(fm_ls):.1f}x |")
    print(f"| 4 processes logging at once: wall, failed processes | {fm_conc:.1f} s, {sum(c != 0 for c in fm_codes)} | "
          f"{ml_conc:.1f} s, {sum(c != 0 for c in ml_codes)} | {ml_conc / fm_conc:.1f}x |")
    print(f"| one-time setup | none (schema on first write) | import {mlflow_import:.1f} s + store creation {ml_setup:.1f} s | |")
    print(f"\nfmkit concurrent rows: {fm_rows} (expected {4 * sum(len([k for k in m if k != 'epoch']) for _, m, _ in events)})")
    if args.run_dir:
        from fmkit.evaluation.report import write_report

        times = []
        for _ in range(3):
            t = time.perf_counter()
            html, _card = write_report(args.run_dir)
            times.append(time.perf_counter() - t)
        print(f"report.html + MODEL_CARD.md for {args.run_dir}: median {med(times):.2f} s of 3, "
              f"{html.stat().st_size / 1024:.0f} KiB")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
