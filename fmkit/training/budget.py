"""A time budget the training loop keeps: a deadline for the whole command and the rule that stops in time.

The loop asks `StepBudget.should_stop()` before every optimizer step. The rule is a projection from what
this run has measured so far, re-measured as it goes (so a machine that slows down half way, because a
second job started, shortens the run instead of overrunning it):

    now + next step + one evaluation + one checkpoint + after-loop reserve  >  deadline   ->  stop

where the next step is the running time per step (the recent window, or the last step if it was slower),
the evaluation and checkpoint are the ones last timed (scaled up if steps have become slower since), and
the reserve is what the caller still does once the loop returns (its final evaluation, saving the model,
the report), given as `AfterLoop` in units of those same measurements. Until an evaluation has been
timed its cost is estimated from the data size, in training steps (`eval_steps_estimate`).
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

# A forward pass costs about a third of forward + backward; a half leaves room for evaluating in fp32
# what trains in bf16.
FORWARD_SHARE = 0.5
# Until the first checkpoint is timed: a conservative local-disk rate for safetensors + optimizer state.
CHECKPOINT_BYTES_PER_S = 200e6
# After-loop work that no measurement covers: report files, confusion PNG, interpreter exit.
AFTER_LOOP_FIXED_S = 2.0
STEP_WINDOW = 8  # steps in the running time per step: short enough to notice a slowdown within seconds


@dataclass(frozen=True)
class Deadline:
    """When the whole command must be done: `budget_s` after `started`, both on `clock` (seconds)."""

    started: float
    budget_s: float
    clock: Callable[[], float] = time.perf_counter

    @property
    def at(self) -> float:
        return self.started + self.budget_s

    def elapsed(self) -> float:
        return self.clock() - self.started

    def remaining(self) -> float:
        return self.at - self.clock()


@dataclass(frozen=True)
class AfterLoop:
    """What the caller still does once the loop returns, which the deadline must leave room for."""

    evaluations: float = 1.0  # full evaluations, each as long as the loop's last timed one
    steps: float = 0.0        # other work in units of one training step (e.g. embedding every text)
    saves: float = 1.0        # model writes, each about as long as the loop's checkpoint
    seconds: float = AFTER_LOOP_FIXED_S


def checkpoint_estimate_s(parameters: int, trainable: int) -> float:
    """Seconds to write the first checkpoint, before one is timed: fp32 weights (best and last) plus
    Adam's two moments of every trainable weight."""
    return 4 * (2 * parameters + 2 * trainable) / CHECKPOINT_BYTES_PER_S


class StepBudget:
    """The stop rule (see the module docstring) and the record of what it cut."""

    def __init__(self, deadline: Deadline, *, eval_steps_estimate: float, checkpoint_s_estimate: float,
                 after: AfterLoop | None = None, window: int = STEP_WINDOW) -> None:
        self.deadline = deadline
        self.clock = deadline.clock
        self.eval_steps_estimate = eval_steps_estimate
        self.checkpoint_s_estimate = checkpoint_s_estimate
        self.after = after or AfterLoop()
        self._recent: deque[float] = deque(maxlen=window)
        self._all: list[float] = []
        self._mark = self.clock()  # when the step being timed began (evaluations and checkpoints shift it)
        self._eval_s: float | None = None
        self._eval_step_s = 0.0  # the running step time when the evaluation was timed
        self._checkpoint_s: float | None = None  # the longest round of checkpoint writes between two steps
        self._round_s = 0.0
        self.stop_reason: str | None = None
        self.loop_ended_at_s: float | None = None  # seconds into the command when the cut loop returned

    # --- measurements ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start timing the first step (call when the loop is about to run it)."""
        self._mark = self.clock()

    def step_done(self) -> None:
        now = self.clock()
        seconds = max(0.0, now - self._mark)
        self._recent.append(seconds)
        self._all.append(seconds)
        self._mark = now
        self._round_s = 0.0

    @contextmanager
    def measure(self, kind: Literal["eval", "checkpoint"]) -> Iterator[None]:
        """Time an evaluation or a checkpoint; the time is kept out of the running step time."""
        start = self.clock()
        try:
            yield
        finally:
            seconds = max(0.0, self.clock() - start)
            self._mark += seconds
            if kind == "eval":
                self._eval_s, self._eval_step_s = seconds, self.typical_step_seconds() or 0.0
            else:  # best weights and resumable state are written one after the other: one round
                self._round_s += seconds
                self._checkpoint_s = max(self._round_s, self._checkpoint_s or 0.0)

    # --- estimates ------------------------------------------------------------------------------
    def step_seconds(self) -> float | None:
        """The next step's expected time: the recent mean, or the last step when that was slower."""
        if not self._recent:
            return None
        return max(statistics.fmean(self._recent), self._recent[-1])

    def typical_step_seconds(self) -> float | None:
        """The median of the recent steps: a slowdown that lasts moves it within a few steps, one stalled step
        (a page fault storm, another process's burst) does not."""
        return statistics.median(self._recent) if self._recent else None

    def eval_seconds(self) -> float:
        step = self.typical_step_seconds() or 0.0
        if self._eval_s is None:
            return self.eval_steps_estimate * step
        if self._eval_step_s <= 0 and self._all:
            # Timed before any step (auto's evaluation of the start): the steps that followed it are the pace
            # it ran at. Without this a machine that slowed down later never slowed the evaluations' estimate,
            # and a loaded run overran its budget by a fifth (banking77, 200 s, 2026-12-06).
            self._eval_step_s = statistics.median(self._all[:STEP_WINDOW])
        # What slows the steps slows evaluations too. Scaled by the typical step, not the last one: scaled by
        # one stalled step, a 6 s evaluation looked like 80 s and a LoRA run stopped with a third of its budget
        # unused (banking77, 200 s budget, 2026-12-06).
        slowdown = step / self._eval_step_s if self._eval_step_s > 0 else 1.0
        return self._eval_s * max(1.0, slowdown)

    def checkpoint_seconds(self) -> float:
        return self.checkpoint_s_estimate if self._checkpoint_s is None else self._checkpoint_s

    def reserve_seconds(self) -> float:
        """The caller's work after the loop."""
        after = self.after
        return (after.evaluations * self.eval_seconds() + after.steps * (self.step_seconds() or 0.0)
                + after.saves * self.checkpoint_seconds() + after.seconds)

    def projected_end(self) -> float:
        """Clock time at which the command would end if the loop took one more step, then stopped."""
        step = self.step_seconds() or 0.0
        return self.clock() + step + self.eval_seconds() + self.checkpoint_seconds() + self.reserve_seconds()

    # --- the rule -------------------------------------------------------------------------------
    def should_stop(self) -> bool:
        if self.step_seconds() is None:
            # Nothing measured yet: take the first step unless the time is already gone.
            return self.deadline.remaining() <= self.after.seconds
        return self.projected_end() > self.deadline.at

    def stop(self, steps: int, planned_steps: int) -> str:
        self.stop_reason = f"time budget: {steps} of {planned_steps} planned steps"
        self.loop_ended_at_s = round(self.deadline.elapsed(), 2)
        return self.stop_reason

    def record(self, steps: int, planned_steps: int, steps_per_epoch: int, stop_reason: str) -> dict[str, Any]:
        """What the budget allowed and what it cut, with the throughput it measured (for strategy.json)."""
        first = self._all[: self._recent.maxlen or STEP_WINDOW]
        return {
            "budget_s": self.deadline.budget_s,
            "planned_steps": planned_steps,
            "planned_epochs": round(planned_steps / steps_per_epoch, 3),
            "steps": steps,
            "epochs": round(steps / steps_per_epoch, 3),
            "cut": self.stop_reason is not None,
            "stop_reason": stop_reason,  # the budget's, or early stopping's, or the plan done
            "loop_ended_at_s": self.loop_ended_at_s,
            "step_seconds": {
                "first_steps": round(statistics.fmean(first), 4) if first else None,
                "last_steps": round(statistics.fmean(self._recent), 4) if self._recent else None,
                "mean": round(statistics.fmean(self._all), 4) if self._all else None,
            },
            "eval_seconds": round(self.eval_seconds(), 3),
            "checkpoint_seconds": round(self.checkpoint_seconds(), 3),
            "reserve_seconds": round(self.reserve_seconds(), 3),
        }


__all__ = ["AfterLoop", "Deadline", "StepBudget", "checkpoint_estimate_s"]
