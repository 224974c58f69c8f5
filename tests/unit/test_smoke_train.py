"""End-to-end through the Python API on a tiny random model: trains, saves, reloads, predicts."""

from __future__ import annotations

import json
from pathlib import Path

import fmkit


def test_train_save_load_predict(tiny_model: Path, sentiment_csv: Path, sentiment_eval_csv: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = fmkit.train(data=str(sentiment_csv), eval=str(sentiment_eval_csv), model=str(tiny_model), epochs=6,
                         output=str(run), **{"train.progress": False, "train.learning_rate": 1e-3, "train.batch_size": 8})
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.9, metrics  # the toy task is separable by single words
    assert set(metrics) >= {"accuracy", "macro_f1", "per_class", "confusion_matrix"}
    assert result.metrics["accuracy"] == metrics["accuracy"]
    for name in ("config.yaml", "history.jsonl", "data.json", "env.json", "model/model.safetensors",
                 "model/head.safetensors", "model/config.json", "model/fmkit.json", "confusion_matrix.png"):
        assert (run / name).exists(), name
    predictor = fmkit.load(run / "model")
    records = predictor.predict(["a great wonderful film", "an awful terrible movie"])
    assert [r["label"] for r in records] == ["pos", "neg"]
    assert abs(sum(records[0]["scores"].values()) - 1) < 1e-4


def test_overwrite_replaces_the_old_runs_curves(tiny_model: Path, sentiment_csv: Path, sentiment_eval_csv: Path,
                                                tmp_path: Path) -> None:
    from fmkit.cli import main

    run = tmp_path / "run"
    common = ["train", "--data", str(sentiment_csv), "--eval", str(sentiment_eval_csv), "--model", str(tiny_model),
              "--output", str(run), "--quiet", "--batch-size", "8"]
    assert main([*common, "--epochs", "2"]) == 0
    first = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert main([*common, "--epochs", "1", "--overwrite"]) == 0
    second = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    main_steps = [r["step"] for r in second if r["kind"] == "eval" and "phase" not in r]
    assert main_steps == [json.loads((run / "metrics.json").read_text())["steps"]]  # one epoch: one evaluation
    assert min(r["time"] for r in second) >= max(r["time"] for r in first)  # nothing of the first run is left
