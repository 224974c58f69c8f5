"""Torch prediction throughput: fmkit's inference BERT encoder vs transformers' BertModel, same everything else.

    python bench/bert_inference_speed.py [--rounds 3] [--threads 2]

`fmkit predict --backend torch` loads a BERT body into fmkit/models/bert_inference.py (no transformers import,
issue 23's start-up); this checks that it costs no throughput. Both rows are the same Predictor (same Rust
tokenizer, length-sorted batches of 64, the same head) on the SST-2 dev+test sentences (2,693) with the SST-2
MiniLM model of bench/inference_throughput.py; only the encoder module differs. fp32 and bf16 (autocast + bf16
linear weights, what `--precision bf16` runs). Rounds interleave the two encoders; medians of sentences/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

from sst2_model import SST2, ensure_sst2_model, read_tsv

from bench._common import machine


def predictors(model_dir: Path, precision: str, threads: int) -> dict[str, object]:
    from fmkit.inference.backends import TorchBackend
    from fmkit.inference.predictor import Predictor
    from fmkit.models.bert_inference import LightBertEncoder
    from fmkit.models.classifier import TextClassifier
    from fmkit.models.meta import read_meta

    light = Predictor.load(model_dir, backend="torch", threads=threads, precision=precision)
    assert light.model is not None and isinstance(light.model.encoder, LightBertEncoder)
    reference_model = TextClassifier.from_pretrained(model_dir)  # AutoModel: transformers' BertModel
    reference = Predictor(reference_model, light.tokenizer, batch_size=light.batch_size, path=model_dir,
                          backend=TorchBackend(reference_model, threads, precision))
    reference.configure(read_meta(model_dir))
    return {"fmkit BERT encoder": light, "transformers BertModel": reference}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model_dir = ensure_sst2_model()
    texts, labels = [], []
    for split in ("dev.tsv", "test.tsv"):
        split_texts, split_labels = read_tsv(SST2 / split)
        texts += split_texts
        labels += split_labels
    gold = np.array(labels)
    rows = []
    for precision in ("fp32", "bf16"):
        systems = predictors(model_dir, precision, args.threads)
        probabilities = {name: p.predict_proba(texts[:64]) for name, p in systems.items()}  # warm-up
        speeds: dict[str, list[float]] = {name: [] for name in systems}
        for i in range(args.rounds):
            for name in (list(systems) if i % 2 == 0 else list(reversed(systems))):
                start = time.perf_counter()
                probabilities[name] = systems[name].predict_proba(texts)  # type: ignore[attr-defined]
                speeds[name].append(len(texts) / (time.perf_counter() - start))
        names = list(systems)
        gap = float(np.abs(probabilities[names[0]] - probabilities[names[1]]).max())
        for name in names:
            positive = systems[name].labels.index("positive")  # type: ignore[attr-defined]
            predicted = (probabilities[name].argmax(1) == positive).astype(int)
            accuracy = float((predicted == gold).mean()) * 100
            rows.append(f"| {name} | {precision} | {statistics.median(speeds[name]):.1f} | "
                        f"{', '.join(f'{s:.0f}' for s in speeds[name])} | {accuracy:.2f}% | {gap:.1e} |")
            print(rows[-1], flush=True)
    print(f"\nMachine: {machine()}; {args.threads} threads; 1-minute load at the end {os.getloadavg()[0]:.2f}. "
          f"`python bench/bert_inference_speed.py --rounds {args.rounds} --threads {args.threads}`, "
          f"SST-2 dev+test ({len(texts):,} sentences), medians of {args.rounds} interleaved rounds.\n")
    print("| encoder | precision | sentences/s | rounds | accuracy | max prob. difference between the two |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
