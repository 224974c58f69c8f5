"""A real (tiny) training run through the CLI is recorded everywhere: registry, TensorBoard, MLflow, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmkit.cli import main
from fmkit.tracking import Registry


@pytest.fixture(scope="module")
def runs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import write_sentiment_csv

    root = tmp_path_factory.mktemp("tracked") / "runs"
    data = write_sentiment_csv(root.parent / "train.csv", n=80)
    common = ["train", "--data", str(data), "--model", str(tiny_model), "--quiet", "--batch-size", "16",
              "--set", "strategy.name=full", "--set", "train.eval_every_steps=5", "--set", "strategy.probe.init=false"]
    assert main([*common, "--output", str(root / "a"), "--epochs", "2", "--tracking", "mlflow"]) == 0
    assert main([*common, "--output", str(root / "b"), "--epochs", "1", "--learning-rate", "0.001"]) == 0
    return root


def test_registry_holds_both_runs_with_curves_and_final_metrics(runs: Path) -> None:
    reg = Registry(runs)
    records = {r.id: r for r in reg.runs()}
    assert set(records) == {"a", "b"}
    a = records["a"]
    assert a.status == "finished" and a.command == "train" and a.task == "classification" and a.strategy == "full"
    metrics = json.loads((runs / "a" / "metrics.json").read_text())
    assert a.headline()["accuracy"] == metrics["accuracy"]
    assert a.config is not None and a.config["train"]["epochs"] == 2
    assert a.data is not None and a.data["train"]["rows"] == 72
    assert a.env is not None and "torch" in a.env["versions"]
    assert a.pid is not None and a.host and a.ended is not None and a.ended >= a.started
    assert "model/" in {x["path"] for x in a.artifacts or []}
    curves = reg.curves("a")
    history = [json.loads(line) for line in (runs / "a" / "history.jsonl").read_text().splitlines()]
    evals = [h for h in history if h["kind"] == "eval"]
    assert [p["value"] for p in curves["eval/eval_accuracy"]] == [h["eval_accuracy"] for h in evals]
    assert [p["step"] for p in curves["eval/eval_accuracy"]] == [h["step"] for h in evals]
    assert [p["epoch"] for p in curves["eval/eval_accuracy"]] == [h["epoch"] for h in evals]


def test_tensorboard_event_files_hold_the_same_curves(runs: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(runs / "a" / "tensorboard"))
    acc.Reload()
    assert "train/loss" in acc.Tags()["scalars"] and "eval/accuracy" in acc.Tags()["scalars"]
    history = [json.loads(line) for line in (runs / "a" / "history.jsonl").read_text().splitlines()]
    evals = [h for h in history if h["kind"] == "eval"]
    events = acc.Scalars("eval/accuracy")
    assert [e.step for e in events] == [h["step"] for h in evals]
    assert [round(e.value, 5) for e in events] == [round(h["eval_accuracy"], 5) for h in evals]


def test_mlflow_backend_recorded_the_run(runs: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{(runs / 'mlflow.db').resolve()}")
    experiment = client.get_experiment_by_name("fmkit")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "a"
    assert run.data.params["train.epochs"] == "2.0" and run.data.params["strategy.name"] == "full"
    metrics = json.loads((runs / "a" / "metrics.json").read_text())
    assert run.data.metrics["final_accuracy"] == pytest.approx(metrics["accuracy"])
    history = client.get_metric_history(run.info.run_id, "eval_accuracy")
    assert len(history) == len([1 for line in (runs / "a" / "history.jsonl").read_text().splitlines()
                                if json.loads(line)["kind"] == "eval"])


def test_report_and_model_card_written_at_the_end(runs: Path) -> None:
    html = (runs / "a" / "report.html").read_text()
    for title in ("Learning curves", "Per-class precision, recall and F1", "Confusion matrix", "Calibration",
                  "Data", "Configuration", "How to use this model"):
        assert f">{title}</h2>" in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    card = (runs / "a" / "MODEL_CARD.md").read_text()
    assert card.startswith("# Model card: a") and "Expected calibration error" in card and "fmkit.load(" in card


def test_runs_cli_ls_show_compare_rm(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "ls", "--runs", str(runs), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert sorted(r["id"] for r in listed) == ["a", "b"]
    assert main(["runs", "ls", "--runs", str(runs)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["run", "cmd", "status"] and len(table) == 4
    assert main(["runs", "show", "a", "--runs", str(runs), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == "a" and "eval/eval_accuracy" in shown["curves"]
    assert main(["runs", "compare", "a", "b", "--runs", str(runs), "--json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert compared["runs"] == ["a", "b"]
    assert compared["config_differences"]["train.epochs"] == ["2.0", "1.0"]
    assert len(compared["metrics"]["accuracy"]) == 2
    assert main(["runs", "show", "nope", "--runs", str(runs)]) == 2
    assert "no run 'nope'" in capsys.readouterr().err


def test_eval_is_recorded_and_rm_removes(runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import write_sentiment_csv

    data = write_sentiment_csv(tmp_path / "test.csv", n=20, seed=3)
    assert main(["eval", str(runs / "b" / "model"), "--data", str(data), "--json"]) == 0
    accuracy = json.loads(capsys.readouterr().out)["accuracy"]
    evals = [r for r in Registry(runs).runs() if r.command == "eval"]
    assert len(evals) == 1 and evals[0].parent == "b" and evals[0].headline()["accuracy"] == accuracy
    assert main(["runs", "rm", evals[0].id, "--runs", str(runs)]) == 0
    assert [r.id for r in Registry(runs).runs() if r.command == "eval"] == []
