"""FusedLoraLinear computes what peft's LoRA Linear computes, forward and backward, and defers to it otherwise."""

from __future__ import annotations

import copy

import pytest
import torch
from peft import LoraConfig, get_peft_model
from peft.tuners.lora.layer import Linear as PeftLoraLinear
from torch import nn

from fmkit.models.lora_linear import FusedLoraLinear, register_fused_linear


class TwoLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Linear(12, 20)
        self.down = nn.Linear(20, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(torch.relu(self.up(x)))


def pair(dropout: float = 0.0) -> tuple[nn.Module, nn.Module]:
    """The same model with peft's layers and with fused ones; B non-zero so the adapters matter."""
    torch.manual_seed(0)
    base = TwoLayers()
    plain = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout,
                                                           target_modules=["up", "down"]))
    fused = get_peft_model(copy.deepcopy(base), register_fused_linear(
        LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules=["up", "down"])))
    with torch.no_grad():
        for (name, p), (fused_name, q) in zip(plain.named_parameters(), fused.named_parameters(), strict=True):
            assert name == fused_name
            if "lora_B" in name:
                p.normal_()
            q.copy_(p)
    return plain, fused


def grads(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    x = x.clone().requires_grad_(True)
    out = model(x)
    out.square().sum().backward()
    assert x.grad is not None
    return out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, x.grad


def test_fused_layers_replace_peft_linear_and_keep_its_save_format() -> None:
    plain, fused = pair()
    assert sum(isinstance(m, FusedLoraLinear) for m in fused.modules()) == 2
    assert not any(isinstance(m, FusedLoraLinear) for m in plain.modules())
    assert all(isinstance(m, PeftLoraLinear) for m in fused.modules() if isinstance(m, FusedLoraLinear))
    assert fused.peft_config["default"].to_dict() == plain.peft_config["default"].to_dict()


def test_same_outputs_and_gradients_as_peft() -> None:
    plain, fused = pair()
    x = torch.randn(3, 5, 12)
    out_a, grads_a, dx_a = grads(plain, x)
    out_b, grads_b, dx_b = grads(fused, x)
    torch.testing.assert_close(out_b, out_a)
    torch.testing.assert_close(dx_b, dx_a)
    assert grads_a.keys() == grads_b.keys() and any("lora_A" in n for n in grads_a)
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name])


def test_same_under_bf16_autocast_up_to_bf16_rounding() -> None:
    plain, fused = pair()
    x = torch.randn(3, 5, 12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_a = plain(x)
        out_b = fused(x)
    assert out_b.dtype == out_a.dtype == torch.bfloat16
    torch.testing.assert_close(out_b.float(), out_a.float(), atol=0.05, rtol=0.02)


@pytest.mark.parametrize("state", ["merged", "disabled", "dropout"])
def test_other_states_take_peft_forward(state: str) -> None:
    plain, fused = pair(dropout=0.5 if state == "dropout" else 0.0)
    x = torch.randn(4, 12)
    if state == "merged":
        plain.merge_adapter()
        fused.merge_adapter()
    for model in (plain, fused):
        model.train(state == "dropout")
    layer = fused.base_model.model.up
    assert isinstance(layer, FusedLoraLinear)
    if state == "disabled":
        with plain.disable_adapter(), fused.disable_adapter():
            assert layer.plain_adapter() is None
            torch.testing.assert_close(fused(x), plain(x))
        return
    assert layer.plain_adapter() is None
    torch.manual_seed(1)
    expected = plain(x)
    torch.manual_seed(1)
    torch.testing.assert_close(fused(x), expected)


def test_merge_and_unload_gives_the_same_function() -> None:
    _, fused = pair()
    x = torch.randn(4, 12)
    with torch.no_grad():
        expected = fused(x)
        merged = fused.merge_and_unload()
    assert not any(isinstance(m, PeftLoraLinear) for m in merged.modules())
    torch.testing.assert_close(merged(x), expected)
