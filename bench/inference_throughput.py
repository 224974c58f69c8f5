"""Offline CPU inference on SST-2 dev+test (2,693 sentences), side by side, same fine-tuned weights:

  transformers pipeline, batch size 1 and 32   what a user would write (fp32; and bf16 weights at 32)
  fmkit torch fp32 / bf16                      Predictor, length-sorted batches, --precision fp32 / bf16
  fmkit ONNX fp32 / ONNX int8                  `fmkit export` outputs (int8 verified on SST-2 dev)

Fairness: the pipeline runs the *same* network. fmkit's classifier is encoder + mean pooling + linear
head, which no stock transformers class has, so the bench wraps the very same modules (the fine-tuned
BertModel and the head's nn.Linear) in a BertPreTrainedModel subclass whose forward is mean pooling
+ linear: identical logits, and the stock text-classification pipeline (tokenize, pad per batch,
softmax) around it. Every system uses all cores of the machine (torch and ORT default threads).
Rounds are interleaved (A B C D E, A B C D E, ...) so drifting load on a shared machine hits all
alike; the table gives each system's median over rounds and its ratio to pipeline@32.

    .venv/bin/python bench/inference_throughput.py [--rounds 3] [--train-rows 4000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

from sst2_model import SST2, WORK, ensure_sst2_model, read_tsv, write_labelled_csv


def hf_pipeline(model_dir: Path, batch_size: int, bf16: bool = False) -> Callable[[list[str]], list[int]]:
    import torch
    from transformers import BertPreTrainedModel, pipeline
    from transformers.modeling_outputs import SequenceClassifierOutput

    from fmkit.models.backbone import load_tokenizer, quiet_transformers
    from fmkit.models.classifier import TextClassifier

    fm = TextClassifier.from_pretrained(model_dir)
    quiet_transformers()  # the pipeline warns that it does not know the wrapper class; it runs it all the same

    class BertMeanPoolForSequenceClassification(BertPreTrainedModel):  # type: ignore[misc]
        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self.bert = fm.encoder
            self.classifier = fm.head.linear

        def forward(self, input_ids: Any = None, attention_mask: Any = None, **_: Any) -> SequenceClassifierOutput:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return SequenceClassifierOutput(logits=self.classifier(pooled))

    model = BertMeanPoolForSequenceClassification(fm.encoder.config).eval()
    if bf16:
        model = model.to(torch.bfloat16)  # what `pipeline(..., torch_dtype=torch.bfloat16)` does to the weights
    tok = load_tokenizer(model_dir)
    pipe = pipeline("text-classification", model=model, tokenizer=tok, device=torch.device("cpu"), batch_size=batch_size)
    label_index = {label: i for i, label in enumerate(fm.labels)}

    def run(texts: list[str]) -> list[int]:
        with torch.inference_mode():
            out = pipe(texts, truncation=True, max_length=fm.max_length)
        return [label_index[o["label"]] for o in out]

    return run


def fmkit_predictor(model_dir: Path, backend: str, precision: str | None = None,
                    batch_size: int | None = None) -> Callable[[list[str]], list[int]]:
    from fmkit.inference.predictor import Predictor

    predictor = Predictor.load(model_dir, backend=backend, batch_size=batch_size, precision=precision)

    def run(texts: list[str]) -> list[int]:
        return [int(i) for i in predictor.predict_proba(texts).argmax(1)]

    return run


def encoder_gflop(model_dir: Path, texts: list[str]) -> tuple[float, float]:
    """The fp32 work the encoder must do for `texts`, padding excluded: per layer 2*n*(4h^2 + 2hf) for the
    linear layers and 4*n^2*h for attention, n = a text's token count. What a perfect batcher would compute."""
    from fmkit.inference.predictor import Predictor

    config = json.loads((model_dir / "config.json").read_text())
    h, f, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    lengths = Predictor.load(model_dir, backend="torch").encode(texts).lengths.astype(np.float64)
    per_layer = 2 * lengths * (4 * h * h + 2 * h * f) + 4 * lengths**2 * h
    return float(layers * per_layer.sum() / 1e9), float(lengths.mean())


def matmul_ceiling(model_dir: Path, rows: int) -> dict[str, float]:
    """torch's fp32 GEMM rate on this machine (all threads), at the encoder's own linear shapes with `rows`
    token rows (batch x mean length) and at 2048^3; the best of them is the ceiling utilisation is taken of."""
    import torch

    config = json.loads((model_dir / "config.json").read_text())
    h, f = config["hidden_size"], config["intermediate_size"]
    rates = {}
    for name, (m, k, n) in {"h->h": (rows, h, h), "h->ffn": (rows, h, f), "ffn->h": (rows, f, h),
                            "2048^3": (2048, 2048, 2048)}.items():
        a, b = torch.randn(m, k), torch.randn(k, n)
        for _ in range(5):
            a @ b
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < 1.0:
            a @ b
            calls += 1
        rates[name] = round(2 * m * k * n * calls / (time.perf_counter() - start) / 1e9, 1)
    return rates


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--train-rows", type=int, default=4000)
    ap.add_argument("--batch1-sample", type=int, default=0, help="pipeline@1 on only the first N texts (0: all)")
    ap.add_argument("--batch-size", type=int, help="fmkit's texts per forward pass (default: `fmkit predict`'s, per backend)")
    args = ap.parse_args()

    from fmkit.inference.export import export_onnx

    model_dir = ensure_sst2_model(args.train_rows)
    dev_texts, dev_labels = read_tsv(SST2 / "dev.tsv")
    test_texts, _ = read_tsv(SST2 / "test.tsv")
    texts = dev_texts + test_texts
    dev_csv = write_labelled_csv(WORK / "sst2-dev.csv", dev_texts, dev_labels)
    exports: dict[str, Any] = {}
    for quant in ("none", "int8"):
        out = WORK / f"onnx-{quant}"
        start = time.perf_counter()
        report = export_onnx(model_dir, out, quantize=quant, verify=dev_csv, force=True)
        exports[quant] = {**report.to_dict(), "export_seconds": round(time.perf_counter() - start, 1)}
        print(f"export {quant}: agreement {report.agreement:.4f}, dev accuracy {report.source_accuracy:.4f} -> "
              f"{report.export_accuracy:.4f} ({report.accuracy_delta_points:+.2f} points), {report.onnx_bytes / 1e6:.1f} MB",
              flush=True)

    systems: dict[str, Callable[[list[str]], list[int]]] = {
        "transformers pipeline, batch 1": hf_pipeline(model_dir, 1),
        "transformers pipeline, batch 32": hf_pipeline(model_dir, 32),
        "transformers pipeline, batch 32, bf16 weights": hf_pipeline(model_dir, 32, bf16=True),
        "fmkit torch fp32": fmkit_predictor(model_dir, "torch", "fp32", args.batch_size),
        "fmkit torch bf16": fmkit_predictor(model_dir, "torch", "bf16", args.batch_size),
        "fmkit ONNX fp32": fmkit_predictor(WORK / "onnx-none", "onnx", batch_size=args.batch_size),
        "fmkit ONNX int8": fmkit_predictor(WORK / "onnx-int8", "onnx", batch_size=args.batch_size),
    }
    gold = np.asarray(dev_labels)
    rates: dict[str, list[float]] = {name: [] for name in systems}
    accuracy: dict[str, float] = {}
    counts: dict[str, int] = {}
    for run in systems.values():
        run(texts[:64])  # warm-up: first-call allocations, ORT kernel selection
    for r in range(args.rounds):
        for name, run in systems.items():
            batch = texts[: args.batch1_sample] if name.endswith("batch 1") and args.batch1_sample else texts
            start = time.perf_counter()
            preds = run(batch)
            seconds = time.perf_counter() - start
            rates[name].append(len(batch) / seconds)
            counts[name] = len(batch)
            if r == 0:
                n = min(len(preds), len(gold))  # texts start with the dev set; a subsample scores its dev part
                accuracy[name] = float((np.asarray(preds[:n]) == gold[:n]).mean())
            print(f"round {r + 1} {name:<34} {len(batch) / seconds:8.1f} sentences/s  dev accuracy {accuracy[name]:.4f}",
                  flush=True)

    gflop, mean_tokens = encoder_gflop(model_dir, texts)
    ceiling = matmul_ceiling(model_dir, rows=round((args.batch_size or 32) * mean_tokens))
    best = max(ceiling.values())
    base = statistics.median(rates["transformers pipeline, batch 32"])
    rows = []
    for name in systems:
        med = statistics.median(rates[name])
        row = {"system": name, "median_sentences_per_s": round(med, 1), "vs_pipeline32": round(med / base, 2),
               "dev_accuracy": round(accuracy[name], 4), "texts": counts[name], "rounds": rates[name]}
        if "fp32" in name or ("pipeline" in name and "bf16" not in name):  # the fp32 path: share of the ceiling
            row["gflop_per_s"] = round(gflop * med / len(texts), 1)
            row["share_of_ceiling"] = round(row["gflop_per_s"] / best, 3)
        rows.append(row)
    from _common import machine

    result = {"command": " ".join(["python", *sys.argv]), "machine": machine(), "texts": len(texts),
              "mean_tokens": round(mean_tokens, 1), "encoder_gflop": round(gflop, 1), "batch_size": args.batch_size,
              "cpu_threads": os.cpu_count(), "matmul_ceiling_gflop_per_s": ceiling, "model": str(model_dir),
              "exports": exports, "results": rows}
    (WORK / "inference_throughput.json").write_text(json.dumps(result, indent=2))
    print(f"\n{machine()}; {len(texts)} texts, {mean_tokens:.1f} tokens on average, {gflop:.0f} GFLOP of encoder work; "
          f"torch fp32 GEMM on this machine: {ceiling} GFLOP/s (ceiling {best})")
    print("\n| system | sentences/s (median) | vs pipeline@32 | fp32 GFLOP/s (share of ceiling) | SST-2 dev accuracy |"
          "\n|---|---:|---:|---:|---:|")
    for row in rows:
        share = f"{row['gflop_per_s']} ({100 * row['share_of_ceiling']:.0f}%)" if "gflop_per_s" in row else ""
        print(f"| {row['system']} | {row['median_sentences_per_s']} | {row['vs_pipeline32']}x | {share} | "
              f"{row['dev_accuracy']:.4f} |")

if __name__ == "__main__":
    main()
