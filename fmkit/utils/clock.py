"""When the current command started: a time budget covers the whole command, not just training.

The CLI and the public API mark the start on entry (`command_clock()`); a workflow reads it with
`command_started()`. Outside a marked command (a workflow called directly) the start is "now".
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_STARTED: ContextVar[float | None] = ContextVar("fmkit_command_started", default=None)


@contextmanager
def command_clock() -> Iterator[float]:
    """Mark the start of a command (perf_counter seconds) for as long as the block runs.

    An outer mark wins: `fmkit.train` called by the CLI keeps the CLI's earlier start. The mark is
    removed on exit, so a later command in the same process never inherits a stale start.
    """
    outer = _STARTED.get()
    if outer is not None:
        yield outer
        return
    token = _STARTED.set(time.perf_counter())
    try:
        yield _STARTED.get() or 0.0
    finally:
        _STARTED.reset(token)


def command_started() -> float:
    """perf_counter seconds at which the current command started (now when no command marked one)."""
    started = _STARTED.get()
    return time.perf_counter() if started is None else started


__all__ = ["command_clock", "command_started"]
