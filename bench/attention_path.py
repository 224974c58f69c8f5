"""Which attention path is faster on CPU: torch's fused SDPA kernel or the plain math path (QK^T, softmax, PV)?

Why: fmkit's CPU training swaps in its own attention function for dropout masks (fmkit/models/cpu_dropout.py).
When the attention dropout is 0, transformers would use SDPA. This measures both paths in training steps
(MiniLM, bf16 autocast, attention dropout 0, hidden dropout kept: full fine-tuning and LoRA on values +
feed-forward) and in inference forward passes (bf16, no grad), one fresh process per measurement, the two
paths alternating, medians over steps and rounds.

    python bench/attention_path.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, run_child

CHILD = r"""
import json, statistics, sys, time
import torch
kind, path, tokens, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
import fmkit.models.cpu_dropout as cd
from fmkit.models.backbone import bundled_minilm_path
from fmkit.models.classifier import TextClassifier
from fmkit.models.precision import FrozenLinearWeightsInBf16
from fmkit.config.schema import LoraSection
from fmkit.models.strategies import LoraStrategy

def math_attention(module, q, k, v, mask, dropout=0.0, scaling=None, **kw):
    scale = scaling if scaling is not None else q.shape[-1] ** -0.5
    s = torch.matmul(q, k.transpose(-1, -2)) * scale
    if mask is not None:
        s = s.masked_fill(~mask, torch.finfo(s.dtype).min) if mask.dtype == torch.bool else s + mask
    p = torch.softmax(s, dim=-1, dtype=torch.float32).to(q.dtype)
    return torch.matmul(p, v).transpose(1, 2).contiguous(), None

g = torch.Generator().manual_seed(0)
rows = 64 if kind == "infer" else 32
ids = torch.randint(1000, 5000, (rows, tokens), generator=g)
mask = torch.ones_like(ids)
mask[: rows // 4, tokens // 2:] = 0  # some padded rows, as in real batches
labels = torch.randint(0, 2, (rows,), generator=g)
torch.manual_seed(0)
model = TextClassifier.from_backbone(bundled_minilm_path(), ["a", "b"])
times = []
if kind == "infer":
    model.eval()
    if path == "math":
        AttentionInterface.register("bench_math", math_attention)
        AttentionMaskInterface.register("bench_math", sdpa_mask)
        for sub in model.modules():
            config = getattr(sub, "config", None)
            if config is not None and getattr(config, "_attn_implementation", None) == "sdpa":
                config._attn_implementation = "bench_math"
    with torch.inference_mode(), FrozenLinearWeightsInBf16(model, enabled=True):
        for i in range(13):
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                model(input_ids=ids, attention_mask=mask)
            if i >= 3:
                times.append(time.perf_counter() - start)
else:
    if kind == "lora":
        LoraStrategy(LoraSection(target_modules=["value", "intermediate.dense"])).prepare(model)
    for name, module in model.named_modules():
        if name.endswith("attention.self.dropout"):
            module.p = 0.0
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4, fused=True)
    with cd.fast_cpu_dropout(model), FrozenLinearWeightsInBf16(model, enabled=kind == "lora"):
        if path == "sdpa":  # what transformers (and fmkit before) runs at attention dropout 0
            def sdpa_at_zero(module, q, k, v, m, dropout=0.0, scaling=None, **kw):
                if dropout == 0.0:
                    return sdpa_attention_forward(module, q, k, v, m, dropout=dropout, scaling=scaling, **kw)
                return cd.attention_with_fast_dropout(module, q, k, v, m, dropout, scaling, **kw)
            AttentionInterface.register(cd.ATTENTION_NAME, sdpa_at_zero)
        for i in range(15):
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(input_ids=ids, attention_mask=mask)
            torch.nn.functional.cross_entropy(logits.float(), labels).backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if i >= 3:
                times.append(time.perf_counter() - start)
print(json.dumps({"ms": statistics.median(times) * 1e3}))
"""

CASES = [("train", 24), ("train", 48), ("lora", 24), ("infer", 32), ("infer", 96)]
LABELS = {"train": "full training step, 32 x {t}", "lora": "LoRA training step, 32 x {t}",
          "infer": "inference forward, 64 x {t}"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    results: dict[tuple[str, int, str], list[float]] = {}
    for _ in range(a.rounds):
        for kind, tokens in CASES:
            for path in ("sdpa", "math"):
                out = run_child(CHILD, kind, path, str(tokens), str(a.threads), env={"OMP_NUM_THREADS": str(a.threads)})
                results.setdefault((kind, tokens, path), []).append(out["ms"])
                print(json.dumps({"kind": kind, "tokens": tokens, "path": path, "ms": round(out["ms"], 1)}), flush=True)
    print(f"\nmachine: {machine()}, threads {a.threads}, {a.rounds} rounds (median of rounds)")
    print("| case | SDPA ms | math path ms | math / SDPA |")
    print("|---|---:|---:|---:|")
    for kind, tokens in CASES:
        sdpa = statistics.median(results[(kind, tokens, "sdpa")])
        math = statistics.median(results[(kind, tokens, "math")])
        print(f"| {LABELS[kind].format(t=tokens)} | {sdpa:.0f} | {math:.0f} | {math / sdpa:.2f} |")


if __name__ == "__main__":
    main()
