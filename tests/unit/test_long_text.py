"""data.long_text: windows, head+tail, aggregation, weighting, the saved policy through torch and ONNX, config errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fmkit.config import load_config
from fmkit.data.long_text import (
    Framing,
    LongTextPolicy,
    aggregate_probabilities,
    chunk_histogram,
    encode_documents,
    head_tail,
    recommend_policy,
    split_windows,
    window_starts,
)
from fmkit.errors import ConfigError

# One token each in the tiny vocab.
WORDS = ["good", "great", "excellent", "love", "wonderful", "best", "happy", "fine", "superb"]


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path) -> Any:
    from fmkit.models.backbone import load_tokenizer

    return load_tokenizer(tiny_model)


def ids_of(tokenizer: Any, words: list[str]) -> list[int]:
    return [int(i) for i in tokenizer.convert_tokens_to_ids(words)]


def test_framing_is_cls_and_sep(tokenizer: Any) -> None:
    framing = Framing.of(tokenizer)
    assert framing.prefix == (tokenizer.cls_token_id,) and framing.suffix == (tokenizer.sep_token_id,)
    assert framing.content([2, 10, 11, 3]) == [10, 11]


def test_window_starts_share_stride_tokens_and_end_at_the_end() -> None:
    assert window_starts(10, 4, 2) == [0, 2, 4, 6]
    assert window_starts(9, 4, 0) == [0, 4, 5]  # the last window ends at the text's end, overlapping more
    assert window_starts(4, 4, 1) == [0]
    assert window_starts(0, 4, 1) == [0]
    assert split_windows(list(range(7)), 4, 1) == [[0, 1, 2, 3], [3, 4, 5, 6]]
    with pytest.raises(ConfigError, match="chunk_stride=4"):
        window_starts(10, 4, 4)


def test_chunk_windows_exact_token_ids(tokenizer: Any) -> None:
    text = " ".join(WORDS)  # 9 tokens
    ids = ids_of(tokenizer, WORDS)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    docs = encode_documents(tokenizer, [text, "good"], 6, LongTextPolicy("chunk", stride=1), labels=np.array([1, 0]))
    # 4 text tokens per window (6 minus [CLS] and [SEP]); starts 0, 3 and 5 (the last ends at the text's end).
    assert docs.rows.input_ids == [[cls, *ids[0:4], sep], [cls, *ids[3:7], sep], [cls, *ids[5:9], sep],
                                   [cls, ids[0], sep]]
    assert docs.document.tolist() == [0, 0, 0, 1]
    assert docs.rows.labels is not None and docs.rows.labels.tolist() == [1, 1, 1, 0]
    assert docs.chunks_per_document.tolist() == [3, 1]
    # Each text weighs the same: 1/3 per window of the first, 1 for the second, scaled to mean 1 over 4 rows.
    np.testing.assert_allclose(docs.row_weights(), [2 / 3, 2 / 3, 2 / 3, 2.0], rtol=1e-6)


def test_head_tail_exact_tokens(tokenizer: Any) -> None:
    content = list(range(100, 120))
    assert head_tail(content, 8) == [100, 101, *range(114, 120)]  # round(8 * 128/510) = 2 head, 6 tail
    assert head_tail(list(range(1000)), 510) == [*range(128), *range(1000 - 382, 1000)]  # Sun et al. at 512
    assert head_tail(content[:5], 8) == content[:5]
    ids = ids_of(tokenizer, WORDS)
    docs = encode_documents(tokenizer, [" ".join(WORDS)], 7, LongTextPolicy("head_tail"))
    # 5 text tokens: round(5 * 128/510) = 1 from the head, 4 from the tail.
    assert docs.rows.input_ids == [[tokenizer.cls_token_id, ids[0], *ids[5:], tokenizer.sep_token_id]]


def test_rust_tokenizer_makes_the_same_windows(tiny_model: Path, tokenizer: Any) -> None:
    from fmkit.models.rust_tokenizer import load_rust_tokenizer

    texts = [" ".join(WORDS * 3), "bad film", ""]
    policy = LongTextPolicy("chunk", stride=2)
    a = encode_documents(tokenizer, texts, 8, policy)
    b = encode_documents(load_rust_tokenizer(tiny_model), texts, 8, policy)
    assert a.rows.input_ids == b.rows.input_ids and a.document.tolist() == b.document.tolist()


def test_aggregation_functions_exact() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]], dtype=np.float32)
    document = np.array([0, 0, 0, 1])
    np.testing.assert_allclose(aggregate_probabilities(probs, document, 2, "mean"),
                               [[1.4 / 3, 1.6 / 3], [0.6, 0.4]], rtol=1e-6)
    np.testing.assert_allclose(aggregate_probabilities(probs, document, 2, "max"),
                               [[0.9 / 1.7, 0.8 / 1.7], [0.6, 0.4]], rtol=1e-6)
    vote = aggregate_probabilities(probs, document, 2, "vote")
    assert vote.argmax(1).tolist() == [1, 0]
    np.testing.assert_allclose(vote[0], [1 / 3, 2 / 3], atol=1e-3)
    # A tied vote goes to the class with the higher mean probability, whatever its position.
    tied = aggregate_probabilities(np.array([[0.9, 0.1], [0.4, 0.6]], dtype=np.float32), np.array([0, 0]), 1, "vote")
    assert tied.argmax(1).tolist() == [0]
    assert chunk_histogram(np.array([1, 1, 2, 4, 20])) == {"1": 2, "2": 1, "3-4": 1, ">16": 1}


def test_chunked_loss_weighs_each_text_once() -> None:
    from fmkit.data.tasks.classification import LabelMap
    from fmkit.workflows.objectives import ChunkedSingleLabel, SingleLabel

    objective = ChunkedSingleLabel(SingleLabel(LabelMap(("a", "b"))), np.ones(3, dtype=np.float32),
                                   np.array([0, 0, 1]), np.array([1, 0]), "mean")
    logits = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, 0.0]])
    labels = torch.tensor([1, 1, 0])
    weight = torch.tensor([0.5, 0.5, 2.0])
    per_row = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    loss = objective.loss(logits, {"labels": labels, "document_weight": weight})
    assert float(loss) == pytest.approx(float((per_row * weight).mean()))
    # Metrics are per text: text 0's mean window probabilities favour 'a' (wrong: its label is b), text 1 ties.
    assert objective.metrics(np.array([1, 1, 0]), logits)["accuracy"] == pytest.approx(0.5)


def test_doctor_recommends_chunk_when_many_texts_are_cut(tokenizer: Any) -> None:
    framing = Framing.of(tokenizer)
    lengths = np.array([10, 300, 300, 300, 50])
    facts = recommend_policy(lengths, 128, framing, "truncate", 32)
    assert facts["recommended"] == "chunk" and "--set data.long_text=chunk" in facts["advice"]
    assert facts["longer_share"] == pytest.approx(0.6)
    # 298 text tokens in windows of 126 sharing 32: starts 0, 94, 172 -> 3 windows.
    assert facts["chunk_windows_mean"] == pytest.approx((1 + 3 + 3 + 3 + 1) / 5)
    assert recommend_policy(np.array([10, 20, 300]), 128, framing, "truncate", 32)["recommended"] == "chunk"
    assert recommend_policy(np.array([10, 20, 30, 40, 300]), 128, framing, "truncate", 32)["recommended"] == "truncate"


def test_config_rejects_a_stride_as_long_as_the_window() -> None:
    with pytest.raises(ConfigError, match=r"chunk_stride=128 must be smaller than data\.max_length=128"):
        load_config(None, {"data.long_text": "chunk", "data.chunk_stride": 128})
    with pytest.raises(ConfigError, match="chunk_aggregate"):
        load_config(None, {"data.chunk_aggregate": "median"})
    with pytest.raises(ConfigError, match="implemented for --task classification"):
        load_config(None, {"data.long_text": "head_tail", "task.type": "regression"})
    assert load_config(None, {"data.long_text": "chunk", "data.chunk_stride": 127}).data.chunk_stride == 127


# --- a saved chunk model: the Predictor (torch) and its ONNX export give the same predictions --------------

LONG_TEXTS = [" ".join(["good", "movie"] * 20 + ["bad", "awful"] * 20), "bad film",
              " ".join(["the", "plot", "was", "great"] * 15), "a"]


@pytest.fixture(scope="module")
def chunk_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fmkit.models.backbone import load_tokenizer
    from fmkit.models.classifier import TextClassifier

    torch.manual_seed(3)
    model = TextClassifier.from_backbone(tiny_model, ["neg", "pos"], max_length=16)
    torch.nn.init.normal_(model.head.linear.weight, std=1.0)
    model.info = {"long_text": LongTextPolicy("chunk", stride=4, aggregate="mean").to_meta()}
    out = tmp_path_factory.mktemp("chunk") / "model"
    model.save_pretrained(out, load_tokenizer(tiny_model))
    return out


def test_chunk_predictor_averages_its_windows(chunk_model: Path) -> None:
    from fmkit.inference.predictor import Predictor

    chunked = Predictor.load(chunk_model, backend="torch")
    assert chunked.long_text == LongTextPolicy("chunk", 4, "mean")
    docs = encode_documents(chunked.tokenizer, LONG_TEXTS, 16, chunked.long_text)
    assert docs.chunks_per_document.tolist()[0] > 1  # the first text really is split
    # The same windows, fed as texts of their own to a truncating predictor of the same weights, then averaged.
    plain = Predictor.load(chunk_model, backend="torch")
    plain.long_text = LongTextPolicy()
    window_texts = [plain.tokenizer.decode(ids, skip_special_tokens=True) for ids in docs.rows.input_ids]
    window_probs = plain.predict_proba(window_texts)
    expected = np.stack([window_probs[docs.document == d].mean(0) for d in range(len(LONG_TEXTS))])
    np.testing.assert_allclose(chunked.predict_proba(LONG_TEXTS), expected, atol=1e-5)
    assert not np.allclose(plain.predict_proba(LONG_TEXTS[:1]), expected[:1], atol=1e-3)  # truncation differs


def test_chunk_model_predicts_the_same_through_onnx(chunk_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from fmkit.inference.export import export_onnx
    from fmkit.inference.predictor import Predictor

    export_onnx(chunk_model, tmp_path / "onnx")
    torch_model = Predictor.load(chunk_model, backend="torch")
    onnx_model = Predictor.load(tmp_path / "onnx", backend="onnx")  # auto would time both and might pick torch
    assert onnx_model.backend.name == "onnx" and onnx_model.long_text == torch_model.long_text  # from its fmkit.json
    a, b = torch_model.predict(LONG_TEXTS), onnx_model.predict(LONG_TEXTS)
    assert [r["label"] for r in a] == [r["label"] for r in b]
    np.testing.assert_allclose(torch_model.predict_proba(LONG_TEXTS), onnx_model.predict_proba(LONG_TEXTS), atol=1e-4)


def test_chunk_model_embeds_a_text_as_the_mean_direction_of_its_windows(chunk_model: Path) -> None:
    from fmkit.inference.predictor import Predictor

    chunked = Predictor.load(chunk_model, backend="torch")
    plain = Predictor.load(chunk_model, backend="torch")
    plain.long_text = LongTextPolicy()
    docs = encode_documents(chunked.tokenizer, LONG_TEXTS[:1], 16, chunked.long_text)
    windows = plain.embed([plain.tokenizer.decode(ids, skip_special_tokens=True) for ids in docs.rows.input_ids])
    expected = windows.mean(0) / np.linalg.norm(windows.mean(0))
    np.testing.assert_allclose(chunked.embed(LONG_TEXTS[:1])[0], expected, atol=1e-5)
