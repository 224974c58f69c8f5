"""int8 candidates for `fmkit export --quantize int8`: build a few dynamic-int8 graphs, time them on this CPU,
measure each one's accuracy, keep the fastest that stays accurate.

Why several: which int8 graph is fastest, and which stays accurate, depends on the CPU. onnxruntime's dynamic
quantization always quantizes activations to uint8, so the weight type picks the integer GEMM kernel (MLAS,
onnxruntime/core/mlas/lib/platform.cpp and qgemm.h):
  int8 weights (u8s8)   AMX > AVX-512 VNNI / AVX-VNNI (vpdpbusd, 32-bit sums, exact) > AVX-512 core / AVX2
                        (vpmaddubsw: pairs of u8*s8 products summed in 16 bits, which can saturate)
  uint8 weights (u8u8)  widened to 16 bits first (vpmaddwd): no saturation, about half the u8s8 speed with VNNI
`reduce_range` stores 7-bit weights so the 16-bit pair sums of the non-VNNI u8s8 kernel cannot saturate
(255*64*2 < 32767); with VNNI it only costs precision. So CPUs with VNNI try the int8-weight recipes; CPUs
without it (or unknown CPUs) also try reduce_range and uint8 weights, and timing plus --verify decide.

The "fused" recipes export the encoder with eager attention, which onnxruntime's transformer optimizer
rewrites into fused Attention / EmbedLayerNormalization / SkipLayerNormalization / BiasGelu nodes; the
quantizer then quantizes the attention projections too (QAttention). The SDPA export (what fp32 exports use)
fuses no attention, so "sdpa_s8_channel" is the unfused baseline: the recipe fmkit used before candidates.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmkit.errors import FmkitError

# The CPU flags (/proc/cpuinfo names) that decide which integer kernels onnxruntime runs.
CPU_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
TIMING_LENGTHS = (16, 32, 64)  # token lengths of the synthetic batches (clipped to the model's max_length)
TIMING_ROUNDS = 3
# Candidates this close in speed are a tie: on a loaded machine the timings of one graph vary by more, and
# dynamic int8 accuracy moves too (activation ranges are per batch: which texts share a batch flips a few
# labels), so a tie goes to the more accurate and then the more faithful graph.
SPEED_TOLERANCE = 0.05


@dataclass(frozen=True)
class Int8Recipe:
    name: str
    fused: bool  # eager-attention export + onnxruntime BERT fusion (QAttention when attention is quantized)
    per_channel: bool  # one weight scale per output column instead of one per matrix
    unsigned_weights: bool  # uint8 weights: the u8u8 kernel (no saturation) instead of u8s8
    reduce_range: bool  # 7-bit weights: no u8s8 saturation on CPUs without VNNI
    quantize_attention: bool  # fused graphs: also quantize the Attention node (its QKV projection)

    @property
    def op_types(self) -> list[str]:
        return ["MatMul", "Gemm", "Attention"] if self.quantize_attention else ["MatMul", "Gemm"]


SDPA_S8_CHANNEL = Int8Recipe("sdpa_s8_channel", False, True, False, False, False)
FUSED_S8_CHANNEL = Int8Recipe("fused_s8_channel", True, True, False, False, True)
FUSED_S8_TENSOR = Int8Recipe("fused_s8_tensor", True, False, False, False, True)
FUSED_S8_CHANNEL_FP32_ATTENTION = Int8Recipe("fused_s8_channel_fp32_attention", True, True, False, False, False)
FUSED_S8_CHANNEL_REDUCE_RANGE = Int8Recipe("fused_s8_channel_reduce_range", True, True, False, True, True)
FUSED_U8_CHANNEL = Int8Recipe("fused_u8_channel", True, True, True, False, True)


@dataclass
class Int8Candidate:
    """One row of export.json's candidate table."""

    name: str
    seconds_per_batch: float | None = None  # mean over TIMING_LENGTHS of the median seconds, this CPU
    max_abs_logit_diff: float | None = None  # vs the fp32 torch model on the smoke texts
    check_agreement: float | None = None  # same label as the fp32 graph, share of the synthetic batches' rows
    mean_abs_logit_diff: float | None = None  # vs the fp32 graph on the synthetic batches
    accuracy: float | None = None  # on --verify
    accuracy_delta_points: float | None = None  # accuracy - fp32 accuracy, percentage points
    chosen: bool = False
    error: str | None = None  # why this candidate could not be built or run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, bool]:
    """The CPU_FLAGS this machine has; empty where /proc/cpuinfo is missing (not Linux) or has no x86 flags."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    for line in text.splitlines():
        if line.startswith("flags"):
            present = set(line.split(":", 1)[1].split())
            return {flag: flag in present for flag in CPU_FLAGS}
    return {}


def recipes_for(flags: Mapping[str, bool]) -> list[Int8Recipe]:
    """The candidates worth building on a CPU with these flags (unknown flags: all of them)."""
    recipes = [SDPA_S8_CHANNEL, FUSED_S8_CHANNEL, FUSED_S8_TENSOR, FUSED_S8_CHANNEL_FP32_ATTENTION]
    if not any(flags.get(flag) for flag in VNNI_FLAGS):
        recipes += [FUSED_S8_CHANNEL_REDUCE_RANGE, FUSED_U8_CHANNEL]
    return recipes


def fuse_transformer(eager_graph: Path, out: Path, num_heads: int, hidden_size: int) -> int:
    """onnxruntime's BERT fusions on an eager-attention export; returns how many Attention nodes it fused."""
    from onnxruntime.transformers.optimizer import optimize_model

    with quiet_logging():
        optimized = optimize_model(str(eager_graph), model_type="bert", num_heads=num_heads, hidden_size=hidden_size,
                                   opt_level=1, use_gpu=False)
        optimized.save_model_to_file(str(out))
    return int(optimized.get_fused_operator_statistics().get("Attention", 0))


def quantize_graph(source: Path, out: Path, recipe: Int8Recipe) -> None:
    """Dynamic int8 (weights int8, activations quantised on the fly): no calibration data needed."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ModuleNotFoundError:
        raise FmkitError("int8 quantization needs onnxruntime: pip install onnxruntime.") from None
    # A fused graph holds contrib ops (Attention, SkipLayerNormalization) whose output types the quantizer's
    # type inference cannot see; they are float32 throughout.
    extra = {"DefaultTensorType": onnx.TensorProto.FLOAT} if recipe.fused else {}
    with quiet_logging():  # it advises pre-processing, which a fused graph has had (the optimizer's own)
        quantize_dynamic(str(source), str(out), op_types_to_quantize=recipe.op_types, per_channel=recipe.per_channel,
                         reduce_range=recipe.reduce_range, extra_options=extra,
                         weight_type=QuantType.QUInt8 if recipe.unsigned_weights else QuantType.QInt8)


@contextmanager
def quiet_logging() -> Iterator[None]:
    """onnxruntime's optimizer and quantizer log advice and every fusion they try (on the root logger and
    loggers named after their files): noise on the export's terminal, errors still show."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def synthetic_batches(vocab_size: int, batch: int, max_length: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """One batch per timing length, half its rows padded to half length, as in real length-sorted batches."""
    rng = np.random.default_rng(0)
    batches = []
    for seq in sorted({min(length, max_length) for length in TIMING_LENGTHS}):
        ids = rng.integers(min(5, vocab_size - 1), vocab_size, size=(batch, seq), dtype=np.int64)
        mask = np.ones_like(ids)
        mask[batch // 2 :, max(1, seq // 2) :] = 0
        batches.append((ids, mask))
    return batches


Timer = Callable[[Mapping[str, Any], Sequence[tuple[np.ndarray, np.ndarray]]], dict[str, float]]


def time_backends(backends: Mapping[str, Any], batches: Sequence[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Mean seconds per batch of each backend; rounds interleave the backends, so a load change on a shared
    machine hits them all alike, and each batch's median over the rounds is kept."""
    for backend in backends.values():
        backend.run(batches[0][0][:2], batches[0][1][:2])  # warm-up: session allocations, kernel packing
    seconds: dict[str, list[list[float]]] = {name: [[] for _ in batches] for name in backends}
    for _ in range(TIMING_ROUNDS):
        for name, backend in backends.items():
            for i, (ids, mask) in enumerate(batches):
                start = time.perf_counter()
                backend.run(ids, mask)
                seconds[name][i].append(time.perf_counter() - start)
    return {name: float(np.mean([statistics.median(times) for times in per_batch]))
            for name, per_batch in seconds.items()}


def faithfulness(reference: Any, backend: Any, batches: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """Label agreement and mean absolute logit difference of `backend` with the fp32 `reference` graph on the
    synthetic batches: the check that needs no labelled data."""
    same, diffs = [], []
    for ids, mask in batches:
        expected, got = reference.run(ids, mask), backend.run(ids, mask)
        same.append(expected.argmax(1) == got.argmax(1))
        diffs.append(np.abs(expected - got).ravel())
    return float(np.concatenate(same).mean()), float(np.concatenate(diffs).mean())


def choose(candidates: Sequence[Int8Candidate], max_accuracy_drop: float, verified: bool) -> Int8Candidate | None:
    """Verified: the fastest candidate that loses at most `max_accuracy_drop` points (None if none does); among
    candidates within SPEED_TOLERANCE of the fastest, the more accurate (then the more faithful) one.
    Unverified: the most faithful to the fp32 model (labels on the synthetic batches, then the mean logit
    difference), since without labels nothing says how much a less faithful graph's speed costs in accuracy."""
    usable = [c for c in candidates if c.error is None and c.seconds_per_batch is not None]
    if not verified:
        return min(usable, key=_unfaithfulness, default=None)
    within = [c for c in usable if c.accuracy_delta_points is not None
              and -c.accuracy_delta_points <= max_accuracy_drop + 1e-9]
    if not within:
        return None
    fastest = min(c.seconds_per_batch or 0.0 for c in within)
    near = [c for c in within if (c.seconds_per_batch or 0.0) <= fastest * (1 + SPEED_TOLERANCE)]
    return min(near, key=lambda c: (-(c.accuracy_delta_points or 0.0), *_unfaithfulness(c), c.seconds_per_batch or 0.0))


def _unfaithfulness(candidate: Int8Candidate) -> tuple[float, float]:
    return -(candidate.check_agreement or 0.0), candidate.mean_abs_logit_diff or 0.0


def most_accurate(candidates: Sequence[Int8Candidate]) -> Int8Candidate | None:
    """What --force keeps when every candidate loses too much: the smallest loss, then the fastest."""
    usable = [c for c in candidates if c.error is None and c.accuracy_delta_points is not None]
    return min(usable, key=lambda c: (-(c.accuracy_delta_points or 0.0), c.seconds_per_batch or 0.0), default=None)
