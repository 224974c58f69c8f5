"""How durations, metric values and strategies read in reports, model cards, the dashboard and `fmkit runs`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from fmkit.evaluation.display import (
    format_duration,
    format_metric,
    phase_title,
    strategy_choice,
    strategy_text,
)


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0, "0 ms"), (0.85, "850 ms"), (0.0004, "0 ms"), (0.9996, "1.0 s"), (1.0, "1.0 s"), (4.24, "4.2 s"),
    (9.96, "10 s"), (42.4, "42 s"), (59.6, "1m 00s"), (60, "1m 00s"), (202.69, "3m 23s"), (3599.4, "59m 59s"),
    (3600, "1h 00m"), (3840, "1h 04m"), (3869, "1h 04m"), (90_000, "25h 00m"),
])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("missing", [None, -1.0, math.nan, math.inf])
def test_format_duration_of_nothing_is_a_dash(missing: float | None) -> None:
    assert format_duration(missing) == "-"


def test_format_metric_shows_seconds_as_durations_and_scores_as_numbers() -> None:
    assert format_metric("train_seconds", 202.69) == "3m 23s"
    assert format_metric("wall_seconds", 0.85) == "850 ms"
    assert format_metric("accuracy", 0.8125) == "0.8125"
    assert format_metric("steps", 1500) == "1,500"


def test_strategy_text_names_what_ran() -> None:
    assert strategy_text("auto", "full") == "auto → full"
    assert strategy_text("full", "full") == "full"
    assert strategy_text("lora", None) == "lora"
    assert strategy_text(None, None) == "-"


def test_strategy_choice_reads_strategy_json(tmp_path: Path) -> None:
    assert strategy_choice(tmp_path) == {}
    (tmp_path / "strategy.json").write_text(json.dumps({"requested": "auto", "strategy": "lora", "reason": "x"}))
    assert strategy_choice(tmp_path)["strategy"] == "lora"
    (tmp_path / "strategy.json").write_text("{not json")
    assert strategy_choice(tmp_path) == {}


def test_phase_title_says_what_the_probe_is() -> None:
    assert phase_title("probe") == "head warm-up (linear probe, before fine-tuning)"
    assert phase_title("pairs") == "pairs"
