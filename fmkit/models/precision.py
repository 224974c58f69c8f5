"""Which floating-point precision a forward pass runs in, and where bf16 is worth it.

On CPUs with AMX or AVX512-BF16 (and on GPUs with bf16), encoder matmuls under bf16 autocast run
~2x faster than fp32 (measured on MiniLM), with the same classification accuracy on the shared
datasets (BENCHMARKS.md, "Inference precision"). Elsewhere bf16 is emulated and slower, so 'auto'
keeps fp32 there. Autocast keeps softmax, layer norm and the outputs in fp32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import lru_cache
from typing import Literal

import torch

InferencePrecision = Literal["auto", "fp32", "bf16"]
ResolvedPrecision = Literal["fp32", "bf16"]


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True on CPUs with AMX or AVX512-BF16, where bf16 matmuls run ~1.7x faster than fp32 (measured on MiniLM)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = fh.read()
    except OSError:
        return False
    return " amx_bf16" in flags or " avx512_bf16" in flags


def resolve_inference_precision(requested: str, device_type: str = "cpu") -> ResolvedPrecision:
    """'auto' -> 'bf16' where the hardware runs it natively, else 'fp32'; 'fp32'/'bf16' are kept."""
    if requested == "fp32":
        return "fp32"
    if requested == "bf16":
        return "bf16"
    if requested != "auto":
        raise ValueError(f"precision must be auto, fp32 or bf16, not {requested!r}")
    if device_type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device_type == "cpu" and cpu_has_native_bf16() else "fp32"


def inference_autocast(precision: ResolvedPrecision, device_type: str = "cpu") -> contextlib.AbstractContextManager[None]:
    """The autocast context of a forward pass in `precision` (a no-op for fp32)."""
    if precision == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _linear_only_parameters(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    """fp32 weights and biases of nn.Linear layers that no other kind of module shares (a tied word
    embedding must keep its fp32 values: the lookup is not autocast)."""
    owners: dict[int, list[torch.nn.Module]] = {}
    params: dict[int, torch.nn.Parameter] = {}
    for mod in module.modules():
        for param in mod.parameters(recurse=False):
            owners.setdefault(id(param), []).append(mod)
            params[id(param)] = param
    return [params[key] for key, mods in owners.items()
            if all(isinstance(m, torch.nn.Linear) for m in mods) and params[key].dtype == torch.float32]


@contextlib.contextmanager
def bf16_linear_weights(module: torch.nn.Module, enabled: bool = True) -> Iterator[None]:
    """nn.Linear weights and biases in bf16 for a run of bf16-autocast forward passes, put back afterwards.

    Under autocast a linear layer casts its fp32 weight and bias to bf16 on every call; cast once for
    the whole run, the outputs are identical (the same values rounded the same way) and encoding is
    ~1.17x faster on MiniLM. The model's own Parameters keep their fp32 values (it may train again).
    """
    if not enabled:
        yield
        return
    saved = [(param, param.data) for param in _linear_only_parameters(module)]
    try:
        with torch.no_grad():
            for param, data in saved:
                param.data = data.to(torch.bfloat16)
        yield
    finally:
        for param, data in saved:
            param.data = data


class FrozenLinearWeightsInBf16:
    """For a bf16-autocast training run: frozen nn.Linear weights (LoRA's base model) held in bf16.

    Autocast casts every fp32 weight to bf16 on every forward; a weight that never trains can be cast
    once for the run, with identical results. The fp32 originals are kept (not re-derived from bf16)
    and put back on exit and inside `fp32()`, for evaluations and checkpoints. Costs 2 bytes per frozen
    weight; trainable weights are left alone.
    """

    def __init__(self, module: torch.nn.Module, enabled: bool = True) -> None:
        frozen = [p for p in _linear_only_parameters(module) if not p.requires_grad] if enabled else []
        self._originals = [(param, param.data) for param in frozen]
        self._casts: list[torch.Tensor] = []
        self._active = False

    def __len__(self) -> int:
        return len(self._originals)

    def _set(self, bf16: bool) -> None:
        if bf16 and not self._casts:
            self._casts = [data.to(torch.bfloat16) for _, data in self._originals]
        for i, (param, data) in enumerate(self._originals):
            param.data = self._casts[i] if bf16 else data
        self._active = bf16

    def __enter__(self) -> FrozenLinearWeightsInBf16:
        self._set(True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._set(False)

    @contextlib.contextmanager
    def fp32(self) -> Iterator[None]:
        """The fp32 originals for the block (evaluation, checkpoint), bf16 again afterwards."""
        if not self._active:
            yield
            return
        self._set(False)
        try:
            yield
        finally:
            self._set(True)



class Bf16LinearWeightsForInference:
    """For bf16-autocast prediction: every nn.Linear weight and bias cast to bf16 once, swapped in for each pass.

    `bf16_linear_weights` does this for one run of passes; a Predictor lives for many (a server, a stream),
    and casting 10.6M MiniLM weights per batch was ~15% of a bf16 prediction batch on an AMX CPU. The
    model's Parameters keep their fp32 values between passes (an ONNX export or a later fine-tune reads them);
    a weight changed in place since the cast (its tensor version moved) is cast again, so a stale copy is
    never used. Outputs are identical to casting per call: the same values rounded the same way.
    Costs 2 bytes per linear weight.
    """

    def __init__(self, module: torch.nn.Module) -> None:
        self._params = _linear_only_parameters(module)
        self._casts: list[torch.Tensor] = []
        self._versions: list[tuple[int, int]] = []

    def _fresh_casts(self) -> list[torch.Tensor]:
        versions = [(p.data_ptr(), p._version) for p in self._params]
        if versions != self._versions:
            with torch.no_grad():
                self._casts = [p.data.to(torch.bfloat16) for p in self._params]
            self._versions = versions
        return self._casts

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        originals = [p.data for p in self._params]
        for param, cast in zip(self._params, self._fresh_casts(), strict=True):
            param.data = cast
        try:
            yield
        finally:
            for param, data in zip(self._params, originals, strict=True):
                param.data = data


__all__ = [
    "Bf16LinearWeightsForInference",
    "FrozenLinearWeightsInBf16",
    "InferencePrecision",
    "ResolvedPrecision",
    "bf16_linear_weights",
    "cpu_has_native_bf16",
    "inference_autocast",
    "resolve_inference_precision",
]
