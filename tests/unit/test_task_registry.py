"""The task registry: every entry's parts exist, and a new task plugs in with one registration."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fmkit.config import load_config
from fmkit.config.tasks import TASKS, TaskSpec, register_task, resolve, task_spec
from fmkit.errors import ConfigError


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_part_a_task_names_exists(name: str) -> None:
    spec = TASKS[name]
    for target in (spec.workflow, spec.predictor, spec.routes, spec.evaluate, spec.result_printer, spec.eval_printer):
        if target is not None:
            assert callable(resolve(target)), target
    if spec.report is not None:
        importlib.import_module(spec.report)
    assert spec.primary_metric in spec.metrics and set(spec.lower_is_better) <= set(spec.metrics)
    assert spec.strategies, name
    assert load_config(None, {"task.type": name}).eval.primary_metric == spec.primary_metric


def test_unknown_names_are_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"unknown task 'multilabels'\. Did you mean 'multilabel'"):
        task_spec("multilabels")
    with pytest.raises(ConfigError, match="--task ner trains with --strategy full or lora, not 'zeroshot'"):
        task_spec("ner").check_strategy("zeroshot")


# --- a task added from outside fmkit: one registration, and train / load / serve find it ------------------------

CALLS: list[str] = []


def echo_train(cfg: Any, *, resume_dir: Path | None = None, overwrite: bool = False) -> str:
    CALLS.append(f"train {cfg.task.type} {cfg.eval.primary_metric}")
    return "trained"


class EchoPredictor:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def load(cls, path: Path, batch_size: int = 64) -> EchoPredictor:
        return cls(Path(path))

    def predict(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        return [{"echo": text[::-1]} for text in texts]

    def predict_stream(self, texts: Any) -> Iterator[dict[str, Any]]:
        yield from self.predict(list(texts))


@pytest.fixture
def echo_task() -> Iterator[TaskSpec]:
    spec = register_task(TaskSpec(
        name="echo", summary="reverses texts", workflow="tests.unit.test_task_registry:echo_train",
        predictor="tests.unit.test_task_registry:EchoPredictor", strategies=("full",), primary_metric="closeness",
        metrics=("closeness",), routes="fmkit.inference.server:prediction_routes",
    ))
    yield spec
    del TASKS["echo"]


@pytest.mark.usefixtures("echo_task")
def test_a_registered_task_trains_loads_and_serves(tmp_path: Path) -> None:
    from fmkit.inference import load_predictor
    from fmkit.inference.server import create_app
    from fmkit.workflows import train_for_task

    assert train_for_task(load_config(None, {"task.type": "echo"})) == "trained"
    assert CALLS[-1] == "train echo closeness"  # its own primary metric became the default
    (tmp_path / "fmkit.json").write_text(json.dumps({"task": "echo"}), encoding="utf-8")
    predictor = load_predictor(tmp_path)
    assert isinstance(predictor, EchoPredictor)
    with TestClient(create_app(predictor)) as client:
        answer = client.post("/v1/predict", json={"texts": ["abc", "xy"]})
        assert answer.status_code == 200 and answer.json()["predictions"] == [{"echo": "cba"}, {"echo": "yx"}]
