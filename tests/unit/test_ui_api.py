"""The dashboard's read-only API: what ran (not `auto`), durations as text, the playground's best run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from fmkit.ui.app import best_model, create_app
from tests.run_helpers import fake_run


def test_runs_show_the_strategy_that_ran_and_formatted_times(tmp_path: Path) -> None:
    fake_run(tmp_path, "auto-run", requested="auto", ran="lora", took=3840)
    fake_run(tmp_path, "asked-full", requested="full", ran="full", took=202.69)
    client = TestClient(create_app(tmp_path))
    runs = {r["id"]: r for r in client.get("/api/runs").json()["runs"]}
    assert runs["auto-run"]["strategy"] == "lora" and runs["auto-run"]["strategy_text"] == "auto → lora"
    assert runs["asked-full"]["strategy_text"] == "full"
    assert runs["auto-run"]["duration_text"] == "1h 04m" and runs["asked-full"]["duration_text"] == "3m 23s"
    assert runs["auto-run"]["metrics_text"]["train_seconds"] == "3m 23s"
    assert runs["auto-run"]["metrics_text"]["wall_seconds"] == "850 ms"
    assert runs["auto-run"]["metrics_text"]["steps"] == "30"  # a count, not 30.0000
    detail = client.get("/api/run", params={"id": "auto-run"}).json()
    assert detail["strategy_text"] == "auto → lora" and detail["final_metrics_text"]["train_seconds"] == "3m 23s"


def test_models_name_the_best_run_by_its_primary_metric(tmp_path: Path) -> None:
    fake_run(tmp_path, "good", metrics={"macro_f1": 0.9, "accuracy": 0.5}, with_model=True)
    fake_run(tmp_path, "better-accuracy", metrics={"macro_f1": 0.6, "accuracy": 0.99}, with_model=True)
    fake_run(tmp_path, "no-model", metrics={"macro_f1": 0.99})
    body = TestClient(create_app(tmp_path)).get("/api/models").json()
    assert sorted(m["id"] for m in body["models"]) == ["better-accuracy", "good"]
    assert body["best"] == "good"  # primary_metric is macro_f1 in both configs


def test_best_model_prefers_lower_perplexity_and_survives_runs_without_metrics() -> None:
    models: list[dict[str, Any]] = [{"id": "a", "primary_metric": "perplexity", "metrics": {"perplexity": 30.0}},
              {"id": "b", "primary_metric": "perplexity", "metrics": {"perplexity": 12.0}},
              {"id": "c", "primary_metric": None, "metrics": {}}]
    assert best_model(models) == "b"
    assert best_model([{"id": "only", "primary_metric": None, "metrics": {}}]) == "only"
    assert best_model([]) is None


def test_guarded_inputs_answer_4xx_not_500(tmp_path: Path) -> None:
    # Each of these was a 500 before: a NUL byte reached the OS, a lone surrogate reached the tokenizer,
    # Latin-1 bytes reached the JSON decoder.
    fake_run(tmp_path, "tiny", with_model=True)
    client = TestClient(create_app(tmp_path))
    assert client.get("/static/index.html%00.js").status_code == 404
    assert client.get("/static/..%2findex.html").status_code == 404
    surrogate = client.post("/api/predict", content=b'{"run": "tiny", "texts": ["ok", "\\ud800"]}',
                            headers={"content-type": "application/json"})
    assert surrogate.status_code == 422 and "texts[1]" in surrogate.text and "surrogate" in surrogate.text
    latin1 = client.post("/api/predict", content=b'{"run": "tiny", "texts": ["caf\xe9"]}',
                         headers={"content-type": "application/json"})
    assert latin1.status_code == 422 and "UTF-8" in latin1.text


def test_runs_cli_shows_what_the_dashboard_shows(tmp_path: Path, capsys: Any) -> None:
    from fmkit.cli import main

    fake_run(tmp_path, "auto-run", requested="auto", ran="lora", took=3840)
    fake_run(tmp_path, "asked-full", requested="full", ran="full", took=202.69)
    assert main(["runs", "ls", "--runs", str(tmp_path)]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "auto → lora" in rows["auto-run"] and "1h 04m" in rows["auto-run"]
    assert "3m 23s" in rows["asked-full"] and " 0.8667" in rows["asked-full"]
    assert main(["runs", "show", "auto-run", "--runs", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "strategy auto → lora" in shown and "took 1h 04m" in shown
    assert "train_seconds                3m 23s" in shown and "steps                        30\n" in shown
    assert main(["runs", "compare", "auto-run", "asked-full", "--runs", str(tmp_path)]) == 0
    compared = capsys.readouterr().out
    assert "auto → lora" in compared and "850 ms" in compared
