"""peft's LoRA Linear with its common training path computed in fewer passes over the activations.

peft computes `base(x) + lora_B(lora_A(dropout(x))) * scaling`: on top of two skinny matmuls, the scaling
multiplies and the sum adds over the whole (tokens x out_features) output, and the multiply is paid again
backward. On CPU those passes are memory-bound and cost as much as the adapter's matmuls. Here the scaling
is folded into B (r x out numbers, not tokens x out) and the product is accumulated into the base output
in place by one addmm_: the same function in fewer passes (bench/lora_step.py measures the difference).

Registered through peft's own extension point (`LoraConfig._register_custom_module`), so saving, loading,
merging and unloading the adapters stay peft's. Anything but the plain case (several or disabled adapters,
merged weights, DoRA and other variants, adapter dropout, per-call adapter names) takes peft's forward.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from peft import LoraConfig
from peft.tuners.lora.layer import Linear as PeftLoraLinear
from torch import nn


class FusedLoraLinear(PeftLoraLinear):
    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        adapter = None if args or kwargs else self.plain_adapter()
        if adapter is None:
            return super().forward(x, *args, **kwargs)
        a = cast(torch.Tensor, self.lora_A[adapter].weight)  # (r, in)
        b = cast(torch.Tensor, self.lora_B[adapter].weight)  # (out, r)
        if x.dtype != a.dtype and not torch.is_autocast_enabled(x.device.type):
            return super().forward(x)  # peft casts mismatched inputs itself
        flat = x.reshape(-1, x.shape[-1])
        result = self.base_layer(flat)  # a fresh 2-D tensor the linear backward does not need: safe to add into
        low_rank = nn.functional.linear(flat, a)
        # result += low_rank @ (scaling * B)^T, accumulated by the GEMM into the base output (no extra pass).
        result.addmm_(low_rank.to(result.dtype), (b * self.scaling[adapter]).to(result.dtype).t())
        return result.view(*x.shape[:-1], result.shape[-1])

    def plain_adapter(self) -> str | None:
        """The one active vanilla adapter, with no dropout on its input, or None for anything else."""
        if self.disable_adapters or self.merged or self.fan_in_fan_out or len(self.active_adapters) != 1:
            return None
        adapter = self.active_adapters[0]
        if adapter not in self.lora_A or adapter in self.lora_variant:
            return None
        if not isinstance(self.lora_dropout[adapter], nn.Identity) or not isinstance(self.base_layer, nn.Linear):
            return None
        return adapter


def register_fused_linear(config: LoraConfig) -> LoraConfig:
    """`config`, set to wrap nn.Linear targets in FusedLoraLinear (peft's experimental custom-layer hook)."""
    config._register_custom_module({nn.Linear: FusedLoraLinear})
    return config


__all__ = ["FusedLoraLinear", "register_fused_linear"]
