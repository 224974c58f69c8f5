"""data.long_text end to end on a tiny model (fast): train with chunk, then eval, predict and doctor read the saved
policy without flags; a stride as long as the window is a clean exit 2."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pandas as pd
import pytest

import fmkit
from tests.conftest import run_cli
from tests.integration.test_bad_input import assert_clean_failure

FILLER = ["the", "movie", "film", "plot", "was", "is", "really", "very", "story", "it", "and", "that"]


def write_long_reviews(path: Path, n: int, seed: int) -> Path:
    """Reviews of 20-40 filler words with their two sentiment words at the end: past max_length=16's cut."""
    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        for i in range(n):
            label = "pos" if i % 2 == 0 else "neg"
            ending = rng.sample(["good", "great", "excellent", "love"] if label == "pos" else ["bad", "awful", "hate", "worst"], 2)
            writer.writerow([" ".join(rng.choices(FILLER, k=rng.randint(20, 40)) + ending), label])
    return path


@pytest.fixture(scope="module")
def chunk_run(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("long-text")
    train, evaluation = write_long_reviews(root / "train.csv", 60, 0), write_long_reviews(root / "eval.csv", 20, 1)
    fmkit.train(data=str(train), eval=str(evaluation), model=str(tiny_model), epochs=1, output=str(root / "run"),
                **{"train.progress": False, "strategy.name": "full", "train.batch_size": 16, "data.max_length": 16,
                   "data.long_text": "chunk", "data.chunk_stride": 4, "data.chunk_aggregate": "max"})
    return root / "run", evaluation


def test_chunk_run_records_the_policy_and_its_windows(chunk_run: tuple[Path, Path]) -> None:
    run, _ = chunk_run
    meta = json.loads((run / "model" / "fmkit.json").read_text())
    assert meta["long_text"] == {"mode": "chunk", "stride": 4, "aggregate": "max"}
    data = json.loads((run / "data.json").read_text())["long_text"]
    assert data["eval_chunks"]["texts"] == 20 and data["eval_chunks"]["windows"] > 20
    predictions = [json.loads(line) for line in (run / "eval_predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 20  # one per eval text, not per window
    assert "texts chunked into windows" in (run / "report.html").read_text()


def test_eval_and_predict_apply_the_saved_policy(chunk_run: tuple[Path, Path]) -> None:
    run, evaluation = chunk_run
    proc = run_cli("eval", str(run), "--data", str(evaluation), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert json.loads(proc.stdout)["accuracy"] == pytest.approx(metrics["accuracy"])  # document-level, same both ways
    texts = evaluation.parent / "texts.txt"
    texts.write_text("\n".join(["the plot " * 30 + "awful", "good"]) + "\n", encoding="utf-8")
    proc = run_cli("predict", str(run), str(texts))
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    expected = fmkit.load(run).predict(["the plot " * 30 + "awful", "good"])
    assert [r["scores"] for r in rows] == [r["scores"] for r in expected]


def test_doctor_recommends_a_policy_for_long_texts(chunk_run: tuple[Path, Path], tiny_model: Path) -> None:
    _, evaluation = chunk_run
    proc = run_cli("doctor", "--data", str(evaluation), "--model", str(tiny_model), "--max-length", "16")
    assert "--set data.long_text=chunk" in proc.stdout, proc.stdout + proc.stderr


def test_stride_not_below_max_length_is_a_clean_error(tiny_model: Path, tmp_path: Path) -> None:
    data = write_long_reviews(tmp_path / "train.csv", 10, 0)
    assert_clean_failure(["train", "--data", str(data), "--model", str(tiny_model), "--output", str(tmp_path / "run"),
                          "--set", "data.long_text=chunk", "--set", "data.max_length=32", "--set", "data.chunk_stride=32"],
                         ["data.chunk_stride=32", "data.max_length=32"])
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("strategy", ["linear-probe", "lora"])
def test_other_strategies_train_on_windows_and_score_texts(strategy: str, chunk_run: tuple[Path, Path], tiny_model: Path,
                                                           tmp_path: Path) -> None:
    """The probe fits its logistic head on weighted windows, lora loops over them; both are scored per text."""
    _, evaluation = chunk_run
    train = write_long_reviews(tmp_path / "train.csv", 40, 2)
    result = fmkit.train(data=str(train), eval=str(evaluation), model=str(tiny_model), epochs=1, output=str(tmp_path / "run"),
                         **{"train.progress": False, "strategy.name": strategy, "train.batch_size": 16,
                            "data.max_length": 16, "data.long_text": "chunk", "data.chunk_stride": 4})
    predictor = fmkit.load(tmp_path / "run")
    frame = pd.read_csv(evaluation)
    predicted = [r["label"] for r in predictor.predict(frame["text"].tolist())]
    assert result.metrics["accuracy"] == pytest.approx(float((frame["label"] == pd.Series(predicted)).mean()))
