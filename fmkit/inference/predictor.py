"""`Predictor`: the one object behind `fmkit.load()`, `fmkit predict`, `fmkit eval` and the server."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from fmkit.data.long_text import LongTextPolicy, aggregate_probabilities, encode_documents, mean_per_document
from fmkit.data.tokenized import EncodedTexts, encode_texts, pad_batch
from fmkit.errors import ModelError
from fmkit.inference.backends import Backend, BackendName, TorchBackend, load_backend
from fmkit.models.meta import read_meta, saved_model_dir
from fmkit.models.rust_tokenizer import load_rust_tokenizer

if TYPE_CHECKING:
    from fmkit.models.classifier import TextClassifier

Record = dict[str, Any]


def default_batch_size(backend: Backend) -> int:
    """Texts per forward pass when the caller gives none. Measured on SST-2 (BENCHMARKS.md, "Prediction on both
    precision paths"): ONNX Runtime and fp32 torch are faster at 32 (int8 +14-20%, fp32 torch within noise),
    bf16 torch at 64 (its bf16 matmuls want the larger tiles)."""
    if isinstance(backend, TorchBackend) and backend.precision == "bf16":
        return 64
    return 32


class Predictor:
    """A loaded text classifier: texts in, `{"label", "scores"}` records out, always in input order."""

    TASK = "classification"  # the fmkit.json task this class loads

    def __init__(self, model: TextClassifier | None, tokenizer: Any, batch_size: int = 64, path: Path | None = None,
                 *, backend: Backend | None = None, labels: list[str] | None = None, max_length: int | None = None) -> None:
        # A torch model, or any Backend (ONNX Runtime) plus the labels and max_length from fmkit.json.
        if backend is None:
            if model is None:
                raise ValueError("Predictor needs a model or a backend")
            backend = TorchBackend(model)
        self.model = model.eval() if model is not None else None
        self.backend = backend
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.path = path
        self.labels: list[str] = list(labels if labels is not None else model.labels)  # type: ignore[union-attr]
        self.max_length: int = int(max_length if max_length is not None else model.max_length)  # type: ignore[union-attr]
        self.pair_input = False  # trained on text pairs: predict_pairs, not predict
        self.text_columns: list[str] = []  # the column(s) it was trained on: what `fmkit predict` reads from a table
        # eval.target_precision's tuned threshold: a top probability below it answers label None, abstained True.
        self.abstain_threshold: float | None = None
        self.long_text = LongTextPolicy()  # data.long_text of the run that trained it
        if model is not None:
            self.configure(dict(model.info))

    def configure(self, meta: dict[str, Any]) -> None:
        """Read what the model keeps in fmkit.json beyond labels and max_length (a task may add its own)."""
        self.pair_input = bool(meta.get("pair_input", False))
        self.text_columns = [str(c) for c in meta.get("text_columns", [])]
        threshold = meta.get("abstain_threshold")
        self.abstain_threshold = None if threshold is None else float(threshold)
        self.long_text = LongTextPolicy.from_meta(meta.get("long_text"))

    def encode(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> EncodedTexts:
        """Token ids of texts (or text pairs: `pairs` holds the second texts), one row each, as the model was
        trained; a chunk model's row is a text's first window (predict_proba and embed split texts into windows)."""
        if (pairs is not None) != self.pair_input:
            raise ModelError("this model reads text pairs: use predict_pairs" if self.pair_input
                             else "this model reads single texts, not pairs: use predict")
        if pairs is None and self.long_text.mode == "head_tail":
            return encode_documents(self.tokenizer, [str(t) for t in texts], self.max_length, self.long_text).rows
        return encode_texts(self.tokenizer, [str(t) for t in texts], self.max_length,
                            pairs=[str(t) for t in pairs] if pairs is not None else None)

    @classmethod
    def load(cls, path: Path | str, batch_size: int | None = None, backend: BackendName = "auto",
             threads: int | None = None, precision: str | None = None) -> Self:
        """Load a model folder (or its run directory); an ONNX export runs on onnxruntime transparently.

        `precision` (auto|fp32|bf16) of the torch backend; None: the one the model's metrics were measured in.
        `batch_size` None: the backend's own (`default_batch_size`).
        """
        path = saved_model_dir(path)  # a run directory too
        meta = read_meta(path)
        if meta.get("task", "classification") != cls.TASK:
            raise ModelError(f"{path}: holds a '{meta.get('task')}' model, not a {cls.TASK} model.")
        engine = load_backend(path, backend, threads, precision)
        model = engine.model if isinstance(engine, TorchBackend) else None
        # Both backends load tokenizer.json straight into the Rust tokenizer, skipping transformers (and, for
        # ONNX, the torch it imports): seconds of start-up for a 10-line prediction.
        tokenizer = load_rust_tokenizer(path)
        predictor = cls(model, tokenizer, batch_size=batch_size or default_batch_size(engine), path=path, backend=engine,
                        labels=list(meta["labels"]), max_length=int(meta.get("max_length", 128)))
        predictor.configure(meta)
        return predictor

    def predict_proba(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> np.ndarray:
        """Class probabilities, shape (len(texts), num_labels); `pairs`: the second texts of a pair model."""
        if len(texts) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        if pairs is None and self.long_text.chunked:
            # Every window through the model, then one distribution per text (the policy it was trained with).
            documents = encode_documents(self.tokenizer, [str(t) for t in texts], self.max_length, self.long_text)
            return aggregate_probabilities(self._proba(documents.rows), documents.document, len(texts),
                                           self.long_text.aggregate)
        return self._proba(self.encode(texts, pairs))

    def _proba(self, encoded: EncodedTexts) -> np.ndarray:
        logits = self._run(encoded, "logits")
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def _run(self, encoded: EncodedTexts, want: str) -> np.ndarray:
        # Longest first, so padding is minimal and memory peaks early; outputs go back to input order.
        pad = self.tokenizer.pad_token_id or 0
        order = np.argsort(-encoded.lengths, kind="stable")
        out: np.ndarray | None = None
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            ids, mask = pad_batch([encoded.input_ids[i] for i in idx], pad)
            values = self.backend.run(ids, mask, want)
            if out is None:
                out = np.empty((len(encoded), values.shape[1]), dtype=np.float32)
            out[idx] = values
        assert out is not None
        return out

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Pooled text vectors from the fine-tuned encoder, L2-normalised (cosine = dot product)."""
        if len(texts) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        if self.long_text.mode == "truncate":
            vectors = self._run(encode_texts(self.tokenizer, [str(t) for t in texts], self.max_length), "embedding")
            return unit_rows(vectors)
        # The text as the model reads it: head+tail, or (chunk) the mean direction of its windows' vectors.
        documents = encode_documents(self.tokenizer, [str(t) for t in texts], self.max_length, self.long_text)
        windows = unit_rows(self._run(documents.rows, "embedding"))
        return unit_rows(mean_per_document(windows, documents.document, len(texts)).astype(np.float32))

    def predict(self, texts: Sequence[str]) -> list[Record]:
        probs = self.predict_proba(texts)
        return [self._record(row) for row in probs]

    def predict_stream(self, texts: Iterable[str], chunk_size: int = 2048) -> Iterator[Record]:
        """Constant memory on any number of texts: work through fixed-size chunks."""
        iterator = iter(texts)
        while chunk := list(itertools.islice(iterator, chunk_size)):
            yield from self.predict(chunk)

    def predict_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[Record]:
        probs = self.predict_proba([a for a, _ in pairs], [b for _, b in pairs])
        return [self._record(row) for row in probs]

    def predict_pairs_stream(self, pairs: Iterable[tuple[str, str]], chunk_size: int = 2048) -> Iterator[Record]:
        iterator = iter(pairs)
        while chunk := list(itertools.islice(iterator, chunk_size)):
            yield from self.predict_pairs(chunk)

    def _record(self, row: np.ndarray) -> Record:
        best = int(row.argmax())
        scores = {label: round(float(p), 6) for label, p in zip(self.labels, row, strict=True)}
        if self.abstain_threshold is None:
            return {"label": self.labels[best], "scores": scores}
        if row[best] >= self.abstain_threshold:
            return {"label": self.labels[best], "abstained": False, "scores": scores}
        # Not sure enough for the precision it was tuned for: no label, and the one it would have given.
        return {"label": None, "abstained": True, "top_label": self.labels[best], "scores": scores}


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def load(path: Path | str, backend: BackendName = "auto", precision: str | None = None) -> Predictor:
    """Load a model saved by fmkit (its folder or its run directory), or one exported by `fmkit export`."""
    return Predictor.load(path, backend=backend, precision=precision)
