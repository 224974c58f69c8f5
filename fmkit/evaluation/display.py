"""How run facts are shown to people: durations, metric values, the strategy that ran, phase names.

The one place these are formatted: report.html, MODEL_CARD.md, the dashboard API (which sends the text
it shows) and `fmkit runs` all call these functions, so a duration reads `3m 22s` everywhere.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

# Metrics whose values are seconds (shown as durations, not as `202.6900`).
DURATION_SUFFIXES = ("_seconds", "_secs")

# What a strategy's phase is, for chart titles (history.jsonl and the registry tag records with the phase).
PHASE_TITLES = {"probe": "head warm-up (linear probe, before fine-tuning)"}


def format_duration(seconds: float | None) -> str:
    """`850 ms`, `4.2 s`, `42 s`, `3m 22s`, `1h 04m`; `-` for a missing or impossible value."""
    if seconds is None or isinstance(seconds, bool) or not math.isfinite(seconds) or seconds < 0:
        return "-"
    if seconds < 1:
        return f"{round(seconds * 1000)} ms" if seconds < 0.9995 else "1.0 s"
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    minutes = round(seconds / 60)  # hours and minutes: seconds no longer matter
    return f"{minutes // 60}h {minutes % 60:02d}m"


def is_duration_metric(name: str) -> bool:
    return name.endswith(DURATION_SUFFIXES)


def format_number(value: Any) -> str:
    """Metric-style numbers: 4 decimals for scores, thousands separators for counts and large values."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def format_metric(name: str, value: Any) -> str:
    """A metric value as a table cell shows it: durations for `*_seconds`, numbers otherwise."""
    if is_duration_metric(name) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format_duration(float(value))
    return format_number(value)


def phase_title(phase: str) -> str:
    """`probe` -> `head warm-up (linear probe, before fine-tuning)`; other phases by their own name."""
    return PHASE_TITLES.get(phase, phase)


def strategy_choice(run_dir: Path | str | None) -> dict[str, Any]:
    """RUN_DIR/strategy.json (what was asked for, what ran and why), or {} when there is none."""
    if not run_dir:
        return {}
    try:
        record = json.loads((Path(run_dir) / "strategy.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def strategies(recorded: str | None, final_metrics: dict[str, Any] | None,
               run_dir: Path | str | None) -> tuple[str | None, str | None]:
    """(requested, ran): the registry stores the configured name (`auto`); strategy.json and the final
    metrics say what ran. The dashboard and `fmkit runs` both show this pair."""
    choice = strategy_choice(run_dir)
    ran = (final_metrics or {}).get("strategy") or choice.get("strategy")
    requested = choice.get("requested") or recorded
    return requested, str(ran) if ran else requested


def strategy_text(requested: str | None, ran: str | None) -> str:
    """`auto -> full` when a choice was made, `full` when it was asked for, `-` when unknown."""
    if ran and requested and requested != ran:
        return f"{requested} → {ran}"
    return ran or requested or "-"
