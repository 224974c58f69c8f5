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
  export.json       the verification report (agreement with the source model, accuracy delta); for int8
                    also every candidate graph tried (see below) and the CPU flags that decide its kernels

Every export checks itself: logits of the graph against torch on a few texts (fp32 must match to 1e-3).
With a labelled file it also measures agreement and accuracy of both models.

int8 builds a few candidate graphs for this CPU (quantize.py: unfused or with fused attention, per-channel or
per-tensor weights, and on CPUs without VNNI 7-bit or uint8 weights), times each on synthetic length-sorted
batches and checks each against the fp32 model. With a labelled file it keeps the fastest candidate that loses
at most `max_accuracy_drop` points; if none does, the export is refused (nothing written) unless `force`, which
keeps the most accurate. Without one it keeps the candidate most faithful to the fp32 graph. The choice is
measured where the export runs: export on the CPU class that will serve the model.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fmkit.errors import DataError, FmkitError, ModelError
from fmkit.inference import quantize
from fmkit.inference.quantize import Int8Candidate, Int8Recipe
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
    int8_recipe: str | None = None  # the int8 candidate written (see quantize.py)
    int8_candidates: list[dict[str, Any]] = field(default_factory=list)  # every candidate built, timed and checked
    cpu_flags: dict[str, bool] = field(default_factory=dict)  # the flags that decide onnxruntime's int8 kernels
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
    with atomic_directory(output) as tmp, tempfile.TemporaryDirectory(prefix="fmkit-export-") as scratch_dir:
        scratch = Path(scratch_dir)
        for item in model_dir.iterdir():
            if item.is_file() and item.name not in _NOT_COPIED and not item.name.startswith("."):
                shutil.copy2(item, tmp / item.name)
        if not int8:
            for name in _WEIGHTS:
                if (model_dir / name).is_file():
                    shutil.copy2(model_dir / name, tmp / name)
        export_meta = {**meta, "format": "onnx", "backend": "onnx", "onnx_file": ONNX_FILE,
                       "quantization": "int8" if int8 else "none", "opset": OPSET,
                       "exported_from": str(model_dir.resolve())}
        atomic_write_json(tmp / FMKIT_META, export_meta)
        source_labels = None
        if examples is not None:
            # The fp32 model's answers, once: every int8 candidate and the final report compare with them.
            source_labels = _predicted_labels(source, examples.texts, "verify: torch model")
        selection: Int8Selection | None = None
        if int8:
            selection = _select_int8(model, source, predictor_class, tmp, scratch, examples, source_labels,
                                     max_accuracy_drop, force, batch_size)
            atomic_write_json(tmp / FMKIT_META, {**export_meta, "int8_recipe": selection.chosen})
        else:
            _export_graph(model, tmp / ONNX_FILE)
        exported = predictor_class.load(tmp, batch_size=batch_size, backend="onnx")
        diff = float(np.abs(_logits(source, SMOKE_TEXTS) - _logits(exported, SMOKE_TEXTS)).max())
        report = ExportReport(output=str(output), quantization="int8" if int8 else "none",
                              onnx_bytes=(tmp / ONNX_FILE).stat().st_size, max_abs_logit_diff=diff,
                              max_accuracy_drop=max_accuracy_drop, forced=force)
        if not int8 and diff > 1e-3:
            raise ModelError(f"the ONNX graph disagrees with the torch model (max logit difference {diff:.2g} > 1e-3); "
                             "this model's architecture does not export cleanly. Nothing was written.")
        if examples is not None and source_labels is not None:
            _verify(report, source, source_labels, exported, examples.texts, examples.labels, str(verify))
        if selection is not None:
            report.int8_recipe = selection.chosen
            report.int8_candidates = [c.to_dict() for c in selection.candidates]
            report.cpu_flags = selection.flags
            report.notes.extend(selection.notes)
        if int8 and examples is None:
            report.notes.append("not verified on labelled data: pass --verify FILE to measure the accuracy change "
                                "(and to let the export take the fastest int8 graph within --max-accuracy-drop)")
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


def _predicted_labels(predictor: Any, texts: list[str], what: str) -> np.ndarray:
    from fmkit.utils.progress import map_in_chunks

    # Minutes on a large file, so each pass has its progress line. Always the same chunks: a dynamic-int8 graph
    # quantizes activations per batch, so its answers depend (slightly) on which texts share a batch.
    labels: np.ndarray = map_in_chunks(lambda block: predictor.predict_proba(block).argmax(1), texts, what)
    return labels


def _verify(report: ExportReport, source: Any, source_labels: np.ndarray, exported: Any, texts: list[str],
            labels: list[str], name: str) -> None:
    gold = np.asarray([source.labels.index(label) for label in labels])
    predicted = _predicted_labels(exported, texts, "verify: exported model")
    report.verify_file = name
    report.examples = len(texts)
    report.agreement = float((source_labels == predicted).mean())
    report.source_accuracy = float((source_labels == gold).mean())
    report.export_accuracy = float((predicted == gold).mean())
    report.accuracy_delta_points = round(100.0 * (report.export_accuracy - report.source_accuracy), 4)


def _export_graph(model: Any, path: Path, attention: str | None = None) -> None:
    """TorchScript-based exporter (dynamo=False): works on torch 2.13 without onnxscript, dynamic axes.

    `attention` "eager": trace the encoder's eager attention (matmul, softmax), which onnxruntime's transformer
    optimizer can fuse into Attention nodes; None: the model's own (SDPA), fastest unfused.
    """
    if attention is not None:
        config = model.encoder.config
        previous = config._attn_implementation
        config._attn_implementation = attention
        try:
            _export_graph(model, path)
        finally:
            config._attn_implementation = previous
        return
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




@dataclass
class Int8Selection:
    chosen: str
    candidates: list[Int8Candidate]
    flags: dict[str, bool]
    notes: list[str]


def _select_int8(model: Any, source: Any, predictor_class: Any, tmp: Path, scratch: Path, examples: Any,
                 source_labels: np.ndarray | None, max_accuracy_drop: float, force: bool,
                 batch_size: int) -> Int8Selection:
    """Build the int8 candidates for this CPU, time and check each, and write the chosen one to tmp/model.onnx."""
    flags = quantize.cpu_flags()
    notes: list[str] = []
    graphs = _int8_graphs(model, scratch, quantize.recipes_for(flags), notes)
    built = {name: path for name, (path, error) in graphs.items() if error is None}
    candidates = [Int8Candidate(name, error=error) for name, (_, error) in graphs.items()]
    if not built:
        raise ModelError("no int8 graph could be built for this model: "
                         + "; ".join(f"{c.name}: {c.error}" for c in candidates) + ". Nothing was written.")
    from fmkit.inference.backends import OnnxBackend

    shutil.copy2(next(iter(built.values())), tmp / ONNX_FILE)  # any graph: the predictor below swaps backends
    exported = predictor_class.load(tmp, batch_size=batch_size, backend="onnx")
    backends = {name: OnnxBackend(path) for name, path in built.items()}
    config = model.encoder.config
    batches = quantize.synthetic_batches(int(config.vocab_size), batch_size, int(exported.max_length))
    seconds = quantize.time_backends(backends, batches)
    reference = OnnxBackend(scratch / "sdpa.onnx")  # the fp32 graph: what faithfulness is measured against
    source_logits = _logits(source, SMOKE_TEXTS)
    gold = None if examples is None else np.asarray([source.labels.index(label) for label in examples.labels])
    source_accuracy = None if gold is None else float(np.mean(source_labels == gold))
    for candidate in candidates:
        if candidate.name not in built:
            continue
        exported.backend = backends[candidate.name]
        logits = _logits(exported, SMOKE_TEXTS)
        candidate.seconds_per_batch = seconds[candidate.name]
        candidate.max_abs_logit_diff = float(np.abs(source_logits - logits).max())
        candidate.check_agreement, candidate.mean_abs_logit_diff = quantize.faithfulness(
            reference, backends[candidate.name], batches)
        if gold is not None and source_accuracy is not None:
            predicted = _predicted_labels(exported, examples.texts, f"verify: int8 candidate {candidate.name}")
            candidate.accuracy = float((predicted == gold).mean())
            candidate.accuracy_delta_points = round(100.0 * (candidate.accuracy - source_accuracy), 4)
    chosen = quantize.choose(candidates, max_accuracy_drop, verified=gold is not None)
    if chosen is None:
        best = quantize.most_accurate(candidates)
        if best is None or best.accuracy is None or source_accuracy is None:
            raise ModelError("no int8 candidate ran on this machine. Nothing was written.")
        drop = -(best.accuracy_delta_points or 0.0)
        if not force:
            raise FmkitError(
                f"int8 export refused: accuracy on {examples.source} drops {drop:.2f} points with the most accurate "
                f"of {len(built)} int8 graphs ({best.name}: {source_accuracy:.4f} -> {best.accuracy:.4f}), more than "
                f"the allowed {max_accuracy_drop:g}. Export without --quantize, raise --max-accuracy-drop, or pass "
                "--force. Nothing was written.")
        notes.append(f"accuracy drop {drop:.2f} points accepted with --force")
        chosen = best
    chosen.chosen = True
    shutil.copy2(built[chosen.name], tmp / ONNX_FILE)
    fastest = min((c for c in candidates if c.seconds_per_batch), key=lambda c: c.seconds_per_batch or 0.0)
    rule = "fastest within --max-accuracy-drop" if gold is not None else "most faithful to the fp32 model"
    notes.append(f"int8: {chosen.name} ({rule}; {chosen.seconds_per_batch:.3g} s per batch of {batch_size}, "
                 f"fastest candidate {fastest.name} {fastest.seconds_per_batch:.3g} s)")
    return Int8Selection(chosen.name, candidates, flags, notes)


def _int8_graphs(model: Any, scratch: Path, recipes: list[Int8Recipe],
                 notes: list[str]) -> dict[str, tuple[Path, str | None]]:
    """Each recipe's quantized graph (or why it could not be built), in recipe order."""
    sdpa = scratch / "sdpa.onnx"
    _export_graph(model, sdpa)
    prepared = scratch / "sdpa-prepared.onnx"
    try:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        quant_pre_process(str(sdpa), str(prepared), skip_symbolic_shape=True)
    except ModuleNotFoundError:
        raise FmkitError("int8 quantization needs onnxruntime: pip install onnxruntime.") from None
    except Exception:
        prepared = sdpa  # pre-processing only helps fusion; quantizing the raw graph is still correct
    fused: Path | None = None
    fusion_error = None
    if any(recipe.fused for recipe in recipes):
        fused, fusion_error = _fused_graph(model, sdpa, scratch)
        if fusion_error is not None:
            notes.append(f"int8: fused candidates skipped ({fusion_error})")
    graphs: dict[str, tuple[Path, str | None]] = {}
    for recipe in recipes:
        out = scratch / f"{recipe.name}.onnx"
        if recipe.fused and fused is None:
            graphs[recipe.name] = (out, f"not built: {fusion_error}")
            continue
        try:
            quantize.quantize_graph(fused if recipe.fused and fused is not None else prepared, out, recipe)
        except FmkitError:
            raise
        except Exception as exc:  # one recipe the quantizer cannot handle must not sink the others
            graphs[recipe.name] = (out, f"quantization failed: {type(exc).__name__}: {exc}"[:300])
            continue
        graphs[recipe.name] = (out, None)
    return graphs


def _fused_graph(model: Any, sdpa: Path, scratch: Path) -> tuple[Path | None, str | None]:
    """The eager-attention export after onnxruntime's transformer fusions, checked against the SDPA graph."""
    config = model.encoder.config
    heads, hidden = getattr(config, "num_attention_heads", None), getattr(config, "hidden_size", None)
    if not isinstance(heads, int) or not isinstance(hidden, int):
        return None, "the encoder's config names no num_attention_heads / hidden_size"
    eager, fused = scratch / "eager.onnx", scratch / "fused.onnx"
    try:
        _export_graph(model, eager, attention="eager")
        attention_nodes = quantize.fuse_transformer(eager, fused, heads, hidden)
    except Exception as exc:
        return None, f"fusion failed: {type(exc).__name__}: {exc}"[:300]
    if attention_nodes == 0:
        return None, "onnxruntime fused no Attention node in this architecture"
    return (fused, None) if _same_graph_outputs(sdpa, fused, int(config.vocab_size)) else (
        None, "the fused graph's outputs differ from the unfused graph's by more than 1e-3")


def _same_graph_outputs(reference: Path, candidate: Path, vocab_size: int) -> bool:
    """Same inputs, same outputs (logits and embedding to 1e-3) on a padded synthetic batch."""
    from fmkit.inference.backends import OnnxBackend

    a, b = OnnxBackend(reference, threads=1), OnnxBackend(candidate, threads=1)
    if [i.name for i in a.session.get_inputs()] != [i.name for i in b.session.get_inputs()] or a.outputs != b.outputs:
        return False
    ids = np.random.default_rng(1).integers(min(5, vocab_size - 1), vocab_size, size=(3, 12), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 3:] = 0
    return all(float(np.abs(a.run(ids, mask, want) - b.run(ids, mask, want)).max()) <= 1e-3
               for want in ("logits", "embedding"))
