"""`fmkit predict` output carries its input; blank lines are skipped and counted; --fields and --format (issue 17 D)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

import fmkit.inference
from fmkit.cli import main


class ByWordPredictor:
    """Labels a text 'pos' when it holds 'good': enough to see which output line belongs to which input."""

    labels = ("neg", "pos")

    def __init__(self) -> None:
        self.seen: list[str] = []

    def predict_stream(self, texts: Iterable[str]) -> Iterator[dict[str, Any]]:
        for text in texts:
            self.seen.append(text)
            p = 0.9 if "good" in text else 0.2
            yield {"label": "pos" if p > 0.5 else "neg", "scores": {"neg": round(1 - p, 6), "pos": p}}


@pytest.fixture
def predictor(monkeypatch: pytest.MonkeyPatch) -> ByWordPredictor:
    fake = ByWordPredictor()
    monkeypatch.setattr(fmkit.inference, "load_predictor", lambda *args, **kwargs: fake)
    return fake


def _predict(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[list[str], str]:
    assert main(["predict", "MODEL", *args]) == 0
    captured = capsys.readouterr()
    return captured.out.splitlines(), captured.err


def test_each_line_carries_its_text_and_blank_lines_are_skipped(
        predictor: ByWordPredictor, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    texts = tmp_path / "new.txt"
    texts.write_text("a good film\n\nan awful film\n   \nreally good\n", encoding="utf-8")
    lines, err = _predict(capsys, str(texts))
    records = [json.loads(line) for line in lines]
    assert [r["text"] for r in records] == ["a good film", "an awful film", "really good"]
    assert [r["label"] for r in records] == ["pos", "neg", "pos"]
    assert all(set(r) == {"text", "label", "scores"} for r in records)  # every earlier key is still there
    assert predictor.seen == ["a good film", "an awful film", "really good"]  # blanks never reach the model
    assert "skipped 2 blank lines" in err


def test_a_table_with_an_id_column_carries_the_id(predictor: ByWordPredictor, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    table = tmp_path / "new.csv"
    table.write_text("id,text\nx7,a good film\nx8,\nx9,awful\n", encoding="utf-8")
    lines, err = _predict(capsys, str(table))
    records = [json.loads(line) for line in lines]
    assert [(r["id"], r["label"]) for r in records] == [("x7", "pos"), ("x9", "neg")]
    assert "text" not in records[0]
    assert "skipped 1 blank row" in err
    named = tmp_path / "named.csv"
    named.write_text("ref,text\nr1,good\nr2,bad\n", encoding="utf-8")
    lines, _ = _predict(capsys, str(named), "--id-column", "ref")
    assert [json.loads(line)["id"] for line in lines] == ["r1", "r2"]
    assert main(["predict", "MODEL", str(named), "--id-column", "nope"]) == 2
    assert "no id column 'nope'" in capsys.readouterr().err


def test_fields_keep_or_leave_out_keys(predictor: ByWordPredictor, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    texts = tmp_path / "new.txt"
    texts.write_text("good\nbad\n", encoding="utf-8")
    lines, _ = _predict(capsys, str(texts), "--fields", "label,text")
    assert [json.loads(line) for line in lines] == [{"label": "pos", "text": "good"}, {"label": "neg", "text": "bad"}]
    lines, _ = _predict(capsys, str(texts), "--fields=-scores")
    assert json.loads(lines[0]) == {"text": "good", "label": "pos"}
    assert main(["predict", "MODEL", str(texts), "--fields", "labels"]) == 2
    assert "no field 'labels'" in capsys.readouterr().err


def test_format_table_prints_label_top_score_and_text(predictor: ByWordPredictor, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    texts = tmp_path / "new_headlines.txt"
    texts.write_text("shares jump on good news\nbank reports a loss\n", encoding="utf-8")
    lines, _ = _predict(capsys, str(texts), "--format", "table")
    assert len(lines) == 2
    assert lines[0].split()[:2] == ["pos", "0.900"] and lines[0].endswith("shares jump on good news")
    assert lines[1].split()[:2] == ["neg", "0.800"] and lines[1].endswith("bank reports a loss")
    out = tmp_path / "predictions.jsonl"
    assert main(["predict", "MODEL", str(texts), "--output", str(out)]) == 0  # a file gets JSON lines
    assert [json.loads(line)["label"] for line in out.read_text(encoding="utf-8").splitlines()] == ["pos", "neg"]
