"""`fmkit export`: a saved classifier, regressor or multi-label model -> one ONNX graph (encoder + pooling +
head), optionally int8. Text-pair models export too: their segment ids are computed inside the graph.

The exported folder is itself a model folder that `fmkit predict`, `fmkit eval`, `fmkit serve` and
`fmkit.load` open transparently:
  model.onnx        inputs input_ids, attention_mask (int64, dynamic batch and sequence axes);
                    outputs logits (batch, labels) and embedding (batch, hidden: pooled, not normalised)
  fmkit.json        the source's metadata plus format "onnx", onnx_file, quantization
  config.json, tokenizer files
  model.safetensors, head.safetensors   fp32 exports only: the same network for the torch backend,
                    so `--backend auto` can time both; an int8 graph is a different model and has no twin
  export.json       the verification report (agreement with the source model, accuracy delta)

Every export checks itself: logits of the graph against torch on a few texts (fp32 must match to 1e-3).
With a labelled file it also measures agreement and accuracy of both models; an int8 graph that
loses more than `max_accuracy_drop` points is refused (nothing written) unless `force`.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fmkit.errors import DataError, FmkitError, ModelError
from fmkit.models.meta import FMKIT_META, HEAD_FILE, read_meta, saved_model_dir
from fmkit.utils.io import atomic_directory, atomic_write_json

ONNX_FILE = "model.onnx"
EXPORT_REPORT = "export.json"
OPSET = 17
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", HEAD_FILE)
_NOT_COPIED = {*_WEIGHTS, FMKIT_META, ONNX_FILE, EXPORT_REPORT, "backend.json"}
SMOKE_TEXTS = ["a", "the plot was good", "this is not what i expected at all , but the actors were great !",
               "shares jump after earnings beat", "0 1 2 3"]


@dataclass
class ExportReport:
    output: str
    quantization: str
    onnx_bytes: int
    max_abs_logit_diff: float  # graph vs torch on SMOKE_TEXTS
    verify_file: str | None = None
    examples: int = 0
    agreement: float | None = None  # share of texts where both models pick the same label
    source_accuracy: float | None = None
    export_accuracy: float | None = None
    accuracy_delta_points: float | None = None  # export - source, in percentage points
    max_accuracy_drop: float = 1.0
    forced: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_onnx(model_dir: Path | str, output: Path | str, quantize: str | None = None, verify: Path | str | None = None,
                text_column: str | None = None, label_column: str | None = None, max_accuracy_drop: float = 1.0,
                force: bool = False, batch_size: int = 64) -> ExportReport:
    """Write an ONNX export of the classifier in `model_dir` to `output` (atomically) and verify it."""
    from fmkit.config.tasks import TASKS, resolve
    from fmkit.models.classifier import TextClassifier

    model_dir, output = Path(model_dir), Path(output)
    model_dir = saved_model_dir(model_dir)
    if quantize not in (None, "none", "int8"):
        raise FmkitError(f"--quantize {quantize}: only int8 (dynamic, onnxruntime) is supported.")
    meta = read_meta(model_dir)
    if meta.get("format") == "onnx":
        raise ModelError(f"{model_dir}: is already an ONNX export; export from the original model folder.")
    task = str(meta.get("task", "classification"))
    spec = TASKS.get(task)
    if spec is None or not spec.head_model or spec.predictor is None:
        raise ModelError(f"{model_dir}: export supports text classifiers, regressors and multi-label models (a body "
                         f"and a linear head); this is a '{task}' model.")
    if verify is not None and task != "classification":
        raise FmkitError(f"--verify measures label accuracy, which a '{task}' model has not; compare the two folders "
                         "with `fmkit eval` on your file instead.")
    if output.resolve() == model_dir.resolve():
        raise FmkitError(f"--output {output} is the model folder itself; choose a new folder.")
    if output.exists() and any(output.iterdir()) and read_meta_or_none(output).get("format") != "onnx":
        raise FmkitError(f"{output}: exists and is not an fmkit export; choose an empty or new folder.")
    examples = None
    if verify is not None:
        from fmkit.data.labeled import read_labeled

        examples = read_labeled(verify, text_column, label_column)
        unknown = sorted(set(examples.labels) - set(meta["labels"]))
        if unknown:
            raise DataError(f"{verify}: label(s) {', '.join(map(repr, unknown[:10]))} are not among the model's "
                            f"labels ({', '.join(meta['labels'][:20])}); verify on data with the same label set.")

    model = TextClassifier.from_pretrained(model_dir)
    predictor_class = resolve(spec.predictor)  # the task's own: it knows its fmkit.json (thresholds, scaling)
    source = predictor_class(model, _tokenizer(model_dir), batch_size=batch_size, path=model_dir)
    int8 = quantize == "int8"
    with atomic_directory(output) as tmp:
        fp32_path = tmp / ONNX_FILE
        with tempfile.TemporaryDirectory(prefix="fmkit-export-") as scratch:
            graph = Path(scratch) / "fp32.onnx"
            _export_graph(model, graph)
            if int8:
                _quantize_int8(graph, fp32_path, Path(scratch))
            else:
                shutil.move(str(graph), fp32_path)
        for item in model_dir.iterdir():
            if item.is_file() and item.name not in _NOT_COPIED and not item.name.startswith("."):
                shutil.copy2(item, tmp / item.name)
        if not int8:
            for name in _WEIGHTS:
                if (model_dir / name).is_file():
                    shutil.copy2(model_dir / name, tmp / name)
        atomic_write_json(tmp / FMKIT_META, {**meta, "format": "onnx", "backend": "onnx", "onnx_file": ONNX_FILE,
                                             "quantization": "int8" if int8 else "none", "opset": OPSET,
                                             "exported_from": str(model_dir.resolve())})
        exported = predictor_class.load(tmp, batch_size=batch_size, backend="onnx")
        diff = float(np.abs(_logits(source, SMOKE_TEXTS) - _logits(exported, SMOKE_TEXTS)).max())
        report = ExportReport(output=str(output), quantization="int8" if int8 else "none",
                              onnx_bytes=fp32_path.stat().st_size, max_abs_logit_diff=diff,
                              max_accuracy_drop=max_accuracy_drop, forced=force)
        if not int8 and diff > 1e-3:
            raise ModelError(f"the ONNX graph disagrees with the torch model (max logit difference {diff:.2g} > 1e-3); "
                             "this model's architecture does not export cleanly. Nothing was written.")
        if examples is not None:
            _verify(report, source, exported, examples.texts, examples.labels, str(verify))
            drop = -(report.accuracy_delta_points or 0.0)
            if int8 and drop > max_accuracy_drop:
                if not force:
                    raise FmkitError(
                        f"int8 export refused: accuracy on {verify} drops {drop:.2f} points "
                        f"({report.source_accuracy:.4f} -> {report.export_accuracy:.4f}), more than the allowed "
                        f"{max_accuracy_drop:g}. Export without --quantize, raise --max-accuracy-drop, or pass --force. "
                        "Nothing was written.")
                report.notes.append(f"accuracy drop {drop:.2f} points accepted with --force")
        elif int8:
            report.notes.append("not verified on labelled data: pass --verify FILE to measure the accuracy change")
        atomic_write_json(tmp / EXPORT_REPORT, report.to_dict())
    return report


def read_meta_or_none(path: Path) -> dict[str, Any]:
    try:
        return read_meta(path)
    except ModelError:
        return {}


def _tokenizer(path: Path) -> Any:
    from fmkit.models.backbone import load_tokenizer

    return load_tokenizer(path)


def _logits(predictor: Any, texts: list[str]) -> np.ndarray:
    # A pair model is compared on pairs, so the segment ids the graph derives from [SEP] are checked too.
    # The predictor's own encoding: a head_tail model is compared on the head+tail tokens it reads.
    pairs = list(reversed(texts)) if getattr(predictor, "pair_input", False) else None
    encoded = predictor.encode(texts, pairs)
    return np.asarray(predictor._run(encoded, "logits"))


def _verify(report: ExportReport, source: Any, exported: Any, texts: list[str], labels: list[str], name: str) -> None:
    from fmkit.utils.progress import map_in_chunks

    gold = np.asarray([source.labels.index(label) for label in labels])
    # Both models predict every verify text: minutes on a large file, so each pass has its progress line.
    a = map_in_chunks(lambda block: source.predict_proba(block).argmax(1), texts, "verify: torch model")
    b = map_in_chunks(lambda block: exported.predict_proba(block).argmax(1), texts, "verify: exported model")
    report.verify_file = name
    report.examples = len(texts)
    report.agreement = float((a == b).mean())
    report.source_accuracy = float((a == gold).mean())
    report.export_accuracy = float((b == gold).mean())
    report.accuracy_delta_points = round(100.0 * (report.export_accuracy - report.source_accuracy), 4)


def _export_graph(model: Any, path: Path) -> None:
    """TorchScript-based exporter (dynamo=False): works on torch 2.13 without onnxscript, dynamic axes."""
    import warnings

    import torch

    class Both(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            pooled = self.inner.embed(input_ids, attention_mask)
            return self.inner.head(pooled), pooled

    ids = torch.tensor([[2, 7, 8, 9, 3], [2, 7, 3, 0, 0]], dtype=torch.long)
    mask = (ids != 0).long()
    # The wrapper must be in eval mode itself: a new Module starts in training mode and the tracer
    # then records attention dropout as active (logits off by ~5%).
    wrapper = Both(model).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper, (ids, mask), str(path), input_names=["input_ids", "attention_mask"],
            output_names=["logits", "embedding"], opset_version=OPSET, dynamo=False,
            dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
                          "logits": {0: "batch"}, "embedding": {0: "batch"}},
        )


def _quantize_int8(fp32: Path, out: Path, scratch: Path) -> None:
    """Dynamic int8 (weights int8, activations quantised on the fly): no calibration data needed."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ModuleNotFoundError:
        raise FmkitError("int8 quantization needs onnxruntime: pip install onnxruntime.") from None
    prepared = scratch / "prepared.onnx"
    try:
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    except Exception:
        prepared = fp32  # pre-processing only helps fusion; quantizing the raw graph is still correct
    quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Gemm"])
