"""`fmkit eval` on a file with labels the model never saw, and a bad --target-precision: exit 2, one line that
names the labels, the rows and the fix, nothing saved touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmkit.models.backbone import load_tokenizer
from fmkit.models.classifier import TextClassifier
from tests.conftest import write_sentiment_csv
from tests.integration.test_bad_input import assert_clean_failure, train_args


@pytest.fixture(scope="module")
def saved_model(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("mismatch-cli") / "run"
    TextClassifier.from_backbone(tiny_model, ["neg", "pos"], max_length=32).save_pretrained(
        run / "model", load_tokenizer(tiny_model))
    return run


def test_eval_names_unknown_and_combined_labels_and_the_flags(saved_model: Path, tmp_path: Path) -> None:
    data = tmp_path / "test.csv"
    data.write_text("text,label\ngood film,pos\nodd film,meh\nfine bad film,pos#neg\nso so,meh\n", encoding="utf-8")
    assert_clean_failure(["eval", str(saved_model), "--data", str(data)],
                         [str(data), "2 labels the model was never trained on, on 3 of 4 rows", "'meh' (2 rows)",
                          "--unknown-labels wrong", "--unknown-labels skip", "'pos#neg' combines", "--task multilabel"],
                         saved_model)


def test_target_precision_outside_0_1(saved_model: Path, tiny_model: Path, tmp_path: Path) -> None:
    data = write_sentiment_csv(tmp_path / "train.csv", n=40)
    assert_clean_failure(train_args(data, saved_model, tiny_model, "--target-precision", "1.5"),
                         ["target_precision"], saved_model)
