"""int8 export: one fixed recipe vs the per-CPU candidate choice (issue 23, item 3), same fine-tuned weights.

  int8 fixed        what fmkit did before, and what onnxruntime's quantize_dynamic on a plain export gives:
                    the SDPA graph, int8 per-channel weights on MatMul/Gemm (recipe sdpa_s8_channel)
  int8 candidates   `fmkit export --quantize int8 --verify dev.csv`: the candidates for this CPU, timed, the
                    fastest within --max-accuracy-drop kept (fmkit/inference/quantize.py)
  ONNX fp32         `fmkit export` without --quantize, for scale

Both int8 exports verify on SST-2 dev (872 sentences); throughput is fmkit's Predictor (backend onnx, batch 64,
all cores) on SST-2 dev+test (2,693 sentences), rounds interleaved, median over rounds. Also printed: the
export's own candidate table (seconds per synthetic batch, dev accuracy) and each export's wall time.

    .venv/bin/python bench/int8_candidates.py [--rounds 3] [--train-rows 4000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine
from sst2_model import SST2, WORK, ensure_sst2_model, read_tsv


def export(model_dir: Path, out: Path, dev_csv: Path, quantize: str, fixed_recipe: bool) -> dict[str, Any]:
    from fmkit.inference import quantize as quantize_mod
    from fmkit.inference.export import export_onnx

    saved = quantize_mod.recipes_for
    if fixed_recipe:
        quantize_mod.recipes_for = lambda flags: [quantize_mod.SDPA_S8_CHANNEL]
    try:
        start = time.perf_counter()
        report = export_onnx(model_dir, out, quantize=quantize, verify=dev_csv, force=True)
        seconds = time.perf_counter() - start
    finally:
        quantize_mod.recipes_for = saved
    return {**report.to_dict(), "export_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-rows", type=int, default=4000)
    parser.add_argument("--out", type=Path, default=WORK / "int8_candidates.json")
    args = parser.parse_args()

    from fmkit.inference.predictor import Predictor

    model_dir = ensure_sst2_model(args.train_rows)
    dev_texts, dev_labels = read_tsv(SST2 / "dev.tsv")
    test_texts = read_tsv(SST2 / "test.tsv")[0] if (SST2 / "test.tsv").is_file() else []
    texts = dev_texts + test_texts
    names = {0: "negative", 1: "positive"}  # SST-2's label ids, as the fine-tuned model names them
    dev_csv = WORK / "sst2-dev.csv"
    if not dev_csv.is_file():
        import csv

        with open(dev_csv, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["text", "label"])
            writer.writerows((t, names[y]) for t, y in zip(dev_texts, dev_labels, strict=True))

    systems = {"ONNX fp32": ("none", False), "int8 fixed": ("int8", True), "int8 candidates": ("int8", False)}
    exports = {name: export(model_dir, WORK / f"int8-bench-{i}", dev_csv, quant, fixed)
               for i, (name, (quant, fixed)) in enumerate(systems.items())}
    for name, report in exports.items():
        print(f"export {name}: {report['export_seconds']} s, dev accuracy {report['source_accuracy']:.4f} -> "
              f"{report['export_accuracy']:.4f} ({report['accuracy_delta_points']:+.2f} points), "
              f"recipe {report.get('int8_recipe')}")
    print("candidates (this CPU):", json.dumps(exports["int8 candidates"]["cpu_flags"]))
    for row in exports["int8 candidates"]["int8_candidates"]:
        print(f"  {row['name']:34s} {row['seconds_per_batch']:.4f} s/batch  dev acc {row['accuracy']:.4f} "
              f"({row['accuracy_delta_points']:+.2f})  {'chosen' if row['chosen'] else ''}")

    predictors = {name: Predictor.load(WORK / f"int8-bench-{i}", backend="onnx", batch_size=64)
                  for i, name in enumerate(systems)}
    for predictor in predictors.values():
        predictor.predict_proba(texts[:64])  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in predictors}
    for _ in range(args.rounds):
        for name, predictor in predictors.items():
            start = time.perf_counter()
            predictor.predict_proba(texts)
            rates[name].append(len(texts) / (time.perf_counter() - start))
    # Dynamic int8 quantizes activations per batch, so its answers depend on which texts share a batch: the
    # export verifies in 256-text chunks; here the whole dev file goes through at once (batches sorted over it).
    whole_file = {name: float(np.mean(predictor.predict_proba(dev_texts).argmax(1)
                                      == np.asarray([predictor.labels.index(names[y]) for y in dev_labels])))
                  for name, predictor in predictors.items()}
    print(f"\n{machine()}; {len(texts)} SST-2 dev+test sentences, batch 64, median of {args.rounds} rounds")
    base = statistics.median(rates["int8 fixed"])
    rows = []
    for name, values in rates.items():
        median = statistics.median(values)
        rows.append({"system": name, "sentences_per_s": round(median, 1), "vs_int8_fixed": round(median / base, 3),
                     "rounds": [round(v, 1) for v in values], "export_seconds": exports[name]["export_seconds"],
                     "dev_accuracy": exports[name]["export_accuracy"], "dev_accuracy_whole_file": whole_file[name]})
        print(f"{name:16s} {median:7.1f}/s  {median / base:5.2f}x  dev acc {exports[name]['export_accuracy']:.4f} "
              f"(whole file {whole_file[name]:.4f})  "
              f"export {exports[name]['export_seconds']} s  rounds {[round(v) for v in values]}")
    args.out.write_text(json.dumps({"machine": machine(), "exports": exports, "results": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
