"""What one LoRA training step costs against a full one, split into forward, backward and optimizer.

MiniLM, a batch of 32 x 24 tokens, the loop's settings (bf16 autocast where the CPU has it natively,
fmkit's CPU dropout, frozen weights cast once, clip + fused AdamW). Wall-clock medians over
interleaved rounds, so machine drift hits every setting alike; ratios are to `full`.

    python bench/lora_step.py --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine

from fmkit.config.schema import LoraSection
from fmkit.models.backbone import bundled_minilm_path
from fmkit.models.classifier import TextClassifier
from fmkit.models.cpu_dropout import fast_cpu_dropout
from fmkit.models.precision import FrozenLinearWeightsInBf16
from fmkit.models.strategies import LoraStrategy
from fmkit.training.precision import cpu_has_native_bf16

SETTINGS: dict[str, tuple[list[str], int | None] | None] = {
    "full": None,
    "lora value+intermediate.dense (default)": (["value", "intermediate.dense"], None),
    "lora value+intermediate.dense, lora_layers=5": (["value", "intermediate.dense"], 5),
    "lora query+value": (["query", "value"], None),
    "lora query+value, lora_layers=3": (["query", "value"], 3),
    "lora all-linear": (["all-linear"], None),
}


def build(setting: tuple[list[str], int | None] | None) -> TextClassifier:
    torch.manual_seed(0)
    model = TextClassifier.from_backbone(bundled_minilm_path(), ["a", "b"])
    if setting is not None:
        LoraStrategy(LoraSection(target_modules=setting[0], layers=setting[1])).prepare(model)
    return model.train()


def time_parts(setting: tuple[list[str], int | None] | None, batch: dict[str, torch.Tensor], bf16: bool,
               steps: int) -> dict[str, float]:
    model = build(setting)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, fused=True)
    parts: dict[str, list[float]] = {"forward": [], "backward": [], "optimizer": []}
    with fast_cpu_dropout(model), FrozenLinearWeightsInBf16(model, enabled=bf16):
        for i in range(steps + 3):  # 3 warm-up steps
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
            loss = torch.nn.functional.cross_entropy(logits.float(), batch["labels"])
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            t3 = time.perf_counter()
            if i >= 3:
                parts["forward"].append(t1 - t0)
                parts["backward"].append(t2 - t1)
                parts["optimizer"].append(t3 - t2)
    return {k: statistics.median(v) for k, v in parts.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=12)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    bf16 = cpu_has_native_bf16()
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 5000, (32, 24), generator=generator)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.randint(0, 2, (32,), generator=generator)}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in SETTINGS}
    for _ in range(a.rounds):
        for name, setting in SETTINGS.items():
            results[name].append(time_parts(setting, batch, bf16, a.steps))
    print(f"machine: {machine()}, threads {a.threads}, bf16 autocast: {bf16}, {a.rounds} rounds x {a.steps} steps")
    print("| setting | forward ms | backward ms | clip + AdamW ms | step ms | / full |")
    print("|---|---:|---:|---:|---:|---:|")
    medians = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in results.items()}
    full_step = sum(medians["full"].values())
    for name, parts in medians.items():
        step = sum(parts.values())
        print(f"| {name} | {parts['forward'] * 1e3:.0f} | {parts['backward'] * 1e3:.0f} | {parts['optimizer'] * 1e3:.1f} | "
              f"{step * 1e3:.0f} | {step / full_step:.2f} |")


if __name__ == "__main__":
    main()
