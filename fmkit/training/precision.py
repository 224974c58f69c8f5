"""Pick the training precision for this machine: bf16 autocast where the hardware runs it natively."""

from __future__ import annotations

import torch

from fmkit.models.precision import cpu_has_native_bf16


def resolve_mixed_precision(requested: str) -> str:
    """'auto' -> 'bf16' on GPUs that support it and on CPUs with native bf16, else 'no' ('fp16' on older GPUs)."""
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_native_bf16() else "no"


__all__ = ["cpu_has_native_bf16", "resolve_mixed_precision"]
