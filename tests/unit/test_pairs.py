"""Text-pair input for classification: two text columns in, one cross-encoded sequence, pairs in predict/serve."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from fmkit.data.labeled import read_labeled
from fmkit.errors import DataError

GOOD = ["good", "great", "excellent", "love", "wonderful", "best"]
BAD = ["bad", "awful", "terrible", "hate", "worst", "poor"]
FILLER = ["the", "movie", "film", "plot", "was", "is", "story", "it"]


def write_pairs(path: Path, n: int, seed: int) -> Path:
    """The label is the second text's sentiment; the first text's is random noise. A model that dropped the
    second text would be at chance."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("premise\thypothesis\tlabel\n")
        for _ in range(n):
            a_pos, b_pos = rng.random() < 0.5, rng.random() < 0.5
            a = " ".join(rng.sample(FILLER, 3) + rng.sample(GOOD if a_pos else BAD, 2))
            b = " ".join(rng.sample(FILLER, 3) + rng.sample(GOOD if b_pos else BAD, 2))
            fh.write(f"{a}\t{b}\t{'pos' if b_pos else 'neg'}\n")
    return path


def test_pair_columns_are_found_and_a_missing_one_is_listed(tmp_path: Path) -> None:
    data = read_labeled(write_pairs(tmp_path / "p.tsv", 12, 0))
    assert data.columns == ("premise", "hypothesis") and data.pairs is not None
    assert data.subset([3, 1]).pairs == [data.pairs[3], data.pairs[1]]
    with pytest.raises(DataError, match=r"no text column 'second'\. Columns present: premise, hypothesis, label"):
        read_labeled(tmp_path / "p.tsv", "premise,second")


def test_segments_start_after_the_first_separator(tiny_model: Path) -> None:
    from fmkit.models.classifier import TextClassifier

    model = TextClassifier.from_backbone(tiny_model, ["a", "b"])
    seen: dict[str, Any] = {}
    real_forward = model.encoder.forward

    def spy(**kwargs: Any) -> Any:
        seen.update(kwargs)
        return real_forward(**kwargs)

    model.encoder.forward = spy  # type: ignore[method-assign]
    ids = torch.tensor([[2, 7, 8, 3, 9, 3, 0]])  # [CLS] a a [SEP] b [SEP] [PAD]
    model.pair_sep_id = 3
    model.embed(ids, torch.tensor([[1, 1, 1, 1, 1, 1, 0]]))
    assert seen["token_type_ids"].tolist() == [[0, 0, 0, 0, 1, 1, 1]]
    seen.clear()
    model.pair_sep_id = None
    model.embed(ids, torch.ones_like(ids))
    assert "token_type_ids" not in seen  # single texts: the encoder's default (all 0)


def test_pair_classifier_trains_predicts_and_serves(tiny_model: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from fmkit.cli import main
    from fmkit.inference import load_predictor
    from fmkit.inference.server import create_app

    data, held_out = write_pairs(tmp_path / "train.tsv", 320, 0), write_pairs(tmp_path / "eval.tsv", 80, 1)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--eval", str(held_out), "--model", str(tiny_model), "--output",
                 str(run), "--quiet", "--batch-size", "8", "--learning-rate", "1e-3", "--epochs", "8"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.85, metrics  # the second text reached the model
    assert json.loads((run / "strategy.json").read_text())["strategy"] == "full"
    meta = json.loads((run / "model" / "fmkit.json").read_text())
    assert meta["pair_input"] is True and meta["text_columns"] == ["premise", "hypothesis"]
    assert meta["pair_sep_id"] == 3

    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(held_out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(metrics["accuracy"])

    predictor = load_predictor(run)
    pairs = [("awful worst film", "love wonderful plot"), ("great best film", "awful worst plot")]
    records = predictor.predict_pairs(pairs)
    assert [r["label"] for r in records] == ["pos", "neg"]
    capsys.readouterr()
    assert main(["predict", str(run), str(held_out), "--format", "jsonl"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(printed) == 80 and {"text", "text_pair", "label", "scores"} <= set(printed[0])
    with TestClient(create_app(predictor)) as client:
        answer = client.post("/v1/predict", json={"pairs": [list(p) for p in pairs]})
        assert answer.status_code == 200
        assert [p["label"] for p in answer.json()["predictions"]] == ["pos", "neg"]
        assert client.post("/v1/predict", json={"texts": ["great"]}).status_code == 422


def test_pairs_refuse_what_reads_single_texts(tiny_model: Path, tmp_path: Path) -> None:
    from fmkit.cli import main

    data = write_pairs(tmp_path / "train.tsv", 40, 2)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--model", str(tiny_model), "--output", str(run), "--quiet",
                 "--strategy", "fewshot"]) == 2
    assert not run.exists()  # refused before anything was written


def test_single_text_column_is_found_in_each_file_on_its_own(tiny_model: Path, tmp_path: Path) -> None:
    """SST-2 names its text column `sentence` in train and `content` in dev: only pairs carry the training
    file's column names over to the eval file (this broke when pairs came in)."""
    from fmkit.cli import main
    from tests.conftest import write_sentiment_csv

    train = write_sentiment_csv(tmp_path / "train.csv", n=40)
    held_out = tmp_path / "eval.csv"
    held_out.write_text(write_sentiment_csv(tmp_path / "e.csv", n=20, seed=1).read_text().replace("text,label",
                                                                                                  "content,label", 1))
    assert main(["train", "--data", str(train), "--eval", str(held_out), "--model", str(tiny_model), "--output",
                 str(tmp_path / "run"), "--quiet", "--epochs", "1", "--strategy", "full"]) == 0
    scores = tmp_path / "scores.csv"
    scores.write_text("text,score\n" + "".join(f"good film {i},{i % 5}\n" for i in range(20)), encoding="utf-8")
    scores_eval = tmp_path / "scores_eval.csv"
    scores_eval.write_text("sentence,score\n" + "".join(f"bad plot {i},{i % 4}\n" for i in range(10)), encoding="utf-8")
    assert main(["train", "--task", "regression", "--data", str(scores), "--eval", str(scores_eval), "--model",
                 str(tiny_model), "--output", str(tmp_path / "reg"), "--quiet", "--epochs", "1"]) == 0
