"""STS-B as text-pair regression: fmkit's cross-encoder against what a user would otherwise run, side by side.

Rows, each on the bundled all-MiniLM-L6-v2 and the STS Benchmark test set (1,379 pairs, gold 0-5):
  1. frozen bi-encoder: sentence-transformers `encode` of each sentence, cosine of the two (no training;
     MTEB reports Spearman 0.82 for this model);
  2. fmkit: `fmkit train --task regression` on sts-train with sts-dev as eval set (two text columns), as a
     cross-encoder (the pair read as one sequence, the default) and as a bi-encoder (task.pair_encoding=bi:
     cosine of the two vectors), then `fmkit eval` on test;
  3. (--with-crossencoder) sentence-transformers' own CrossEncoder recipe (`CrossEncoder.fit`, its STS-B
     example: 4 epochs, batch 16, warmup 10%), started from the same model.

    .venv/bin/python bench/stsb.py [--epochs 3] [--with-crossencoder] [--write]
Writes .bench/stsb/results.json (and, with --write, the section of BENCHMARKS.md).
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
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._common import SHARED, machine, write_subsection  # noqa: E402

WORK = REPO / ".bench" / "stsb"
SECTION = "## Tasks on the task contract (issue 18)"


def load_sts(name: str) -> list[tuple[str, str, float]]:
    with open(SHARED / "stsb" / name, encoding="utf-8", newline="") as fh:
        return [(r[5], r[6], float(r[4])) for r in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]


def write_jsonl(rows: list[tuple[str, str, float]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for a, b, score in rows:
            fh.write(json.dumps({"sentence1": a, "sentence2": b, "score": score}) + "\n")
    return path


def correlations(gold: list[float], predicted: list[float]) -> dict[str, float]:
    from scipy.stats import pearsonr, spearmanr

    return {"spearman": round(float(spearmanr(gold, predicted).statistic), 4),
            "pearson": round(float(pearsonr(gold, predicted).statistic), 4)}


def frozen_cosine(test: list[tuple[str, str, float]]) -> dict[str, Any]:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from fmkit.models.backbone import resolve_model_path

    start = time.perf_counter()
    model = SentenceTransformer(str(resolve_model_path("all-MiniLM-L6-v2")), device="cpu")
    a = model.encode([r[0] for r in test], batch_size=64, normalize_embeddings=True)
    b = model.encode([r[1] for r in test], batch_size=64, normalize_embeddings=True)
    cosine = np.sum(a * b, axis=1)
    return {"name": "frozen bi-encoder cosine (sentence-transformers)", "train_seconds": 0.0,
            "wall_seconds": round(time.perf_counter() - start, 1),
            **correlations([r[2] for r in test], cosine.tolist())}


def fmkit_pairs(train: Path, dev: Path, test: Path, epochs: float, extra: list[str], encoding: str) -> dict[str, Any]:
    run = WORK / f"fmkit_{encoding}"
    fmkit = [sys.executable, "-m", "fmkit"]
    start = time.perf_counter()
    subprocess.run([*fmkit, "train", "--task", "regression", "--data", str(train), "--eval", str(dev),
                    "--strategy", "full", "--epochs", str(epochs), "--output", str(run), "--overwrite", "--quiet",
                    "--set", f"task.pair_encoding={encoding}", *extra], check=True, cwd=REPO)
    wall = time.perf_counter() - start
    metrics = json.loads((run / "metrics.json").read_text())
    out = subprocess.run([*fmkit, "eval", str(run), "--data", str(test), "--json"], check=True, cwd=REPO,
                         capture_output=True, text=True)
    evaluated = json.loads(out.stdout)
    kind = "cross-encoder" if encoding == "cross" else "bi-encoder, cosine"
    return {"name": f"fmkit --task regression, pairs as a {kind} (full, {epochs:g} epochs"
                    f"{', ' + ' '.join(extra) if extra else ''})",
            "train_seconds": metrics["train_seconds"], "wall_seconds": round(wall, 1),
            "dev_spearman": round(metrics["spearman"], 4),
            "spearman": round(evaluated["spearman"], 4), "pearson": round(evaluated["pearson"], 4),
            "rmse": round(evaluated["rmse"], 4)}


def st_cross_encoder(train_rows: list[tuple[str, str, float]], test: list[tuple[str, str, float]],
                     epochs: int) -> dict[str, Any]:
    """sentence-transformers' STS-B cross-encoder example (labels scaled to 0-1, BCE-with-logits as there)."""
    from sentence_transformers.cross_encoder import CrossEncoder
    from torch.utils.data import DataLoader

    from fmkit.models.backbone import resolve_model_path

    try:
        from sentence_transformers import InputExample
    except ImportError:  # pragma: no cover
        from sentence_transformers.readers import InputExample
    model = CrossEncoder(str(resolve_model_path("all-MiniLM-L6-v2")), num_labels=1, device="cpu")
    examples = [InputExample(texts=[a, b], label=s / 5.0) for a, b, s in train_rows]
    loader = DataLoader(examples, shuffle=True, batch_size=16)  # type: ignore[arg-type, var-annotated]
    start = time.perf_counter()
    model.fit(train_dataloader=loader, epochs=epochs, warmup_steps=int(0.1 * len(loader) * epochs),
              show_progress_bar=False)
    seconds = time.perf_counter() - start
    scores = model.predict([[a, b] for a, b, _ in test], batch_size=64, show_progress_bar=False)
    return {"name": f"sentence-transformers CrossEncoder.fit ({epochs} epochs, batch 16)",
            "train_seconds": round(seconds, 1), "wall_seconds": round(seconds, 1),
            **correlations([r[2] for r in test], [float(s) for s in scores])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--set", action="append", default=[], help="extra fmkit config, KEY=VALUE")
    parser.add_argument("--pair-encodings", default="cross,bi", help="fmkit rows: cross, bi or both (cross,bi)")
    parser.add_argument("--with-crossencoder", action="store_true")
    parser.add_argument("--crossencoder-json", type=Path,
                        help="a row st_cross_encoder() measured in an earlier process (it takes ~25 min on 2 cores); "
                        "listed with that note instead of being run again")
    parser.add_argument("--write", action="store_true", help="write the results into BENCHMARKS.md")
    args = parser.parse_args()
    import torch

    train_rows, dev_rows, test_rows = load_sts("sts-train.csv"), load_sts("sts-dev.csv"), load_sts("sts-test.csv")
    train, dev, test = (write_jsonl(r, WORK / f"{n}.jsonl") for n, r in
                        (("train", train_rows), ("dev", dev_rows), ("test", test_rows)))
    extra = [x for kv in args.set for x in ("--set", kv)]
    rows = [frozen_cosine(test_rows)]
    rows += [fmkit_pairs(train, dev, test, args.epochs, extra, encoding) for encoding in args.pair_encodings.split(",")]
    if args.with_crossencoder:
        rows.append(st_cross_encoder(train_rows, test_rows, int(args.epochs)))
    elif args.crossencoder_json:
        earlier = json.loads(args.crossencoder_json.read_text())
        rows.append({**earlier, "name": earlier["name"] + " (earlier process, same machine)"})
    result = {"machine": machine(), "threads": torch.get_num_threads(), "rows": rows}
    (WORK / "results.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    if args.write:
        lines = ["| method | test Spearman | test Pearson | train s | wall s |", "|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['name']} | {r['spearman']:.4f} | {r['pearson']:.4f} | {r['train_seconds']:.0f} | "
                         f"{r['wall_seconds']:.0f} |")
        text = (f"Machine: {result['machine']}, {result['threads']} torch threads, fp32 (no bf16 on this CPU).\n"
                f"Command: `.venv/bin/python bench/stsb.py --epochs {args.epochs:g} --pair-encodings {args.pair_encodings}"
                f"{' --with-crossencoder' if args.with_crossencoder else ''}"
                f"{' --crossencoder-json ' + str(args.crossencoder_json) if args.crossencoder_json else ''}"
                f"{''.join(' --set ' + kv for kv in args.set)} --write`. STS-B train (5,749 pairs) -> dev picks "
                "the checkpoint -> test (1,379 pairs); one run, one seed.\n\n" + "\n".join(lines) + "\n")
        write_subsection(SECTION, "### STS-B: text-pair regression (cross-encoder)", text)


if __name__ == "__main__":
    main()
