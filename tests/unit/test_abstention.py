"""Abstention: the threshold tuned for a target precision, saved in fmkit.json, and applied identically by the
Python API, `fmkit predict`, the HTTP server and an ONNX export; `fmkit eval` reports coverage and precision."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fmkit
from fmkit.evaluation.abstention import abstention_metrics, tune_abstain_threshold
from fmkit.evaluation.report import abstention_section
from fmkit.inference.predictor import Predictor
from fmkit.models.backbone import load_tokenizer
from fmkit.models.classifier import TextClassifier
from fmkit.models.meta import FMKIT_META
from fmkit.workflows.classification import tune_abstention
from tests.conftest import WORDS, write_sentiment_csv

LABELS = ["bearish", "bullish", "neutral"]
TEXTS = [" ".join(WORDS[i: i + 1 + i % 7]) for i in range(0, 40)]

# --- tuning -----------------------------------------------------------------------------------------

SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
CORRECT = np.array([True, True, False, True, False])


def test_lowest_threshold_reaching_the_target_keeps_the_most_examples() -> None:
    # Accepting the top 4 is 3/4 right: 0.75 reaches the target; the top 5 (0.6) does not.
    tuning = tune_abstain_threshold(CORRECT, SCORES, 0.75)
    assert tuning.threshold == pytest.approx(0.55)  # halfway between the last accepted (0.6) and the first refused
    assert tuning.precision == 0.75 and tuning.coverage == 0.8
    assert tuning.accuracy == 0.6 and tuning.best_precision == 1.0 and tuning.examples == 5


def test_a_higher_target_keeps_fewer() -> None:
    # Top 2: 1.0; top 3: 0.67; top 4: 0.75 -> only the top 2 reach 0.8.
    tuning = tune_abstain_threshold(CORRECT, SCORES, 0.8)
    assert tuning.threshold == pytest.approx(0.75) and tuning.coverage == 0.4 and tuning.precision == 1.0


def test_a_model_already_that_precise_never_abstains() -> None:
    tuning = tune_abstain_threshold(CORRECT, SCORES, 0.6)
    assert tuning.threshold == 0.0 and tuning.coverage == 1.0 and tuning.precision == 0.6


def test_unreachable_target_saves_no_threshold_and_says_the_best() -> None:
    correct = np.array([False, True, True, False])
    tuning = tune_abstain_threshold(correct, np.array([0.95, 0.9, 0.8, 0.4]), 0.9)
    assert tuning.threshold is None and tuning.coverage is None
    assert tuning.best_precision == pytest.approx(2 / 3)
    assert "no abstain threshold reaches precision 0.9" in tuning.summary() and "0.6667" in tuning.summary()


def test_equal_scores_are_accepted_or_refused_together() -> None:
    # 0.9 twice (one right, one wrong): no threshold separates them, so 1.0 precision is not on offer.
    tuning = tune_abstain_threshold(np.array([True, False, True]), np.array([0.9, 0.9, 0.5]), 0.9)
    assert tuning.threshold is None and tuning.best_precision == pytest.approx(2 / 3)


def test_abstention_metrics_count_what_the_threshold_keeps() -> None:
    m = abstention_metrics(CORRECT, SCORES, 0.65)
    assert m == {"threshold": 0.65, "coverage": 0.6, "accepted_accuracy": pytest.approx(2 / 3), "accuracy": 0.6,
                 "answered": 3, "abstained": 2}


class FakeModel:
    def __init__(self) -> None:
        self.info: dict[str, Any] = {"pair_input": False}


def test_tuning_after_training_keeps_the_threshold_in_the_model_info_only_when_reached() -> None:
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.55, 0.45]])
    truth = np.array([0, 1, 0, 0])  # the 0.6 answer is wrong
    model = FakeModel()
    found = tune_abstention(0.9, truth, probs, model)
    assert found is not None and found["threshold"] == pytest.approx(0.7)  # between 0.8 and 0.6
    assert model.info == {"pair_input": False, "abstain_threshold": pytest.approx(0.7), "abstain_target_precision": 0.9}
    unreachable = FakeModel()
    missed = tune_abstention(1.0, np.array([1, 1, 0, 0]), probs, unreachable)  # the most confident answer is wrong
    assert missed is not None and missed["threshold"] is None
    assert unreachable.info == {"pair_input": False}
    assert tune_abstention(None, truth, probs, FakeModel()) is None


# --- applied wherever the model runs ------------------------------------------------------------------

@pytest.fixture(scope="module")
def plain_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.manual_seed(0)
    model = TextClassifier.from_backbone(tiny_model, LABELS, max_length=32)
    with torch.no_grad():  # spread the head's outputs so top probabilities differ between texts
        model.head.linear.weight.normal_(0, 0.2)
    folder = tmp_path_factory.mktemp("abstain") / "model"
    model.save_pretrained(folder, load_tokenizer(tiny_model))
    return folder


@pytest.fixture(scope="module")
def abstaining_model(plain_model: Path) -> tuple[Path, float]:
    """The same model with a threshold at the median top probability of TEXTS: about half abstain."""
    threshold = float(np.median(Predictor.load(plain_model).predict_proba(TEXTS).max(1)))
    folder = plain_model.parent / "abstaining"
    import shutil

    shutil.copytree(plain_model, folder)
    meta = json.loads((folder / FMKIT_META).read_text())
    (folder / FMKIT_META).write_text(json.dumps({**meta, "abstain_threshold": threshold}))
    return folder, threshold


def expected_records(plain_model: Path, threshold: float) -> list[dict[str, Any]]:
    out = []
    for record in Predictor.load(plain_model).predict(TEXTS):
        top = max(record["scores"].values())
        if top >= threshold:
            out.append({"label": record["label"], "abstained": False, "scores": record["scores"]})
        else:
            out.append({"label": None, "abstained": True, "top_label": record["label"], "scores": record["scores"]})
    return out


def test_predictor_abstains_below_the_saved_threshold(plain_model: Path, abstaining_model: tuple[Path, float]) -> None:
    folder, threshold = abstaining_model
    records = fmkit.load(folder).predict(TEXTS)
    assert records == expected_records(plain_model, threshold)
    abstained = sum(r["abstained"] for r in records)
    assert 0 < abstained < len(TEXTS)  # both kinds present, so the comparison above tests both shapes
    # Without a threshold the record shape is unchanged.
    assert set(fmkit.load(plain_model).predict(TEXTS[:1])[0]) == {"label", "scores"}


def test_predict_cli_and_its_override(plain_model: Path, abstaining_model: tuple[Path, float], tmp_path: Path) -> None:
    from fmkit.cli import main

    folder, threshold = abstaining_model
    inputs = tmp_path / "in.txt"
    inputs.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["predict", str(folder), str(inputs), "--output", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [{k: v for k, v in r.items() if k != "text"} for r in lines] == expected_records(plain_model, threshold)
    # --abstain-threshold 0 answers everything, on a model that had no threshold too.
    assert main(["predict", str(plain_model), str(inputs), "--output", str(out), "--abstain-threshold", "0"]) == 0
    assert all(json.loads(line)["abstained"] is False for line in out.read_text(encoding="utf-8").splitlines())


def test_server_answers_the_same_records(plain_model: Path, abstaining_model: tuple[Path, float]) -> None:
    from fastapi.testclient import TestClient

    from fmkit.inference.server import create_app

    folder, threshold = abstaining_model
    with TestClient(create_app(Predictor.load(folder))) as client:
        response = client.post("/v1/predict", json={"texts": TEXTS})
    assert response.status_code == 200
    got = response.json()["predictions"]
    want = expected_records(plain_model, threshold)
    assert [(r["label"], r["abstained"], r.get("top_label")) for r in got] == \
        [(r["label"], r["abstained"], r.get("top_label")) for r in want]


def test_onnx_export_carries_the_threshold(abstaining_model: tuple[Path, float], tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from fmkit.inference.export import export_onnx

    folder, threshold = abstaining_model
    export_onnx(folder, tmp_path / "onnx")
    exported = Predictor.load(tmp_path / "onnx", backend="onnx")
    assert exported.backend.name == "onnx" and exported.abstain_threshold == threshold
    source = Predictor.load(folder, precision="fp32").predict(TEXTS)
    # Same decisions except where a text sits within the fp32/ONNX rounding of the threshold.
    clear = [i for i, r in enumerate(source) if abs(max(r["scores"].values()) - threshold) > 1e-4]
    onnx_records = exported.predict(TEXTS)
    assert len(clear) > 30
    assert [onnx_records[i]["abstained"] for i in clear] == [source[i]["abstained"] for i in clear]


# --- eval and the report --------------------------------------------------------------------------------

def test_eval_reports_coverage_and_accuracy_on_answered_rows(abstaining_model: tuple[Path, float],
                                                             tmp_path: Path) -> None:
    folder, threshold = abstaining_model
    records = Predictor.load(folder).predict(TEXTS)
    gold = [r["label"] or r["top_label"] for r in records]
    gold[0] = next(label for label in LABELS if label != gold[0])  # one known mistake, answered or not
    data = tmp_path / "test.csv"
    data.write_text("text,label\n" + "".join(f"{t},{g}\n" for t, g in zip(TEXTS, gold, strict=True)), encoding="utf-8")
    metrics = fmkit.evaluate(folder, data)
    answered = [not r["abstained"] for r in records]
    first_answered = answered[0]
    assert metrics["abstention"] == {
        "threshold": threshold, "coverage": pytest.approx(sum(answered) / len(TEXTS)),
        "accepted_accuracy": pytest.approx((sum(answered) - first_answered) / sum(answered)),
        "accuracy": pytest.approx((len(TEXTS) - 1) / len(TEXTS)),
        "answered": sum(answered), "abstained": len(TEXTS) - sum(answered)}


def test_report_section_when_a_threshold_exists_and_when_none_was_found() -> None:
    found = {"abstention": {"target_precision": 0.95, "threshold": 0.71, "precision": 0.96, "coverage": 0.8,
                            "accuracy": 0.9, "best_precision": 1.0, "examples": 100}}
    section = abstention_section(found)
    assert section is not None and "below 0.7100" in section.markdown and "| answered (at the threshold) | 0.9600 | 0.8000 |" in section.markdown
    missed = {"abstention": {**found["abstention"], "threshold": None, "precision": None, "coverage": None,
                             "best_precision": 0.93}}
    section = abstention_section(missed)
    assert section is not None and "none was saved" in section.markdown and "0.9300" in section.markdown
    assert abstention_section({}) is None


def test_training_with_a_target_precision_saves_what_metrics_json_says(tiny_model: Path, tmp_path: Path) -> None:
    train = write_sentiment_csv(tmp_path / "train.csv", n=80)
    evaluation = write_sentiment_csv(tmp_path / "eval.csv", n=40, seed=1)
    result = fmkit.train(data=str(train), eval=str(evaluation), model=str(tiny_model), epochs=1,
                         output=str(tmp_path / "run"), strategy="full",
                         **{"train.progress": False, "train.batch_size": 16, "eval.target_precision": 0.9,
                            "eval.precision": "fp32", "track.tensorboard": False})
    tuning = result.metrics["abstention"]
    predictions = [json.loads(line) for line in (tmp_path / "run" / "eval_predictions.jsonl").read_text().splitlines()]
    labels = sorted(predictions[0]["scores"])
    probs = np.array([[p["scores"][label] for label in labels] for p in predictions])
    truth = np.array([labels.index(p["label"]) for p in predictions])
    again = tune_abstain_threshold(probs.argmax(1) == truth, probs.max(1), 0.9)
    assert tuning["coverage"] == again.coverage and tuning["precision"] == again.precision
    meta = json.loads((tmp_path / "run" / "model" / FMKIT_META).read_text())
    assert tuning["threshold"] is not None and 0 < tuning["coverage"] < 1  # the toy set reaches 0.9 by abstaining
    assert meta["abstain_threshold"] == pytest.approx(tuning["threshold"])
    assert meta["abstain_threshold"] == pytest.approx(again.threshold, abs=1e-5)  # eval_predictions are rounded
    # `fmkit eval` on the same eval file keeps the same rows (the threshold sits between two eval scores).
    evaluated = fmkit.evaluate(tmp_path / "run", evaluation)["abstention"]
    assert evaluated["coverage"] == pytest.approx(tuning["coverage"])
    assert evaluated["accepted_accuracy"] == pytest.approx(tuning["precision"])
