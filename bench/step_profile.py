"""Where a MiniLM training step spends its time, in CPU seconds (robust on a shared machine).

Measures, with one thread and process CPU time, the choices behind fmkit's training defaults:
fused vs foreach AdamW, bf16 autocast vs fp32 on CPUs with native bf16 (AMX / AVX512-BF16), and a
LoRA step (query/value, r 8) with and without dropout on the adapter input, against a full step,
and a masked-LM step with the vocabulary projection on every token or on the masked ones only.

    python bench/step_profile.py
"""

from __future__ import annotations

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
from fmkit.models.strategies import LoraStrategy
from fmkit.training.precision import cpu_has_native_bf16


def median_cpu_seconds(step, repeats: int = 6, warmup: int = 2) -> float:
    times = []
    for i in range(warmup + repeats):
        start = time.process_time()
        step()
        if i >= warmup:
            times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = TextClassifier.from_backbone(bundled_minilm_path(), ["a", "b"])
    model.train()
    rows = ["| measurement | fp32 / foreach | fmkit's choice | ratio |", "|---|---|---|---|"]
    for length in (24, 64):
        ids = torch.randint(1000, 5000, (32, length))
        mask = torch.ones_like(ids)
        labels = torch.randint(0, 2, (32,))

        def forward_backward(bf16: bool, ids: torch.Tensor = ids, mask: torch.Tensor = mask,
                             labels: torch.Tensor = labels) -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(input_ids=ids, attention_mask=mask)
            torch.nn.functional.cross_entropy(logits.float(), labels).backward()
            model.zero_grad(set_to_none=False)

        fp32 = median_cpu_seconds(lambda: forward_backward(False))
        bf16 = median_cpu_seconds(lambda: forward_backward(True))
        rows.append(f"| forward+backward, batch 32 x {length} tokens (s) | {fp32:.3f} | {bf16:.3f} (bf16 autocast) | "
                    f"{fp32 / bf16:.2f}x |")
    for name, kwargs in (("foreach", {"foreach": True}), ("fused", {"fused": True})):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, **kwargs)
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        seconds = median_cpu_seconds(optimizer.step)
        if name == "foreach":
            foreach = seconds
        else:
            rows.append(f"| AdamW step over all 22.7M weights (s) | {foreach:.3f} | {seconds:.3f} (fused) | {foreach / seconds:.2f}x |")
    rows.extend(lora_rows())
    rows.extend(mlm_rows())
    print(f"{machine()}; native bf16: {cpu_has_native_bf16()}; 1 thread, median process CPU seconds of 6 steps\n")
    print("\n".join(rows))


def lora_rows() -> list[str]:
    """A whole training step as the loop runs it (bf16 where native, fast CPU dropout, fused AdamW)."""
    ids = torch.randint(1000, 5000, (32, 32))
    mask = torch.ones_like(ids)
    labels = torch.randint(0, 2, (32,))
    bf16 = cpu_has_native_bf16()
    seconds = {}
    for name, lora_dropout in (("full", None), ("lora, adapter dropout 0.1", 0.1), ("lora, adapter dropout 0 (default)", 0.0)):
        torch.manual_seed(0)
        model = TextClassifier.from_backbone(bundled_minilm_path(), ["a", "b"])
        model.train()
        if lora_dropout is not None:
            LoraStrategy(LoraSection(dropout=lora_dropout)).prepare(model)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5, fused=True)

        def step(model: TextClassifier = model, optimizer: torch.optim.Optimizer = optimizer) -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(input_ids=ids, attention_mask=mask)
            torch.nn.functional.cross_entropy(logits.float(), labels).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        with fast_cpu_dropout(model, True):
            seconds[name] = median_cpu_seconds(step)
    return [f"| training step, batch 32 x 32 tokens: {name} (s) | {seconds['full']:.3f} (full) | {s:.3f} | "
            f"{s / seconds['full']:.2f} of full |" for name, s in seconds.items() if name != "full"]


def mlm_rows() -> list[str]:
    """`fmkit pretrain`'s step on 32 tweets-length texts (15% masked), bf16 where native, fused AdamW."""
    from fmkit.models.losses import masked_lm_loss
    from fmkit.models.mlm import MaskedLanguageModel

    torch.manual_seed(0)
    ids = torch.randint(1000, 5000, (32, 40))
    predict = torch.rand(ids.shape) < 0.15
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.where(predict, ids, -100),
             "predict_mask": predict}
    model = MaskedLanguageModel.from_backbone(bundled_minilm_path())
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    bf16 = cpu_has_native_bf16()
    seconds = {}
    for name, keys in (("every token", ("input_ids", "attention_mask")),
                       ("masked tokens only", ("input_ids", "attention_mask", "predict_mask"))):
        def step(keys: tuple[str, ...] = keys) -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                outputs = model(**{k: batch[k] for k in keys})
            masked_lm_loss(outputs, batch).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        seconds[name] = median_cpu_seconds(step)
    return [f"| masked-LM step, batch 32 x 40 tokens, vocabulary projection on the masked tokens (s) | "
            f"{seconds['every token']:.3f} (every token) | {seconds['masked tokens only']:.3f} | "
            f"{seconds['every token'] / seconds['masked tokens only']:.2f}x |"]


if __name__ == "__main__":
    main()
