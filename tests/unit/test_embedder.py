"""Embedder: sentence-transformers-identical vectors, input order, streaming, every kind of model folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fmkit.errors import ModelError
from fmkit.inference.embedder import Embedder
from fmkit.models.backbone import load_tokenizer
from fmkit.models.sentence_encoder import SentenceEncoder

TEXTS = ["good movie", "the plot was really very boring and the actor was bad", "", "stock market rise",
         "a", "shares jump after profit report", "hate it"]


def test_matches_sentence_transformers_on_bundled_minilm() -> None:
    st = pytest.importorskip("sentence_transformers")
    from fmkit.models.backbone import bundled_minilm_path

    texts = [*TEXTS, "Shares of the company fell 5% after the earnings report. " * 30]  # > 256 tokens: truncated alike
    ours = Embedder.load("all-MiniLM-L6-v2", batch_size=3).embed(texts)
    ref = st.SentenceTransformer(str(bundled_minilm_path()), device="cpu").encode(texts, batch_size=3)
    assert ours.dtype == np.float32 and ours.shape == (len(texts), 384)
    cos = (ours * ref).sum(axis=1) / np.linalg.norm(ref, axis=1)
    assert cos.min() >= 0.999, cos
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_order_kept_and_batching_invariant(tiny_model: Path) -> None:
    emb_small = Embedder.load(tiny_model, batch_size=2)
    emb_big = Embedder.load(tiny_model, batch_size=64)
    a = emb_small.embed(TEXTS)
    b = emb_big.embed(TEXTS)
    np.testing.assert_allclose(a, b, atol=1e-5)
    singles = np.stack([emb_big.embed_one(t) for t in TEXTS])
    np.testing.assert_allclose(a, singles, atol=1e-5)  # row i is texts[i], whatever the batch
    assert not np.allclose(a[0], a[1])


def test_stream_equals_embed(tiny_model: Path) -> None:
    emb = Embedder.load(tiny_model, batch_size=4)
    blocks = list(emb.embed_stream(iter(TEXTS * 3), chunk=5))
    assert [len(b) for b in blocks] == [5, 5, 5, 5, 1]
    np.testing.assert_allclose(np.concatenate(blocks), emb.embed(TEXTS * 3), atol=1e-5)
    assert emb.embed([]).shape == (0, emb.dim)


def test_loads_fmkit_embedding_model_and_run_dir(tiny_model: Path, tmp_path: Path) -> None:
    model = SentenceEncoder.from_backbone(tiny_model, pooling="cls", max_length=16)
    run = tmp_path / "run"
    model.save_pretrained(run / "model", load_tokenizer(tiny_model))
    meta = json.loads((run / "model" / "fmkit.json").read_text())
    assert meta == {"task": "embedding", "pooling": "cls", "normalize": True, "max_length": 16}
    emb = Embedder.load(run)  # the run directory resolves to its model/
    assert emb.model.pooling == "cls" and emb.max_length == 16
    assert emb.embed(["good"]).shape == (1, 32)


def test_missing_folder_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        Embedder.load(tmp_path / "nope")
