"""Inference backends: the same classifier run by PyTorch or by ONNX Runtime.

A backend takes padded token ids and an attention mask (numpy int64, shape (batch, seq)) and returns
float32 logits (batch, num_labels) and pooled text vectors (batch, hidden). The Predictor does the
tokenizing, batching and ordering; a backend only runs the network.

Which backends a model folder offers:
  torch  the folder holds safetensors weights (model.safetensors + head.safetensors)
  onnx   the folder holds an ONNX graph written by `fmkit export` (fmkit.json "onnx_file")
`--backend auto` times every available backend on a few synthetic batches once per machine and
caches the winner in `backend.json` beside the model (see `choose_backend`).

The torch backend runs in the precision the model was evaluated in (fmkit.json "precision": auto|fp32|bf16,
resolved for this machine, see models/precision.py) unless the caller asks for another.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from fmkit.errors import ModelError
from fmkit.models.meta import HEAD_FILE, read_meta, recorded_precision

if TYPE_CHECKING:
    from fmkit.models.precision import ResolvedPrecision

# torch is imported only where the torch backend is used: an ONNX export loads and predicts without it,
# which is most of `fmkit predict`'s start-up time (BENCHMARKS.md, "Start-up").

BackendName = Literal["auto", "torch", "onnx"]
BACKEND_CACHE = "backend.json"


class Backend(Protocol):
    name: str

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray, want: str = "logits") -> np.ndarray:
        """`want` is "logits" or "embedding" (pooled, not yet normalised)."""
        ...


def cpu_threads() -> int:
    """Threads for one inference process: FMKIT_THREADS, else every core this process may use."""
    env = os.environ.get("FMKIT_THREADS")
    if env and env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class TorchBackend:
    name = "torch"

    def __init__(self, model: Any, threads: int | None = None, precision: str = "fp32") -> None:
        import torch

        from fmkit.models.precision import Bf16LinearWeightsForInference, resolve_inference_precision

        self.model = model.eval()
        self._torch = torch
        self.precision: ResolvedPrecision = resolve_inference_precision(precision)
        self._bf16_weights = Bf16LinearWeightsForInference(self.model) if self.precision == "bf16" else None
        if threads:
            torch.set_num_threads(threads)

    @classmethod
    def load(cls, path: Path, threads: int | None = None, precision: str | None = None) -> TorchBackend:
        """`precision` None: the one the model records (what its metrics were measured in)."""
        from fmkit.models.classifier import TextClassifier

        # The light BERT encoder where it applies: no transformers import, seconds off `fmkit predict`'s start.
        model = TextClassifier.from_pretrained(path, for_inference=True)
        return cls(model, threads, precision or model.precision)

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray, want: str = "logits") -> np.ndarray:
        from fmkit.models.precision import inference_autocast

        torch = self._torch
        weights = self._bf16_weights.active() if self._bf16_weights is not None else contextlib.nullcontext()
        with weights, torch.inference_mode(), inference_autocast(self.precision):
            ids = torch.from_numpy(input_ids)
            mask = torch.from_numpy(attention_mask)
            pooled = self.model.embed(ids, mask)
            out = pooled if want == "embedding" else self.model.head(pooled)
            return out.float().numpy()


class OnnxBackend:
    name = "onnx"

    def __init__(self, onnx_path: Path, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ModuleNotFoundError:
            raise ModelError(f"{onnx_path}: running an ONNX model needs onnxruntime: pip install onnxruntime.") from None
        options = ort.SessionOptions()
        # Full graph fusions (attention, GELU, layer norm) are what make ORT faster than eager torch on CPU.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = threads or cpu_threads()
        options.inter_op_num_threads = 1
        # Shapes change every batch (dynamic padding): arena growth would keep the largest batch forever.
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 3
        # Threads busy-wait between the ops of one run (waking a sleeping thread per op costs ~17% of int8
        # throughput: 817 -> 940 sentences/s on SST-2) and stop as soon as the run returns, so they never take
        # the cores from the tokenizer or, in the server, from the event loop that gathers the next batch.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"{onnx_path}: cannot load the ONNX model ({exc}). Re-export it with `fmkit export`.") from None
        self.outputs = {o.name for o in self.session.get_outputs()}

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray, want: str = "logits") -> np.ndarray:
        if want not in self.outputs:
            raise ModelError(f"this ONNX model has no '{want}' output; re-export it with this version of fmkit.")
        feeds = {"input_ids": input_ids.astype(np.int64, copy=False),
                 "attention_mask": attention_mask.astype(np.int64, copy=False)}
        result: np.ndarray = self.session.run([want], feeds)[0]
        return result.astype(np.float32, copy=False)


def available_backends(path: Path) -> list[str]:
    meta = read_meta(path)
    names = []
    if (path / HEAD_FILE).is_file() and any((path / f).is_file() for f in ("model.safetensors", "model.safetensors.index.json")):
        names.append("torch")
    if meta.get("onnx_file") and (path / str(meta["onnx_file"])).is_file():
        names.append("onnx")
    return names


def load_backend(path: Path, name: str, threads: int | None = None, precision: str | None = None) -> Backend:
    """Load the backend `name` ("auto" measures, see choose_backend) for the model in `path`.

    `precision` (auto|fp32|bf16) applies to the torch backend; None: the model's own.
    """
    available = available_backends(path)
    if not available:
        raise ModelError(f"{path}: neither safetensors weights nor an ONNX graph here; is this a complete model folder?")
    if name == "auto":
        name = choose_backend(path, available, threads, precision)
    if name not in available:
        hint = ("run `fmkit export MODEL_DIR --format onnx --output DIR` and load DIR" if name == "onnx"
                else "this folder holds only an ONNX export (an int8 graph has no torch twin); use --backend onnx "
                     "or the original model folder")
        raise ModelError(f"{path}: backend '{name}' is not available here ({', '.join(available)} is); {hint}.")
    if name == "onnx":
        return OnnxBackend(path / str(read_meta(path)["onnx_file"]), threads)
    return TorchBackend.load(path, threads, precision)


def _machine_key(threads: int | None, precision: str) -> str:
    # Versions from the installed metadata, not by importing: a cached choice of onnx must not cost a torch import.
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str:
        try:
            return version(package)
        except PackageNotFoundError:
            return "none"

    return (f"{platform.node()}|{platform.machine()}|{cpu_threads()}|{threads}|torch {installed('torch')}"
            f"|ort {installed('onnxruntime')}|torch precision {precision}")


def choose_backend(path: Path, available: list[str], threads: int | None = None, precision: str | None = None) -> str:
    """The fastest available backend for this model on this machine, measured once and cached."""
    if len(available) == 1:
        return available[0]
    from fmkit.models.precision import resolve_inference_precision

    resolved = resolve_inference_precision(precision or recorded_precision(read_meta(path)))
    key = _machine_key(threads, resolved)
    cache = path / BACKEND_CACHE
    try:
        cached = json.loads(cache.read_text(encoding="utf-8"))
        if cached.get("machine") == key and cached.get("backend") in available:
            return str(cached["backend"])
    except (OSError, ValueError):
        pass
    try:
        vocab = int(json.loads((path / "config.json").read_text(encoding="utf-8")).get("vocab_size", 1000))
    except (OSError, ValueError):
        vocab = 1000
    timings = {name: time_backend(load_backend(path, name, threads, resolved), vocab) for name in available}
    best = min(timings, key=lambda n: timings[n])
    try:
        from fmkit.utils.io import atomic_write_json

        atomic_write_json(cache, {"machine": key, "backend": best, "seconds_per_batch": timings})
    except OSError:
        pass  # a read-only model folder: measure again next time rather than fail
    return best


def time_backend(backend: Backend, vocab_size: int = 1000, batch: int = 32, seq: int = 32, repeats: int = 3) -> float:
    """Median seconds for one synthetic batch (after a warm-up pass)."""
    rng = np.random.default_rng(0)
    ids = rng.integers(min(5, vocab_size - 1), vocab_size, size=(batch, seq), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[batch // 2 :, seq // 2 :] = 0  # half the rows padded, as in real length-sorted batches
    backend.run(ids[:2], mask[:2])
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        backend.run(ids, mask)
        times.append(time.perf_counter() - start)
    return float(np.median(times))
