"""`--time-budget` is a budget: the loop's stop rule on a fake clock, and a tiny-model run that it cuts.

No real timing anywhere: every clock here is a counter the test advances, so each run is the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

import fmkit
from fmkit.training.budget import AfterLoop, Deadline, StepBudget
from fmkit.utils import clock as clock_module
from fmkit.utils.clock import command_clock, command_started
from fmkit.workflows import classification, objectives, strategy_runs
from fmkit.workflows.auto import DataStats, decide

FAST: dict[str, Any] = {"train.progress": False, "train.batch_size": 8, "train.learning_rate": 1e-3, "train.threads": 1}


class FakeClock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- the stop rule alone ----------------------------------------------------------------------------

def simulate(step_cost: Any, budget_s: float = 300.0, spent_s: float = 20.0, eval_every: int = 50,
             eval_cost: float = 6.0, checkpoint_cost: float = 0.5, planned: int = 1000,
             evaluate_first: bool = False) -> dict[str, float]:
    """Drive StepBudget exactly as the loop does; `step_cost(step)` says how long each step takes and an
    evaluation costs `eval_cost` x the slowdown. Returns when the command really ended, all work done."""
    clock = FakeClock()
    deadline = Deadline(started=0.0, budget_s=budget_s, clock=clock)
    clock.advance(spent_s)  # loading, tokenizing, the probe head: already gone when the loop starts
    after = AfterLoop(evaluations=1, saves=1, seconds=2.0)
    budget = StepBudget(deadline, eval_steps_estimate=3.0, checkpoint_s_estimate=1.0, after=after)

    def evaluate_and_checkpoint(step: int) -> None:
        with budget.measure("eval"):
            clock.advance(eval_cost * step_cost(step) / step_cost(0))
        with budget.measure("checkpoint"):
            clock.advance(checkpoint_cost)

    budget.start()
    step, last_eval = 0, None
    if evaluate_first:  # auto's anytime plan evaluates the start, before any step is timed
        evaluate_and_checkpoint(0)
        last_eval = 0
    while step < planned and not budget.should_stop():
        clock.advance(step_cost(step))
        budget.step_done()
        step += 1
        if step % eval_every == 0:
            evaluate_and_checkpoint(step)
            last_eval = step
    if last_eval != step:
        evaluate_and_checkpoint(step)  # the final evaluation the loop runs at a budget stop
    # After the loop: the workflow's own evaluation, the model written, the report.
    clock.advance(eval_cost * step_cost(step) / step_cost(0) + checkpoint_cost + after.seconds)
    return {"steps": step, "end": clock.now, "deadline": deadline.at}


def test_stop_rule_keeps_the_deadline_when_the_machine_slows_down_half_way() -> None:
    steady = simulate(lambda step: 0.5)
    # A second job starts at step 210: every step (and evaluation) now takes three times as long.
    slowed = simulate(lambda step: 0.5 if step < 210 else 1.5)
    for run in (steady, slowed):
        assert run["end"] <= run["deadline"], run
        # Not wastefully early either: what is left would not have paid for one more slow step and evaluation.
        assert run["deadline"] - run["end"] < 1.5 + 3 * 6.0, run
    assert 210 < slowed["steps"] < steady["steps"] < 1000  # the slowdown shortened the run instead of overrunning


def test_a_slowdown_after_an_evaluation_of_the_start_still_keeps_the_deadline() -> None:
    """The start evaluated before any step (auto's anytime plan), then a second job makes everything 6x slower:
    the evaluations' estimate must follow the slowdown too, or the final evaluations overrun the budget."""
    run = simulate(lambda step: 0.3 if step < 200 else 1.8, budget_s=200.0, eval_every=313, evaluate_first=True,
                   eval_cost=5.0)
    assert run["end"] <= run["deadline"], run


def test_one_stalled_step_does_not_end_the_run_early() -> None:
    """A single 10 s step among 0.5 s ones is not a slowdown: the run goes on to use its budget."""
    steady = simulate(lambda step: 0.5)
    stalled = simulate(lambda step: 10.0 if step == 310 else 0.5)
    assert stalled["end"] <= stalled["deadline"]
    assert stalled["steps"] >= steady["steps"] - 25, (stalled, steady)  # 10 s is 19 steps' worth, plus rounding


def test_nothing_measured_yet_takes_a_first_step_unless_the_time_is_already_gone() -> None:
    clock = FakeClock()
    budget = StepBudget(Deadline(0.0, 10.0, clock), eval_steps_estimate=1.0, checkpoint_s_estimate=0.1)
    assert not budget.should_stop()
    clock.advance(9.0)  # less than the after-loop reserve is left
    assert budget.should_stop()


def test_evaluation_cost_follows_a_slowdown_and_the_estimate_comes_from_the_data_size() -> None:
    clock = FakeClock()
    budget = StepBudget(Deadline(0.0, 100.0, clock), eval_steps_estimate=4.0, checkpoint_s_estimate=0.1)
    budget.start()
    clock.advance(0.5)
    budget.step_done()
    assert budget.eval_seconds() == pytest.approx(2.0)  # not timed yet: 4 steps' worth
    with budget.measure("eval"):
        clock.advance(3.0)
    assert budget.eval_seconds() == pytest.approx(3.0)
    for _ in range(8):  # steps twice as slow: the next evaluation will be too
        clock.advance(1.0)
        budget.step_done()
    assert budget.eval_seconds() == pytest.approx(6.0)
    assert budget.step_seconds() == pytest.approx(1.0)  # evaluation time is not step time


# --- auto and the command's clock -------------------------------------------------------------------

def test_auto_counts_what_the_command_already_spent() -> None:
    estimates = {"zeroshot": 3.0, "linear-probe": 20.0, "fewshot": 90.0, "lora": 500.0, "full": 560.0}
    assert decide(DataStats.balanced(500), estimates, 600)[0] == "full"
    name, reason, _ = decide(DataStats.balanced(500), estimates, 600, spent_s=70)
    assert name == "lora" and "530s left after 70s" in reason


def test_command_clock_marks_the_start_once_and_forgets_it() -> None:
    with command_clock() as outer, command_clock() as inner:  # fmkit.train under the CLI keeps the CLI's start
        assert inner == outer == command_started()
    assert clock_module._STARTED.get() is None  # no stale start for the next command


# --- a tiny-model run the budget cuts ---------------------------------------------------------------

@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FMKIT_CACHE_DIR", str(tmp_path / "cache"))


def fake_timed_run(monkeypatch: pytest.MonkeyPatch, step_cost: Any, eval_cost: float) -> FakeClock:
    """Make the workflow's deadline run on a fake clock that each training step and evaluation advance."""
    clock = FakeClock()
    monkeypatch.setattr(classification, "Deadline",
                        lambda started, budget_s: Deadline(clock(), budget_s, clock))
    real_loss, real_evaluator = objectives.classification_loss, strategy_runs.text_evaluator
    steps = [0]

    def slow_loss(*args: Any) -> torch.Tensor:
        clock.advance(step_cost(steps[0]))
        steps[0] += 1
        return real_loss(*args)

    def slow_evaluator(ctx: Any) -> Any:
        evaluate = real_evaluator(ctx)

        def timed(model: torch.nn.Module) -> dict[str, Any]:
            clock.advance(eval_cost)
            return evaluate(model)

        return timed

    monkeypatch.setattr(objectives, "classification_loss", slow_loss)  # every text step's loss goes through it
    monkeypatch.setattr(strategy_runs, "text_evaluator", slow_evaluator)
    return clock


def train_full(tmp_path: Path, tiny_model: Path, train_csv: Path, eval_csv: Path, budget: str) -> Path:
    out = tmp_path / "run"
    fmkit.train(data=str(train_csv), eval=str(eval_csv), model=str(tiny_model), output=str(out),
                **{**FAST, "strategy.name": "full", "strategy.time_budget": budget, "strategy.probe.init": False,
                   "train.epochs": 50, "train.early_stopping_patience": 0})
    return out


def test_full_run_stops_in_time_keeps_the_best_weights_and_says_what_was_cut(
        tiny_model: Path, sentiment_csv: Path, sentiment_eval_csv: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # 120 rows / 8 a batch: 15 steps an epoch, 750 planned; a second job triples the step time at step 40.
    fake_timed_run(monkeypatch, lambda step: 1.0 if step < 40 else 3.0, eval_cost=4.0)
    out = train_full(tmp_path, tiny_model, sentiment_csv, sentiment_eval_csv, "150s")

    record = json.loads((out / "strategy.json").read_text())["budget"]
    assert record["planned_steps"] == 750 and record["planned_epochs"] == 50
    assert 40 < record["steps"] < 750 and record["cut"]
    assert record["stop_reason"] == f"time budget: {record['steps']} of 750 planned steps"
    assert record["step_seconds"]["first_steps"] == pytest.approx(1.0)
    assert record["step_seconds"]["last_steps"] == pytest.approx(3.0)
    assert record["examples_per_second"] > 0 and record["wall_seconds"] > 0
    # The loop ended leaving room for what comes after it: the projected end is within the budget.
    assert record["loop_ended_at_s"] + record["reserve_seconds"] <= 150

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == record["steps"] and metrics["stop_reason"] == record["stop_reason"]
    assert metrics["budget"]["cut"]
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    stops = [r for r in history if r["kind"] == "stop"]
    assert len(stops) == 1 and stops[0]["steps"] == record["steps"] and stops[0]["planned_steps"] == 750
    evals = [r for r in history if r["kind"] == "eval"]
    assert evals[-1]["step"] == record["steps"]  # the steps since the last scheduled evaluation were evaluated
    # Exactly as early stopping: the saved model is the best evaluated checkpoint.
    best = load_file(str(out / "checkpoints/best/model.safetensors"))
    saved = {f"encoder.{k}": v for k, v in load_file(str(out / "model/model.safetensors")).items()}
    saved |= {f"head.{k}": v for k, v in load_file(str(out / "model/head.safetensors")).items()}
    assert saved.keys() <= best.keys() and all(torch.equal(best[k], v) for k, v in saved.items())
    assert metrics["best_step"] == json.loads((out / "checkpoints/best/best.json").read_text())["step"]


def test_a_budget_gone_before_the_first_evaluation_still_saves_an_evaluated_model(
        tiny_model: Path, sentiment_csv: Path, sentiment_eval_csv: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_timed_run(monkeypatch, lambda step: 1.0, eval_cost=2.0)
    out = train_full(tmp_path, tiny_model, sentiment_csv, sentiment_eval_csv, "12s")  # first evaluation due at 15
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 < metrics["steps"] < 15
    assert metrics["best_step"] == metrics["steps"]  # the current weights were evaluated at the stop
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in history if r["kind"] == "eval"] == [metrics["steps"]]


def test_auto_has_a_default_budget_and_none_lifts_it() -> None:
    from fmkit.config.load import load_config
    from fmkit.errors import ConfigError
    from fmkit.workflows.auto import DEFAULT_AUTO_BUDGET, parse_duration, run_budget

    assert run_budget(load_config().strategy) == (parse_duration(DEFAULT_AUTO_BUDGET), True)  # auto, unset
    assert run_budget(load_config(overrides={"strategy.time_budget": "none"}).strategy) == (None, False)
    assert run_budget(load_config(overrides={"strategy.time_budget": "None"}).strategy) == (None, False)
    assert run_budget(load_config(overrides={"strategy.time_budget": "90s"}).strategy) == (90.0, False)
    # A strategy named explicitly is the recipe the user asked for: no limit unless one is given.
    assert run_budget(load_config(overrides={"strategy.name": "full"}).strategy) == (None, False)
    with pytest.raises(ConfigError, match="time_budget"):
        load_config(overrides={"strategy.time_budget": "nonsense"})


def test_the_default_budget_is_said_at_the_start(tiny_model: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from fmkit.cli import main
    from tests.conftest import write_sentiment_csv

    data = write_sentiment_csv(tmp_path / "train.csv", n=40)
    assert main(["train", "--data", str(data), "--model", str(tiny_model), "--output", str(tmp_path / "run"),
                 "--quiet", "--epochs", "1", "--set", "train.threads=1"]) == 0
    assert "10m time budget by default" in capsys.readouterr().err
    record = json.loads((tmp_path / "run" / "strategy.json").read_text())
    assert record["time_budget_s"] == 600.0
    assert main(["train", "--data", str(data), "--model", str(tiny_model), "--output", str(tmp_path / "run2"),
                 "--quiet", "--epochs", "1", "--time-budget", "none", "--set", "train.threads=1"]) == 0
    assert "time budget by default" not in capsys.readouterr().err
    assert json.loads((tmp_path / "run2" / "strategy.json").read_text())["time_budget_s"] is None
