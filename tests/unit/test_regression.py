"""--task regression: data checks, the ridge head, metrics, and train -> eval -> predict -> serve on a tiny model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from fmkit.data.tasks.regression import TargetScaling, read_scored, validate_scored
from fmkit.errors import DataError
from fmkit.evaluation.metrics import regression_metrics
from fmkit.training.logistic import fit_ridge_regression

POS = ["good", "great", "excellent", "love", "wonderful", "best"]
NEG = ["bad", "awful", "terrible", "hate", "worst", "poor"]
FILLER = ["the", "movie", "film", "plot", "was", "is", "story", "it"]


def sentence(rng: random.Random, n_pos: int, n_neg: int) -> str:
    words = rng.sample(FILLER, 3) + rng.sample(POS, n_pos) + rng.sample(NEG, n_neg)
    rng.shuffle(words)
    return " ".join(words)


def write_scores(path: Path, n: int, seed: int, pairs: bool = False) -> Path:
    """Single texts: score = positive words - negative words. Pairs: the two texts' positive words added."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        for _ in range(n):
            p, q = rng.randint(0, 3), rng.randint(0, 3)
            if pairs:
                row = {"sentence1": sentence(rng, p, 0), "sentence2": sentence(rng, q, 0), "score": p + q}
            else:
                row = {"text": sentence(rng, p, q), "score": p - q}
            fh.write(json.dumps(row) + "\n")
    return path


# --- data ---------------------------------------------------------------------------------------------------

def test_pairs_are_found_by_column_names_and_by_flag(tmp_path: Path) -> None:
    data = read_scored(write_scores(tmp_path / "p.jsonl", 20, 0, pairs=True))
    assert data.columns == ("sentence1", "sentence2") and data.target_column == "score"
    assert data.pairs is not None and len(data.pairs) == 20
    flagged = read_scored(tmp_path / "p.jsonl", "sentence2,sentence1", "score")
    assert flagged.texts == data.pairs and flagged.pairs == data.texts


@pytest.mark.parametrize(("rows", "fragments"), [
    ([("a", "1"), ("b", "high"), ("c", "2")], ["row 2", "'high'", "not a number", "--task classification"]),
    ([("a", "1"), ("b", "2"), ("c", "")], ["row 3", "missing or infinite"]),
    ([("a", "1"), ("b", "inf"), ("c", "2")], ["row 2", "missing or infinite"]),
])
def test_bad_targets_name_the_row(tmp_path: Path, rows: list[tuple[str, str]], fragments: list[str]) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("text,score\n" + "".join(f"{t},{s}\n" for t, s in rows), encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_scored(path)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_a_constant_target_is_refused_and_few_values_warn(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("text,score\n" + "".join(f"text {i},3\n" for i in range(12)), encoding="utf-8")
    with pytest.raises(DataError, match="every target is 3"):
        validate_scored(read_scored(path), None)
    path.write_text("text,score\n" + "".join(f"text {i},{i % 2}\n" for i in range(12)), encoding="utf-8")
    warnings = validate_scored(read_scored(path), None)
    assert len(warnings) == 1 and "--task classification fits better" in warnings[0]


def test_a_missing_second_column_lists_the_columns(tmp_path: Path) -> None:
    path = write_scores(tmp_path / "p.jsonl", 12, 0, pairs=True)
    with pytest.raises(DataError, match=r"no text column 'hypothesis'\. Columns present: sentence1, sentence2, score"):
        read_scored(path, "sentence1,hypothesis")


def test_target_scaling_round_trips() -> None:
    targets = np.array([0.0, 2.0, 4.0])
    scaling = TargetScaling.fit(targets)
    assert scaling.scale(targets).tolist() == pytest.approx([-1.2247449, 0.0, 1.2247449])
    assert scaling.unscale(scaling.scale(targets)).tolist() == pytest.approx(targets.tolist(), abs=1e-6)  # float32


# --- head and metrics ---------------------------------------------------------------------------------------

def test_ridge_recovers_a_linear_target_and_shrinks_noise() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(400, 16, generator=gen)
    true_w = torch.randn(16, generator=gen)
    fit = fit_ridge_regression(x, x @ true_w + 3.0)
    assert torch.allclose(fit.weight.reshape(-1), true_w, atol=1e-2) and abs(float(fit.bias[0]) - 3.0) < 1e-2
    # Pure noise: leave-one-out error picks the strongest penalty, so the weights are near zero.
    noise = fit_ridge_regression(torch.randn(40, 64, generator=gen), torch.randn(40, generator=gen))
    assert float(noise.weight.abs().max()) < 0.05


def test_regression_metrics_exact() -> None:
    m = regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 2.5, 5.0]))
    assert m["rmse"] == pytest.approx(np.sqrt((0.25 + 0 + 0.25 + 1) / 4))
    assert m["mae"] == pytest.approx(0.5)
    assert m["spearman"] == pytest.approx(1.0)
    assert m["r2"] == pytest.approx(1 - 1.5 / 5.0)
    assert regression_metrics(np.array([1.0, 2.0]), np.array([3.0, 3.0]))["spearman"] == 0.0  # constant: no NaN


# --- end to end on a tiny random BERT -------------------------------------------------------------------------

def train_args(tiny_model: Path, data: Path, run: Path, *extra: str) -> list[str]:
    return ["train", "--task", "regression", "--data", str(data), "--model", str(tiny_model), "--output", str(run),
            "--quiet", "--batch-size", "8", "--learning-rate", "1e-3", *extra]


def test_train_eval_predict_serve_single_texts(tiny_model: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from fmkit.cli import main
    from fmkit.inference import load_predictor
    from fmkit.inference.server import create_app

    data = write_scores(tmp_path / "train.jsonl", 200, 0)
    held_out = write_scores(tmp_path / "eval.jsonl", 60, 1)
    run = tmp_path / "run"
    assert main(train_args(tiny_model, data, run, "--eval", str(held_out), "--epochs", "6", "--strategy", "full")) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["spearman"] > 0.8, metrics  # a word count: learnable by a tiny model
    assert metrics["rmse"] < 0.8 * metrics["target"]["std"], metrics  # beats always predicting the mean
    meta = json.loads((run / "model" / "fmkit.json").read_text())
    assert meta["task"] == "regression" and meta["target"]["name"] == "score" and meta["pair_input"] is False
    rows = [json.loads(line) for line in (run / "eval_predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 60 and set(rows[0]) == {"text", "target", "predicted"}

    # fmkit eval reproduces the run's final metrics exactly: they were measured on the saved model.
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(held_out), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["spearman"] == pytest.approx(metrics["spearman"], abs=1e-6)
    import fmkit

    assert fmkit.evaluate(run, held_out)["spearman"] == pytest.approx(metrics["spearman"], abs=1e-6)  # the API too

    predictor = load_predictor(run)
    texts = [json.loads(line)["text"] for line in held_out.read_text().splitlines()[:3]]
    values = [r["value"] for r in predictor.predict(texts)]
    assert values == pytest.approx([rows[i]["predicted"] for i in range(3)], abs=1e-4)
    with TestClient(create_app(predictor)) as client:
        answer = client.post("/v1/predict", json={"texts": texts})
        assert answer.status_code == 200
        assert [p["value"] for p in answer.json()["predictions"]] == pytest.approx(values, abs=1e-5)
        refused = client.post("/v1/predict", json={"pairs": [["a", "b"]]})
        assert refused.status_code == 422 and "texts" in refused.json()["error"]  # says what it reads


def test_pairs_train_predict_and_serve(tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fmkit.cli import main
    from fmkit.inference import load_predictor
    from fmkit.inference.server import create_app

    data = write_scores(tmp_path / "pairs.jsonl", 200, 2, pairs=True)
    run = tmp_path / "run"
    assert main(train_args(tiny_model, data, run, "--epochs", "6", "--strategy", "full")) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["spearman"] > 0.7, metrics
    assert metrics["pair_encoding"] == "cross"  # auto: the tiny model is no sentence-embedding model
    predictor = load_predictor(run)
    assert predictor.pair_input and predictor.text_columns == ["sentence1", "sentence2"]
    rows = [json.loads(line) for line in data.read_text().splitlines()[:4]]
    pairs = [(r["sentence1"], r["sentence2"]) for r in rows]
    values = [r["value"] for r in predictor.predict_pairs(pairs)]
    # The order of the two texts matters to a cross-encoder, and batching does not change an answer.
    assert [r["value"] for r in predictor.predict_pairs(pairs[:1])] == pytest.approx(values[:1], abs=1e-5)

    capsys.readouterr()
    assert main(["predict", str(run), str(data), "--format", "jsonl"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(printed) == 200 and set(printed[0]) == {"text", "text_pair", "value"}
    assert [p["value"] for p in printed[:4]] == pytest.approx(values, abs=1e-5)

    with TestClient(create_app(predictor)) as client:
        answer = client.post("/v1/predict", json={"pairs": [list(p) for p in pairs]})
        assert answer.status_code == 200
        assert [p["value"] for p in answer.json()["predictions"]] == pytest.approx(values, abs=1e-5)
        assert client.post("/v1/predict", json={"texts": ["a"]}).status_code == 422
        assert client.post("/v1/predict", json={"pairs": [["a"]]}).status_code == 422
        bad = client.post("/v1/predict", content=json.dumps({"pairs": [["fine", "ok"], ["fine", "\ud800"]]}).encode(),
                          headers={"content-type": "application/json"})
        assert bad.status_code == 422 and "pairs[1][1]" in bad.json()["error"], bad.json()


def test_lower_is_better_metric_keeps_the_smallest(tiny_model: Path, tmp_path: Path) -> None:
    from fmkit.cli import main

    data = write_scores(tmp_path / "train.jsonl", 120, 3)
    run = tmp_path / "run"
    assert main(train_args(tiny_model, data, run, "--epochs", "4", "--strategy", "full",
                           "--set", "eval.primary_metric=rmse", "--set", "train.eval_every_steps=5",
                           "--set", "train.early_stopping_patience=0", "--set", "strategy.probe.init=false")) == 0
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    evals = [r for r in history if r["kind"] == "eval" and "phase" not in r]
    assert len(evals) >= 4
    best = min(evals, key=lambda r: r["eval_rmse"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["best_step"] == best["step"]
    assert metrics["rmse"] == pytest.approx(best["eval_rmse"], rel=1e-4)


def test_regression_linear_probe_and_unknown_strategy(tiny_model: Path, tmp_path: Path) -> None:
    from fmkit.cli import main

    data = write_scores(tmp_path / "train.jsonl", 120, 4)
    run = tmp_path / "run"
    assert main(train_args(tiny_model, data, run, "--strategy", "linear-probe")) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["strategy"] == "linear-probe" and np.isfinite(metrics["rmse"])
    assert main(train_args(tiny_model, data, tmp_path / "other", "--strategy", "zeroshot")) == 2
    assert not (tmp_path / "other").exists()


def test_pairs_as_a_bi_encoder(tiny_model: Path, tmp_path: Path) -> None:
    """task.pair_encoding=bi: each text embedded alone, the value from their cosine; predict reproduces the run."""
    from fmkit.cli import main
    from fmkit.inference import load_predictor

    data = write_scores(tmp_path / "pairs.jsonl", 160, 5, pairs=True)
    held_out = write_scores(tmp_path / "eval.jsonl", 40, 6, pairs=True)
    run = tmp_path / "run"
    assert main(train_args(tiny_model, data, run, "--eval", str(held_out), "--epochs", "2",
                           "--set", "task.pair_encoding=bi")) == 0
    meta = json.loads((run / "model" / "fmkit.json").read_text())
    assert meta["pair_encoding"] == "bi" and "pair_sep_id" not in meta
    low, high = meta["cosine_range"]["low"], meta["cosine_range"]["high"]
    assert (low, high) == (0.0, 6.0)
    rows = [json.loads(line) for line in (run / "eval_predictions.jsonl").read_text().splitlines()]
    predictor = load_predictor(run)
    values = [r["value"] for r in predictor.predict_pairs([(r["text"], r["text_pair"]) for r in rows[:5]])]
    assert values == pytest.approx([r["predicted"] for r in rows[:5]], abs=1e-4)
    assert all(low - (high - low) - 1e-6 <= v <= high + 1e-6 for v in values)  # low + (high - low) * cos
    assert main(train_args(tiny_model, data, tmp_path / "lora", "--strategy", "lora",
                           "--set", "task.pair_encoding=bi")) == 2


def test_doctor_reads_each_task_its_own_way(tiny_model: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from fmkit.cli import main
    from tests.unit.test_multilabel import write_tagged

    pairs = write_scores(tmp_path / "p.jsonl", 30, 0, pairs=True)
    capsys.readouterr()
    assert main(["doctor", "--task", "regression", "--data", str(pairs), "--model", str(tiny_model), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    target = facts["train"]["target"]
    assert facts["task"] == "regression" and target["name"] == "score" and target["min"] >= 0 and target["max"] <= 6
    assert facts["train"]["columns"] == ["sentence1", "sentence2"] and facts["tokens"]["max"] > 10  # both texts
    tagged = write_tagged(tmp_path / "t.jsonl", 30, 0)
    assert main(["doctor", "--task", "multilabel", "--data", str(tagged), "--model", str(tiny_model)]) == 0
    printed = capsys.readouterr().out
    assert "label counts (train):" in printed and "labels per text (train):" in printed and printed.endswith("ok\n")


@pytest.mark.parametrize(("epoch_s", "strategy", "cut"), [(1000.0, "full", True), (1e6, "linear-probe", False),
                                                          (1.0, "full", False)])
def test_auto_plans_full_within_the_budget_from_the_probe_start(
        tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, epoch_s: float, strategy: str,
        cut: bool) -> None:
    """A regression (or multi-label) run under auto on a 10-minute budget, full's cost fixed here: about half
    an epoch fits (10 + 0.55 x 1000 + 2 x 5 s + the seconds loading took <= 600 s), none fits (the probe alone),
    or all of it."""
    from fmkit.cli import main
    from fmkit.workflows import auto

    monkeypatch.setattr(auto, "full_cost", lambda ctx, rate: auto.FullCost(fixed_s=10.0, epoch_s=epoch_s, eval_s=5.0))
    data = write_scores(tmp_path / "train.jsonl", 120, 4)
    run = tmp_path / "run"
    assert main(train_args(tiny_model, data, run, "--time-budget", "10m", "--epochs", "2")) == 0
    record = json.loads((run / "strategy.json").read_text())
    assert record["requested"] == "auto" and record["strategy"] == strategy, record
    assert record["time_budget_s"] == 600.0
    planned = record.get("planned_epochs")
    assert (0.25 <= planned <= 0.55) if cut else planned is None, record
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["strategy"] == strategy
    if strategy == "full":
        evals = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
        first = next(e for e in evals if e.get("kind") == "eval" and e.get("phase") in (None, "train"))
        assert first["step"] == 0  # the probe-initialised start, evaluated before any step
