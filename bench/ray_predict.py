"""Ray Data batch scoring vs the single-process `fmkit predict`, same model, same texts (issue 22).

    flock /tmp/fmkit/heavy.lock python bench/ray_predict.py [--rows 100000]

SST-2's 67,349 training sentences, repeated to --rows (with an id column), scored by an MiniLM sentiment
classifier (a linear probe trained here on 2,000 SST-2 sentences: inference runs the whole encoder, as any
fine-tuned MiniLM would) with:
  1. `fmkit predict MODEL texts.csv --output out.jsonl`                      (one process, all cores)
  2. `fmkit predict ... --engine ray --num-workers 1 --cpus-per-worker C`    (a local Ray instance, 1 actor, C cores)
  3. `fmkit predict ... --engine ray --num-workers C --cpus-per-worker 1`    (C actors of one core each)
Wall time of each whole command (start-up, model loading and Ray's start included) and rows/s; the rows of 2
and 3 are compared with 1 row by row (ids in order; labels and scores: bf16 scores move slightly with the batch
a text is padded in, so a few borderline labels may differ; --precision fp32 makes them comparable exactly). Writes nothing into the repository (a temporary folder).
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

import pandas as pd
import pyarrow.dataset as pads

REPO = Path(__file__).resolve().parents[1]
SST2 = REPO.parent / "shared" / "data" / "sst2" / "SST-2"


def fmkit(*args: str) -> float:
    """Run `python -m fmkit ARGS`; its wall time in seconds."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "fmkit", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if proc.returncode != 0:
        raise SystemExit(f"fmkit {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="texts to score (SST-2 train repeated)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores the jobs may use")
    parser.add_argument("--precision", default="model", choices=["model", "fp32", "bf16"],
                        help="model: the probe's own (bf16 on a CPU with AMX), whose scores move by ~1e-3 with the "
                             "batch a text is padded in; fp32 for bit-for-bit comparable scores")
    args = parser.parse_args()

    sentences = pd.read_csv(SST2 / "train.tsv", sep="\t", quoting=3)["sentence"].astype(str).tolist()
    work = Path(tempfile.mkdtemp(prefix="fmkit-ray-bench-"))
    texts = (sentences * (args.rows // len(sentences) + 1))[: args.rows]
    pd.DataFrame({"id": [f"s{i}" for i in range(len(texts))], "text": texts}).to_csv(work / "texts.csv", index=False)
    train = pd.read_csv(SST2 / "train.tsv", sep="\t", quoting=3).sample(2000, random_state=0)
    train.rename(columns={"sentence": "text"}).to_csv(work / "train.csv", index=False)
    model = work / "model"
    fmkit("train", "--data", str(work / "train.csv"), "--strategy", "linear-probe", "--output", str(model), "--quiet",
          "--epochs", "3")

    rows = []
    single = work / "single.jsonl"
    precision = ["--precision", args.precision]
    seconds = fmkit("predict", str(model), str(work / "texts.csv"), "--output", str(single), "--batch-size", "64",
                    *precision)
    reference = [json.loads(line) for line in single.read_text().splitlines()]
    rows.append(("fmkit predict (one process)", f"{args.cores} threads", seconds, "-", "-"))
    for workers, cpus in ((1, args.cores), (args.cores, 1)):
        out = work / f"ray-{workers}x{cpus}"
        seconds = fmkit("predict", str(model), str(work / "texts.csv"), "--engine", "ray", "--num-workers", str(workers),
                        "--cpus-per-worker", str(cpus), "--output", str(out), "--batch-size", "64", *precision)
        files = sorted(str(p) for p in out.glob("part-*.parquet"))
        got = pads.dataset(files, format="parquet").to_table().to_pylist()
        assert [r["id"] for r in got] == [r["id"] for r in reference], "rows lost, doubled or out of order"
        same = sum(a["label"] == b["label"] for a, b in zip(got, reference, strict=True))
        drift = max(abs(a["scores"][k] - b["scores"][k]) for a, b in zip(got, reference, strict=True) for k in a["scores"])
        rows.append((f"--engine ray, {workers} actor(s)", f"{cpus} thread(s) each", seconds,
                     f"{same:,}/{len(reference):,}", f"{drift:.2g}"))

    base = rows[0][2]
    print(f"\n{args.rows:,} SST-2 sentences, MiniLM-L6 classifier (--precision {args.precision}), {args.cores} cores\n")
    print("| command | threads | wall s | rows/s | vs one process | same label | max score diff |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, threads, seconds, same_label, max_diff in rows:
        print(f"| {name} | {threads} | {seconds:.1f} | {args.rows / seconds:,.0f} | {seconds / base - 1:+.1%} | "
              f"{same_label} | {max_diff} |")
    print(f"\n(work folder: {work})")


if __name__ == "__main__":
    main()
