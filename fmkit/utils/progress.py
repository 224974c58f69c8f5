"""Progress of every phase that can take more than a few seconds, readable on a terminal and in a log alike.

    with Progress("encode train", total=len(texts), unit="texts", enabled=cfg.train.progress) as progress:
        for batch in batches:
            ...
            progress.update(len(batch))

On a terminal (the stream is a tty) this is a tqdm bar. Anywhere else (CI logs, `nohup`, a pipe into a file) a bar
is an unreadable stream of carriage returns, so plain lines are printed instead, at a bounded rate: every
`interval` seconds, when a quarter (25/50/75%) is crossed, and once at the end:

    encode train: 4,000/16,000 texts (25%), 212 texts/s, ETA 57s
    encode train: 16,000/16,000 texts (100%), 212 texts/s, in 1m15s

Disabled (`--quiet`, `train.progress: false`, FMKIT_PROGRESS=0, or a data-parallel worker other than rank 0) it
prints nothing at all. The clock and the is-a-terminal decision can be injected, so the lines are testable exactly.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import IO, Any, TypeVar

import numpy as np

T = TypeVar("T")

DEFAULT_INTERVAL_S = 10.0
QUARTERS = (0.25, 0.5, 0.75)
# A quarter line only when this long has passed since the previous line: a phase of half a second would
# otherwise print four lines that say nothing a single final line does not.
MIN_QUARTER_GAP_S = 1.0
_OFF_VALUES = {"0", "false", "no", "off"}


def progress_allowed() -> bool:
    """False for FMKIT_PROGRESS=0 (any environment: a cron job, a notebook) and for data-parallel workers
    other than rank 0, which would only repeat the main process's lines."""
    if os.environ.get("FMKIT_PROGRESS", "").strip().lower() in _OFF_VALUES:
        return False
    return os.environ.get("RANK", "0") in ("", "0") and os.environ.get("LOCAL_RANK", "0") in ("", "0")


def format_duration(seconds: float) -> str:
    """57s, 3m05s, 2h07m: short enough for a log line, exact enough to plan around."""
    total = max(0, round(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_rate(per_second: float, unit: str) -> str:
    return f"{per_second:,.1f} {unit}/s" if per_second < 10 else f"{per_second:,.0f} {unit}/s"


def _is_tty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or exotic stream: no bar
        return False


class Progress:
    """`update(n)`, `status(...)`, `note(msg)`, `write(msg)`, `close()`; also a context manager."""

    def __init__(self, desc: str, total: int | None = None, unit: str = "items", *, initial: int = 0,
                 enabled: bool = True, stream: IO[str] | None = None, is_terminal: bool | None = None,
                 clock: Callable[[], float] = time.monotonic, interval: float = DEFAULT_INTERVAL_S) -> None:
        self.desc, self.total, self.unit = desc, total, unit
        self.enabled = enabled and progress_allowed()
        self.stream: IO[str] = stream if stream is not None else sys.stderr
        self.terminal = _is_tty(self.stream) if is_terminal is None else is_terminal
        self.clock, self.interval = clock, interval
        self.done = self._first = self._last_line_done = initial
        self._start = self._last_line_at = clock()
        self._next_quarter = sum(1 for q in QUARTERS if self.total and initial >= q * self.total)
        self._status = ""
        self._bar: Any = None  # created at the first update: a phase that never advances leaves no empty bar
        self._closed = False

    # -- what the caller reports ------------------------------------------------------------------
    def update(self, n: int = 1) -> None:
        if not self.enabled or self._closed:
            return
        self.done += n
        if self.terminal:
            self._terminal_bar().update(n)
            return
        now = self.clock()
        if self._line_due(now):
            self._print_line(now)

    def status(self, *parts: str) -> None:
        """Extra facts for the next line or the bar, e.g. status("epoch 0.36", "loss 0.4213", "512 examples/s")."""
        self._status = ", ".join(parts)
        if self.enabled and self._bar is not None:
            self._bar.set_postfix_str(self._status, refresh=False)

    def write(self, message: str) -> None:
        """One line of its own (an evaluation result, a note), above the bar on a terminal."""
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def note(self, message: str) -> None:
        """A line about this phase that is not a count, e.g. note("16,000 texts from the vector cache")."""
        self.write(f"{self.desc}: {message}")

    def close(self) -> None:
        """The final line (plain mode) if the last one printed is not already up to date."""
        if self._closed:
            return
        self._closed = True
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        elif not self.terminal and self.done != self._last_line_done:
            self._print_line(self.clock(), final=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None and not self.terminal:
            self._closed = True  # a phase that failed gets its error, not a summary line saying it finished
            return
        self.close()

    # -- plain lines ------------------------------------------------------------------------------
    def _line_due(self, now: float) -> bool:
        if self.total and self.done >= self.total:
            return True  # the 100% line, printed once (close() prints nothing more)
        if now - self._last_line_at >= self.interval:
            return True
        crossed = False
        while self.total and self._next_quarter < len(QUARTERS) and \
                self.done >= QUARTERS[self._next_quarter] * self.total:
            self._next_quarter += 1  # passed even when too soon to print: no "25%" line at 40% later
            crossed = True
        return crossed and now - self._last_line_at >= MIN_QUARTER_GAP_S

    def line(self, now: float, final: bool = False) -> str:
        """The plain line for the current count, e.g. `encode train: 4,000/16,000 texts (25%), 212 texts/s, ETA 57s`."""
        if self.total:
            parts = [f"{self.desc}: {self.done:,}/{self.total:,} {self.unit} "
                     f"({math.floor(100 * self.done / self.total)}%)"]
        else:
            parts = [f"{self.desc}: {self.done:,} {self.unit}"]
        if self._status:
            parts.append(self._status)
        elapsed = now - self._start
        rate = (self.done - self._first) / elapsed if elapsed > 0 else None
        if rate is not None:
            parts.append(format_rate(rate, self.unit))
        finished = final or bool(self.total and self.done >= self.total)
        if finished:
            parts.append(f"in {format_duration(elapsed)}")
        elif self.total and rate:
            parts.append(f"ETA {format_duration((self.total - self.done) / rate)}")
        return ", ".join(parts)

    def _print_line(self, now: float, final: bool = False) -> None:
        print(self.line(now, final), file=self.stream, flush=True)
        self._last_line_at, self._last_line_done = now, self.done

    def _terminal_bar(self) -> Any:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, initial=self._first, desc=self.desc, unit=f" {self.unit}",
                             file=self.stream, dynamic_ncols=True)
            if self._status:
                self._bar.set_postfix_str(self._status, refresh=False)
        return self._bar


def in_chunks(items: Sequence[T], progress: Progress, size: int = 512) -> Iterator[Sequence[T]]:
    """`items` in slices of `size`, counting each one into `progress` once the caller is done with it."""
    for start in range(0, len(items), size):
        block = items[start:start + size]
        yield block
        progress.update(len(block))


def map_in_chunks(fn: Callable[[Sequence[T]], Any], items: Sequence[T], desc: str, unit: str = "texts",
                  size: int = 256) -> np.ndarray:
    """`fn` (a list -> an array with one row per item) over `items` in slices of `size`, with a progress line
    named `desc`; the blocks joined in order.

    For phases that call a model on a list (embedding an FAQ or a catalogue, verifying an export) and would
    otherwise be silent for minutes on a large input."""
    if not items:
        return np.asarray(fn(items))  # the callee knows the shape of "nothing" (e.g. (0, dim))
    blocks: list[np.ndarray] = []
    with Progress(desc, total=len(items), unit=unit) as progress:
        for block in in_chunks(items, progress, size):
            blocks.append(np.asarray(fn(block)))
    return np.concatenate(blocks, axis=0)


__all__ = ["Progress", "format_duration", "format_rate", "in_chunks", "map_in_chunks", "progress_allowed"]
