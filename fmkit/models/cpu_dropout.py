"""Faster dropout for training on CPU.

Why: torch draws one Mersenne-Twister number per element for a dropout mask on CPU. For a
MiniLM batch (32 x 40 tokens x 384) that costs ~7 ms against ~0.2 ms for the multiply itself,
and a 6-layer encoder runs 20 dropouts per step (hidden states and attention probabilities):
about a fifth of a bf16 training step. Here one random 64-bit word gives four 16-bit draws, so
the mask costs a quarter of the generator calls. A unit is kept when its draw is at or above
round(p * 65536): the keep probability equals 1 - p up to 1/65536. Masks come from torch's
global generator, so seeds, resume and data parallel behave exactly like native dropout.

Attention-probability dropout happens inside scaled_dot_product_attention, so it gets its own
attention function: the same math path SDPA takes when dropout is on, with this mask. Training takes
that path even at dropout 0 when gradients flow through attention: SDPA's fused CPU kernel would be
chosen there, and its backward is about twice as slow.
`fast_cpu_dropout(model)` swaps both in for the length of a training run and restores the
model afterwards; GPUs keep torch's native (Philox, already fast) kernels.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

ATTENTION_NAME = "fmkit_cpu_dropout"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def keep_mask(shape: torch.Size, p: float, device: torch.device) -> torch.Tensor:
    """Boolean mask, True with probability 1 - p (to 1/65536), four draws per random word."""
    n = 1
    for size in shape:
        n *= size
    words = torch.randint(_INT64_MIN, _INT64_MAX, ((n + 3) // 4,), dtype=torch.int64, device=device)
    draws = words.view(torch.int16)[:n].view(shape)  # uniform over [-32768, 32767]
    return draws >= round(p * 65536) - 32768


def drop(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    if not training or p == 0.0:
        return x
    if p >= 1.0:
        return torch.zeros_like(x)
    # where() saves only the boolean mask for backward, like native dropout.
    return torch.where(keep_mask(x.shape, p, x.device), x * (1.0 / (1.0 - p)), 0.0)


class FastDropout(nn.Dropout):
    """nn.Dropout with the cheaper mask above; a subclass so code that reads `.p` still works."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":  # accelerators have fast native kernels
            return super().forward(x)
        return drop(x, self.p, self.training)


def attention_with_fast_dropout(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Transformers attention-interface function: SDPA, except in CPU training (our dropout mask, math path)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    # Training on CPU takes the math path whenever gradients flow through attention, even without dropout: SDPA's
    # fused CPU kernel is faster forward-only but its backward is not (bench/attention_path.py: a MiniLM bf16
    # training step at 32 x 24 tokens, 426 ms through SDPA and 220 ms through these four operations).
    # Frozen layers that nothing below trains (LoRA's lower layers) keep SDPA unless they need dropout masks.
    needs_grad = torch.is_grad_enabled() and (query.requires_grad or key.requires_grad or value.requires_grad)
    math_path = module.training and (dropout > 0.0 or needs_grad)
    if not math_path or getattr(module, "is_causal", False) or query.device.type != "cpu":
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    scores = torch.matmul(query, key.transpose(-1, -2)) * scale
    if attention_mask is not None:  # the sdpa mask format: bool (True = attend) or additive float
        if attention_mask.dtype == torch.bool:
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    probs = drop(probs, dropout, True)
    out = torch.matmul(probs, value)
    return out.transpose(1, 2).contiguous(), None


def _register_attention() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ATTENTION_NAME, attention_with_fast_dropout)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)


def _transformer_configs(model: nn.Module) -> list[Any]:
    """Configs of the Hugging Face models inside `model` whose attention runs through SDPA."""
    found = []
    for sub in model.modules():
        config = getattr(sub, "config", None)
        if config is not None and getattr(config, "_attn_implementation", None) == "sdpa" and config not in found:
            found.append(config)
    return found


@contextmanager
def fast_cpu_dropout(model: nn.Module, enabled: bool = True) -> Iterator[nn.Module]:
    """Within the block, `model` trains with the cheaper CPU dropout; afterwards it is as it was."""
    on_cpu = all(p.device.type == "cpu" for p in model.parameters())
    if not enabled or not on_cpu:
        yield model
        return
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is nn.Dropout:
                fast = FastDropout(child.p, child.inplace)
                fast.train(child.training)
                setattr(parent, name, fast)
                swapped.append((parent, name, child))
    configs = _transformer_configs(model)
    if configs:
        _register_attention()
    originals = [config._attn_implementation for config in configs]
    for config in configs:
        config._attn_implementation = ATTENTION_NAME
    try:
        yield model
    finally:
        for parent, name, original in swapped:
            original.train(getattr(parent, name).training)
            setattr(parent, name, original)
        for config, implementation in zip(configs, originals, strict=True):
            config._attn_implementation = implementation


__all__ = ["FastDropout", "attention_with_fast_dropout", "drop", "fast_cpu_dropout", "keep_mask"]
