"""Predictor: records in input order, probabilities, streaming in bounded memory, run dir accepted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import fmkit
from fmkit.inference.predictor import Predictor
from fmkit.models.backbone import load_tokenizer
from fmkit.models.classifier import TextClassifier
from tests.conftest import WORDS

LABELS = ["bearish", "bullish", "neutral"]


@pytest.fixture(scope="module")
def saved_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier saved the way `fmkit train` saves it (random head: no training needed to test inference)."""
    import torch

    torch.manual_seed(0)
    model = TextClassifier.from_backbone(tiny_model, LABELS, max_length=32)
    with torch.no_grad():  # spread the head's outputs so the argmax differs between texts
        model.head.linear.weight.normal_(0, 2.0)
    run = tmp_path_factory.mktemp("predictor-run")
    model.save_pretrained(run / "model", load_tokenizer(tiny_model))
    return run / "model"


def texts_of_varied_length(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 40)))) for _ in range(n)]


def test_records_come_back_in_input_order(saved_model: Path) -> None:
    predictor = Predictor.load(saved_model, batch_size=4)  # several length-sorted batches
    texts = texts_of_varied_length(37)
    batched = predictor.predict(texts)
    one_by_one = [predictor.predict([t])[0] for t in texts]
    assert [r["label"] for r in batched] == [r["label"] for r in one_by_one]
    for a, b in zip(batched, one_by_one, strict=True):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-5)
    # Not trivially true: every text gets its own scores, so a shuffled order would not match.
    assert len({tuple(r["scores"].values()) for r in batched}) > 30


def test_record_shape(saved_model: Path) -> None:
    (record,) = fmkit.load(saved_model).predict(["shares jump"])
    assert set(record) == {"label", "scores"}
    assert list(record["scores"]) == LABELS
    assert sum(record["scores"].values()) == pytest.approx(1, abs=1e-4)
    assert record["label"] == max(record["scores"], key=record["scores"].get)


def test_run_directory_is_accepted(saved_model: Path) -> None:
    texts = ["a good film", "bad stock news"]
    assert fmkit.load(saved_model.parent).predict(texts) == fmkit.load(saved_model).predict(texts)


def test_empty_input_and_long_texts(saved_model: Path) -> None:
    predictor = Predictor.load(saved_model)
    assert predictor.predict([]) == []
    assert predictor.predict_proba([]).shape == (0, len(LABELS))
    long_text = " ".join(["market"] * 5000)  # far beyond max_length: truncated, not an error
    assert predictor.predict([long_text])[0]["label"] in LABELS


def test_stream_equals_list(saved_model: Path) -> None:
    predictor = Predictor.load(saved_model, batch_size=8)
    texts = texts_of_varied_length(50, seed=1)
    streamed = list(predictor.predict_stream(iter(texts), chunk_size=7))
    listed = predictor.predict(texts)
    assert [r["label"] for r in streamed] == [r["label"] for r in listed]
    for a, b in zip(streamed, listed, strict=True):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-5)


def test_predict_streams_in_bounded_memory(saved_model: Path) -> None:
    """20k short lines from a generator: the predictor never holds more than one chunk of input or output.

    Counted, not timed or measured: the generator records how far its consumer has pulled, and the output
    is read one record at a time, so `pulled - emitted` is the number of texts held inside the predictor.
    """
    predictor = Predictor.load(saved_model, batch_size=512)
    chunk = 512
    pulled = 0

    def lines() -> Iterator[str]:
        nonlocal pulled
        for i in range(20_000):
            pulled += 1
            yield WORDS[i % len(WORDS)]

    emitted = 0
    max_ahead = 0
    for record in predictor.predict_stream(lines(), chunk_size=chunk):
        emitted += 1
        max_ahead = max(max_ahead, pulled - emitted)
        assert record["label"] in LABELS
    assert emitted == pulled == 20_000
    assert max_ahead < chunk  # input is consumed chunk by chunk, never all at once


def test_cli_predict_matches_the_api(saved_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`fmkit predict` (file and --output) writes the very records `fmkit.load(path).predict` returns."""
    from fmkit.cli import main

    texts = texts_of_varied_length(25, seed=2)
    source = tmp_path / "new.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "predictions.jsonl"
    assert main(["predict", str(saved_model), str(source), "--output", str(out)]) == 0
    assert main(["predict", str(saved_model), str(source)]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    api = fmkit.load(saved_model).predict(texts)
    assert written == printed
    assert [r["label"] for r in written] == [r["label"] for r in api]
    for a, b in zip(written, api, strict=True):
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-6)


def test_the_batch_size_defaults_to_the_backends_own_and_an_explicit_one_wins(saved_model: Path) -> None:
    from fmkit.inference import load_predictor
    from fmkit.inference.predictor import default_batch_size

    assert Predictor.load(saved_model, backend="torch", precision="fp32").batch_size == 32
    assert Predictor.load(saved_model, backend="torch", precision="bf16").batch_size == 64
    assert load_predictor(saved_model, precision="fp32").batch_size == 32  # the CLI's path without --batch-size
    assert load_predictor(saved_model, batch_size=7, precision="bf16").batch_size == 7
    assert default_batch_size(object()) == 32  # not torch: ONNX Runtime
