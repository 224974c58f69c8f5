"""fmkit.utils.progress: exact plain lines off a terminal, a bar on one, nothing when off (fake clock throughout)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from fmkit.utils.progress import Progress, format_duration, in_chunks, map_in_chunks


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _progress_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FMKIT_PROGRESS", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)


def plain(total: int | None = 16_000, **kwargs: object) -> tuple[Progress, FakeClock, io.StringIO]:
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress("encode train", total=total, unit="texts", stream=stream, is_terminal=False, clock=clock,
                        **kwargs)  # type: ignore[arg-type]
    return progress, clock, stream


def test_plain_lines_at_quarters_and_every_interval_with_rate_and_eta() -> None:
    progress, clock, stream = plain()
    for _ in range(160):  # 100 texts every 0.4717 s: 212 texts/s, 75 s in all
        clock.now += 0.4717
        progress.update(100)
    progress.close()
    assert stream.getvalue().splitlines() == [
        "encode train: 2,200/16,000 texts (13%), 212 texts/s, ETA 1m05s",  # 10 s without a line
        "encode train: 4,000/16,000 texts (25%), 212 texts/s, ETA 57s",
        "encode train: 6,200/16,000 texts (38%), 212 texts/s, ETA 46s",
        "encode train: 8,000/16,000 texts (50%), 212 texts/s, ETA 38s",
        "encode train: 10,200/16,000 texts (63%), 212 texts/s, ETA 27s",
        "encode train: 12,000/16,000 texts (75%), 212 texts/s, ETA 19s",
        "encode train: 14,200/16,000 texts (88%), 212 texts/s, ETA 8s",
        "encode train: 16,000/16,000 texts (100%), 212 texts/s, in 1m15s",
    ]


def test_a_short_phase_prints_one_final_line_not_four_quarters() -> None:
    progress, clock, stream = plain(total=40)
    for _ in range(4):
        clock.now += 0.05
        progress.update(10)
    progress.close()
    assert stream.getvalue().splitlines() == ["encode train: 40/40 texts (100%), 200 texts/s, in 0s"]


def test_unknown_total_counts_and_a_final_line_on_close() -> None:
    progress, clock, stream = plain(total=None)
    progress.status("hnsw")
    for _ in range(3):
        clock.now += 6.0
        progress.update(1_000)
    progress.close()
    progress.close()  # closing twice says nothing more
    assert stream.getvalue().splitlines() == [
        "encode train: 2,000 texts, hnsw, 167 texts/s",
        "encode train: 3,000 texts, hnsw, 167 texts/s, in 18s",
    ]


def test_resumed_progress_measures_only_new_work_and_skips_passed_quarters() -> None:
    progress, clock, stream = plain(total=100, initial=60)
    clock.now += 2.0
    progress.update(10)  # 70%: no quarter crossed since 60%, no 10 s passed
    clock.now += 2.0
    progress.update(10)  # 80%: crossed 75%
    assert stream.getvalue().splitlines() == ["encode train: 80/100 texts (80%), 5.0 texts/s, ETA 4s"]


def test_write_and_note_are_their_own_lines() -> None:
    progress, _, stream = plain()
    progress.note("16,000 texts from the vector cache")
    progress.write("step 10: accuracy=0.9000 (best)")
    progress.close()  # nothing was counted: no count line
    assert stream.getvalue().splitlines() == ["encode train: 16,000 texts from the vector cache",
                                              "step 10: accuracy=0.9000 (best)"]


def test_a_failed_phase_gets_no_summary_line() -> None:
    progress, clock, stream = plain()
    with pytest.raises(RuntimeError), progress:
        clock.now += 0.1
        progress.update(100)
        raise RuntimeError("boom")
    assert stream.getvalue() == ""


@pytest.mark.parametrize("terminal", [True, False])
def test_disabled_prints_nothing_at_all(terminal: bool) -> None:
    stream = io.StringIO()
    with Progress("train", total=10, stream=stream, is_terminal=terminal, enabled=False) as progress:
        progress.update(10)
        progress.status("loss 0.1")
        progress.note("from the cache")
        progress.write("step 10: accuracy=1")
    assert stream.getvalue() == ""


@pytest.mark.parametrize(("env", "value"), [("FMKIT_PROGRESS", "0"), ("FMKIT_PROGRESS", "off"), ("RANK", "1")])
def test_environment_turns_progress_off(monkeypatch: pytest.MonkeyPatch, env: str, value: str) -> None:
    monkeypatch.setenv(env, value)
    progress, _, stream = plain(total=10)
    progress.update(10)
    progress.note("x")
    assert stream.getvalue() == ""


def test_terminal_draws_a_bar_without_plain_lines() -> None:
    clock, stream = FakeClock(), io.StringIO()
    with Progress("train", total=4, unit="steps", stream=stream, is_terminal=True, clock=clock) as progress:
        progress.status("loss 0.5000")
        for _ in range(4):
            progress.update(1)
    out = stream.getvalue()
    assert "\r" in out and "4/4" in out and "loss 0.5000" in out
    assert "ETA" not in out and "(100%)" not in out  # the plain-line format is not used on a terminal


def test_terminal_phase_that_never_advances_leaves_no_empty_bar() -> None:
    stream = io.StringIO()
    with Progress("encode train", total=10, stream=stream, is_terminal=True) as progress:
        progress.note("10 texts from the vector cache")
    assert stream.getvalue() == "encode train: 10 texts from the vector cache\n"


def test_in_chunks_counts_each_slice_after_it_is_used() -> None:
    progress, _, _ = plain(total=5)
    seen = []
    for block in in_chunks(list("abcde"), progress, size=2):
        seen.append((list(block), progress.done))
    assert seen == [(["a", "b"], 0), (["c", "d"], 2), (["e"], 4)] and progress.done == 5


def test_map_in_chunks_joins_the_blocks_in_order_and_reports_the_phase(capsys: pytest.CaptureFixture[str]) -> None:
    calls = []

    def embed(block: list[int]) -> np.ndarray:
        calls.append(len(block))
        return np.asarray([[x, -x] for x in block], dtype=np.float32)

    out = map_in_chunks(embed, list(range(7)), "embed FAQ", size=3)
    assert calls == [3, 3, 1] and out.tolist() == [[x, -x] for x in range(7)]
    assert capsys.readouterr().err.startswith("embed FAQ: 7/7 texts (100%), ")
    empty = map_in_chunks(lambda block: np.zeros((len(block), 4)), [], "embed FAQ")
    assert empty.shape == (0, 4) and capsys.readouterr().err == ""


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "0s"), (57, "57s"), (185, "3m05s"), (7620, "2h07m")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
