"""--task multilabel: label formats, checks, thresholds, metrics, the sigmoid head, and a tiny-model run."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, hamming_loss

from fmkit.data.tasks.multilabel import MultiLabelMap, read_multilabeled, validate_multilabel
from fmkit.errors import DataError
from fmkit.evaluation.metrics import multilabel_metrics, tune_thresholds
from fmkit.training.logistic import fit_sigmoid_regression

TOPICS = {"price": ["profit", "loss", "market"], "mood": ["good", "bad", "sad"], "film": ["movie", "plot", "actor"]}
FILLER = ["the", "a", "is", "was", "it", "this", "that", "and"]


def write_tagged(path: Path, n: int, seed: int) -> Path:
    """Each text mentions 1-2 topics; its labels are exactly the topics it mentions."""
    rng = random.Random(seed)
    names = sorted(TOPICS)
    with open(path, "w", encoding="utf-8") as fh:
        for _ in range(n):
            chosen = sorted(rng.sample(names, rng.choice([1, 1, 2])))
            words = rng.sample(FILLER, 3) + [rng.choice(TOPICS[t]) for t in chosen for _ in range(2)]
            rng.shuffle(words)
            fh.write(json.dumps({"text": " ".join(words), "labels": chosen}) + "\n")
    return path


# --- formats and checks ---------------------------------------------------------------------------------

def test_three_label_formats_read_the_same(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("text,tags\nx one,a|b\nx two,b\nx three,c|a\n", encoding="utf-8")
    (tmp_path / "l.jsonl").write_text('{"text": "x one", "tags": ["b", "a"]}\n{"text": "x two", "tags": ["b"]}\n'
                                      '{"text": "x three", "tags": ["a", "c"]}\n', encoding="utf-8")
    (tmp_path / "i.csv").write_text("text,a,b,c\nx one,1,1,0\nx two,0,1,0\nx three,1,0,1\n", encoding="utf-8")
    expected = [["a", "b"], ["b"], ["a", "c"]]
    assert read_multilabeled(tmp_path / "d.csv", label_column="tags").labels == expected
    assert read_multilabeled(tmp_path / "l.jsonl", label_column="tags").labels == expected
    assert read_multilabeled(tmp_path / "i.csv", label_column="a,b,c").labels == expected


def test_two_separators_are_explained_with_an_example(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text('text,tags\nx,"a|b"\ny,"c;d"\n', encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_multilabeled(tmp_path / "d.csv", label_column="tags")
    message = str(info.value)
    assert "'|' and ';'" in message and "data.label_separator" in message and "e.g. 'a|b'" in message
    assert read_multilabeled(tmp_path / "d.csv", label_column="tags", separator=";").labels == [["a|b"], ["c", "d"]]


def test_bad_indicator_and_missing_labels_name_the_row(tmp_path: Path) -> None:
    (tmp_path / "i.csv").write_text("text,a,b\nx,1,0\ny,0,maybe\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"row 2 has 'maybe' in label column 'b'"):
        read_multilabeled(tmp_path / "i.csv", label_column="a,b")
    (tmp_path / "m.csv").write_text("text,tags\nx,a\ny,\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"1 row\(s\) have no labels in column 'tags' \(first at row 2\)"):
        read_multilabeled(tmp_path / "m.csv", label_column="tags")


def test_single_label_data_warns_and_unseen_eval_labels_are_named(tmp_path: Path) -> None:
    rows = "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(12))
    (tmp_path / "t.csv").write_text("text,tags\n" + rows, encoding="utf-8")
    (tmp_path / "e.csv").write_text("text,tags\nq,a|zebra\n", encoding="utf-8")
    train = read_multilabeled(tmp_path / "t.csv", label_column="tags")
    warnings = validate_multilabel(train, None)
    assert any("--task classification fits better" in w for w in warnings)
    with pytest.raises(DataError, match="'zebra' never occur in the training data"):
        validate_multilabel(train, read_multilabeled(tmp_path / "e.csv", label_column="tags"))


# --- metrics, thresholds, the head ---------------------------------------------------------------------------

def test_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random((50, 4)) < 0.3
    pred = rng.random((50, 4)) < 0.3
    m = multilabel_metrics(truth, pred, ["a", "b", "c", "d"])
    assert m["macro_f1"] == pytest.approx(f1_score(truth, pred, average="macro", zero_division=0))
    assert m["micro_f1"] == pytest.approx(f1_score(truth, pred, average="micro", zero_division=0))
    assert m["samples_f1"] == pytest.approx(f1_score(truth, pred, average="samples", zero_division=1))
    assert m["hamming_loss"] == pytest.approx(hamming_loss(truth, pred))
    assert m["subset_accuracy"] == pytest.approx(float((truth == pred).all(1).mean()))


def test_thresholds_are_tuned_per_label() -> None:
    truth = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], dtype=np.float32)
    # Label 0's positives score 0.3, its negatives 0.1: the best cut is between them, not at 0.5.
    probs = np.array([[0.3, 0.1], [0.3, 0.2], [0.1, 0.9], [0.1, 0.4]])
    thresholds = tune_thresholds(truth, probs)
    assert 0.1 < thresholds[0] <= 0.3 and 0.4 < thresholds[1] <= 0.9
    assert multilabel_metrics(truth, probs >= thresholds, ["a", "b"])["macro_f1"] == 1.0
    assert tune_thresholds(np.zeros((3, 1)), np.full((3, 1), 0.9))[0] == 0.5  # nothing to tune on


def test_sigmoid_head_matches_one_scikit_learn_model_per_label() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=gen)
    y = torch.stack([(x[:, 0] > 0), (x[:, 1] + x[:, 2] > 0.5), (x[:, 3] < -0.5)], dim=1).float()
    fit = fit_sigmoid_regression(x, y, c=0.5)
    for j in range(3):
        ref = LogisticRegression(C=0.5, tol=1e-10, max_iter=5000).fit(x.numpy(), y[:, j].numpy())
        assert np.allclose(fit.weight[j].numpy(), ref.coef_[0], atol=2e-3), j
        assert abs(float(fit.bias[j]) - float(ref.intercept_[0])) < 2e-3


def test_label_map_encodes_multi_hot() -> None:
    labels = MultiLabelMap.from_labels([["b", "a"], ["c"]])
    assert labels.labels == ("a", "b", "c")
    assert labels.encode([["a", "c"], []]).tolist() == [[1, 0, 1], [0, 0, 0]]


# --- a tiny random BERT end to end ----------------------------------------------------------------------------

def test_train_eval_predict_serve(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fmkit.cli import main
    from fmkit.inference import load_predictor
    from fmkit.inference.server import create_app

    data, held_out = write_tagged(tmp_path / "train.jsonl", 240, 0), write_tagged(tmp_path / "eval.jsonl", 60, 1)
    run = tmp_path / "run"
    assert main(["train", "--task", "multilabel", "--data", str(data), "--eval", str(held_out), "--model",
                 str(tiny_model), "--output", str(run), "--quiet", "--batch-size", "8", "--learning-rate", "1e-3",
                 "--epochs", "6", "--strategy", "full"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["macro_f1"] > 0.9, metrics  # the labels are the topic words the text contains
    assert set(metrics["thresholds"]) == set(TOPICS) and len(metrics["threshold_curve"]) == 19
    meta = json.loads((run / "model" / "fmkit.json").read_text())
    assert meta["task"] == "multilabel" and len(meta["thresholds"]) == 3

    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(held_out), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["macro_f1"] == pytest.approx(metrics["macro_f1"], abs=1e-6)  # same model, same thresholds

    predictor = load_predictor(run)
    records = predictor.predict(["the profit and market is it", "the movie plot and good good"])
    assert records[0]["labels"] == ["price"] and records[1]["labels"] == ["film", "mood"]
    assert set(records[0]["scores"]) == set(TOPICS)
    with TestClient(create_app(predictor)) as client:
        answer = client.post("/v1/predict", json={"texts": ["the profit and market is it"]})
        assert answer.status_code == 200 and answer.json()["predictions"][0]["labels"] == ["price"]


def test_linear_probe_and_refused_strategy(tiny_model: Path, tmp_path: Path) -> None:
    from fmkit.cli import main

    data = write_tagged(tmp_path / "train.jsonl", 120, 2)
    common = ["train", "--task", "multilabel", "--data", str(data), "--model", str(tiny_model), "--quiet"]
    assert main([*common, "--output", str(tmp_path / "run"), "--strategy", "linear-probe"]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["strategy"] == "linear-probe" and 0.0 <= metrics["macro_f1"] <= 1.0
    assert main([*common, "--output", str(tmp_path / "other"), "--strategy", "zeroshot"]) == 2
    assert not (tmp_path / "other").exists()
