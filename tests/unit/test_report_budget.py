"""The report's "Time budget" section of an auto run: metric against wall time, and what other budgets buy."""

from __future__ import annotations

import json
from pathlib import Path

from fmkit.evaluation.report import RunFiles, time_budget_section


def write_run(folder: Path, strategy: dict[str, object]) -> Path:
    folder.mkdir()
    (folder / "config.yaml").write_text("eval:\n  primary_metric: accuracy\n", encoding="utf-8")
    (folder / "run.json").write_text(json.dumps({"started": 1000.0, "ended": 1118.0}), encoding="utf-8")
    (folder / "strategy.json").write_text(json.dumps(strategy), encoding="utf-8")
    history = [{"kind": "eval", "time": 1010.0, "phase": "probe", "eval_accuracy": 0.5},
               {"kind": "eval", "time": 1030.0, "eval_accuracy": 0.81},
               {"kind": "train", "time": 1050.0, "loss": 0.4},
               {"kind": "eval", "time": 1110.0, "eval_accuracy": 0.9}]
    (folder / "history.jsonl").write_text("\n".join(json.dumps(r) for r in history) + "\n", encoding="utf-8")
    return folder


def test_an_auto_run_on_a_budget_shows_its_metric_against_time_and_the_other_budgets(tmp_path: Path) -> None:
    by_budget = [{"budget_s": 120.0, "strategy": "full", "epochs": 0.5, "estimated_s": 118.0},
                 {"budget_s": 600.0, "strategy": "full", "epochs": 3, "estimated_s": 460.0}]
    run = RunFiles.load(write_run(tmp_path / "run", {"requested": "auto", "strategy": "full", "reason": "why",
                                                    "time_budget_s": 120.0, "by_budget": by_budget}))
    section = time_budget_section(run)
    assert section is not None and section.title == "Time budget"
    # The probe phase's evaluation is left out; times count from the run's start.
    assert "Evaluations (seconds since the start, accuracy): 30s 0.8100, 110s 0.9000" in section.markdown
    assert "Time budget 120s, the command ended at 118s; why" in section.markdown
    assert "| 2 min | full | 0.5 | 118s |" in section.markdown and "| 10 min | full | 3 | 460s |" in section.markdown
    assert "<svg" in section.html


def test_a_run_without_a_budget_or_auto_has_no_such_section(tmp_path: Path) -> None:
    run = RunFiles.load(write_run(tmp_path / "run", {"requested": "full", "strategy": "full"}))
    assert time_budget_section(run) is None
