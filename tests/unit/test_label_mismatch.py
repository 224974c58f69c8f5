"""Label-set mismatches: eval/test labels a model never saw (`fmkit eval --unknown-labels`), `doctor --eval`'s
listing, and combined labels such as `flight#airfare` pointing to --task multilabel."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import fmkit
from fmkit.cli import main
from fmkit.config import load_config
from fmkit.data.label_sets import combined_label_parts, label_set_difference, unknown_labels_message
from fmkit.data.labeled import LabeledTexts
from fmkit.data.validate import validate_classification
from fmkit.errors import DataError
from fmkit.evaluation.metrics import UNKNOWN_LABEL, classification_metrics
from fmkit.inference.predictor import Predictor
from fmkit.models.backbone import load_tokenizer
from fmkit.models.classifier import TextClassifier
from fmkit.workflows.classification import doctor_data
from tests.conftest import WORDS

LABELS = ["airfare", "flight", "ground"]

# --- comparing label sets ------------------------------------------------------------------------------


def test_combined_labels_are_known_labels_joined() -> None:
    assert combined_label_parts("flight#airfare", LABELS) == ("flight", "airfare")
    assert combined_label_parts("flight | ground", LABELS) == ("flight", "ground")
    assert combined_label_parts("airfare+flight+ground", LABELS) == ("airfare", "flight", "ground")
    assert combined_label_parts("flight#meal", LABELS) is None  # a part that is no label
    assert combined_label_parts("C++", ["C"]) is None
    assert combined_label_parts("flight", LABELS) is None


def test_label_set_difference_counts_rows_both_ways() -> None:
    rows = ["flight", "oos", "flight#airfare", "oos", "flight", "meal"]
    diff = label_set_difference(LABELS, rows)
    assert diff.unknown == {"oos": 2, "flight#airfare": 1, "meal": 1}  # most rows first, then by name
    assert list(diff.unknown) == ["oos", "flight#airfare", "meal"]
    assert diff.absent == ["airfare", "ground"] and diff.unknown_rows == 4
    assert diff.combined == {"flight#airfare": ("flight", "airfare")}


def test_the_refusal_names_labels_rows_and_both_ways_forward() -> None:
    diff = label_set_difference(LABELS, ["flight", "oos", "flight#airfare", "oos"])
    message = unknown_labels_message(diff, "test.csv", rows=4)
    assert message.startswith("test.csv: 2 labels the model was never trained on, on 3 of 4 rows: "
                              "'oos' (2 rows), 'flight#airfare' (1 row).")
    assert "--unknown-labels wrong" in message and "--unknown-labels skip" in message
    assert "'flight#airfare' combines the labels 'flight' and 'airfare'" in message
    assert "--task multilabel" in message
    plain = unknown_labels_message(label_set_difference(LABELS, ["oos"]), "t.csv", rows=1)
    assert "multilabel" not in plain


def labeled(pairs: list[tuple[str, str]], source: str) -> LabeledTexts:
    return LabeledTexts([t for t, _ in pairs], [lab for _, lab in pairs], source)


def test_training_refuses_unseen_eval_labels_and_recognises_combined_ones() -> None:
    train = labeled([(f"t{i}", LABELS[i % 3]) for i in range(9)], "train.csv")
    evaluation = labeled([("a", "flight"), ("b", "flight#airfare")], "eval.csv")
    with pytest.raises(DataError, match=r"'flight#airfare' never appear.*first at row 2.*--task multilabel"):
        validate_classification(train, evaluation)
    # doctor lists them itself instead
    assert validate_classification(train, evaluation, unseen_eval_labels="allow").warnings == []


# --- metrics with rows counted as errors ------------------------------------------------------------------


def test_unknown_rows_count_as_errors_and_as_false_positives_of_their_prediction() -> None:
    y_true = np.array([0, 0, 1, 1, UNKNOWN_LABEL, UNKNOWN_LABEL])
    y_pred = np.array([0, 1, 1, 1, 0, 0])
    m = classification_metrics(y_true, y_pred, ["a", "b"])
    assert m["accuracy"] == pytest.approx(3 / 6) and m["num_examples"] == 6
    # a: 1 right of 3 predicted (two are unknown rows); b: 2 right of 3 predicted
    assert m["per_class"]["a"] == {"precision": pytest.approx(1 / 3), "recall": 0.5, "f1": pytest.approx(0.4),
                                   "support": 2}
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3) and m["per_class"]["b"]["recall"] == 1.0
    assert m["confusion_matrix"] == [[1, 1], [0, 2]]  # known rows only
    # Without unknown rows nothing changes.
    assert classification_metrics(y_true[:4], y_pred[:4], ["a", "b"])["accuracy"] == 0.75


# --- fmkit eval / fmkit.evaluate ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.manual_seed(0)
    model = TextClassifier.from_backbone(tiny_model, LABELS, max_length=32)
    with torch.no_grad():
        model.head.linear.weight.normal_(0, 0.5)
    folder = tmp_path_factory.mktemp("mismatch") / "model"
    model.save_pretrained(folder, load_tokenizer(tiny_model))
    return folder


TEXTS = [" ".join(WORDS[i: i + 2 + i % 5]) for i in range(0, 30)]


@pytest.fixture(scope="module")
def test_file(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """24 rows labelled with the model's own answer for 16 of them, 8 with labels the model never had."""
    predicted = [r["label"] for r in Predictor.load(model_dir).predict(TEXTS)]
    gold = list(predicted[:24])
    gold[0] = next(label for label in LABELS if label != gold[0])  # one known mistake among the known rows
    gold[16:24] = ["oos"] * 5 + ["flight#airfare"] * 3
    path = tmp_path_factory.mktemp("mismatch-data") / "test.csv"
    path.write_text("text,label\n" + "".join(f"{t},{g}\n" for t, g in zip(TEXTS[:24], gold, strict=True)),
                    encoding="utf-8")
    return path, gold


def test_eval_refuses_by_default_with_the_fix(model_dir: Path, test_file: tuple[Path, list[str]]) -> None:
    path, _ = test_file
    with pytest.raises(DataError) as caught:
        fmkit.evaluate(model_dir, path)
    message = str(caught.value)
    assert f"{path}: 2 labels the model was never trained on, on 8 of 24 rows: 'oos' (5 rows)" in message
    assert "--unknown-labels wrong" in message and "--task multilabel" in message


def test_wrong_counts_them_as_errors_and_skip_leaves_them_out(model_dir: Path, test_file: tuple[Path, list[str]]
                                                             ) -> None:
    path, gold = test_file
    wrong = fmkit.evaluate(model_dir, path, unknown_labels="wrong")
    assert wrong["num_examples"] == 24 and wrong["accuracy"] == pytest.approx(15 / 24)
    assert wrong["unknown_labels"] == {
        "policy": "wrong", "rows_in_file": 24, "unknown": {"oos": 5, "flight#airfare": 3}, "unknown_rows": 8,
        "absent": sorted(set(LABELS) - set(gold)), "combined": {"flight#airfare": ["flight", "airfare"]}}
    skip = fmkit.evaluate(model_dir, path, unknown_labels="skip")
    assert skip["num_examples"] == 16 and skip["accuracy"] == pytest.approx(15 / 16)
    assert skip["unknown_labels"]["policy"] == "skip" and skip["unknown_labels"]["unknown_rows"] == 8
    assert sum(v["support"] for v in skip["per_class"].values()) == 16


def test_eval_cli_json_records_the_policy(model_dir: Path, test_file: tuple[Path, list[str]],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = test_file
    assert main(["eval", str(model_dir), "--data", str(path), "--unknown-labels", "skip", "--json",
                 "--runs", str(path.parent / "runs")]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["unknown_labels"]["policy"] == "skip" and metrics["num_examples"] == 16
    assert main(["eval", str(model_dir), "--data", str(path), "--unknown-labels", "wrong",
                 "--runs", str(path.parent / "runs")]) == 0
    out = capsys.readouterr().out
    assert "unknown labels: 2 label(s) the model was never trained on, 8 row(s) counted as errors" in out


def test_skip_with_nothing_left_says_so(model_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "all_unknown.csv"
    path.write_text("text,label\ngood film,oos\nbad film,oos\n", encoding="utf-8")
    with pytest.raises(DataError, match="leaves nothing to score"):
        fmkit.evaluate(model_dir, path, unknown_labels="skip")


# --- doctor --eval ------------------------------------------------------------------------------------------


def test_doctor_lists_labels_missing_on_either_side(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "".join(f"text {i},{LABELS[i % 3]}\n" for i in range(12)), encoding="utf-8")
    evaluation = tmp_path / "eval.csv"
    evaluation.write_text("text,label\nx,flight\ny,flight#airfare\nz,oos\nw,oos\n", encoding="utf-8")
    facts = doctor_data(load_config(None, {"data.train": str(train), "data.eval": str(evaluation)}))
    assert facts["label_sets"] == {"eval_only": {"oos": 2, "flight#airfare": 1}, "eval_only_rows": 3,
                                   "train_only": ["airfare", "ground"],
                                   "combined": {"flight#airfare": ["flight", "airfare"]}}
    (warning,) = [w for w in facts["warnings"] if "never appear" in w]
    assert "'oos' (2 rows)" in warning and "--unknown-labels" in warning and "--task multilabel" in warning
