"""Where the loop reports: a small Tracker protocol and the run's own history file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Protocol


class Tracker(Protocol):
    def log(self, step: int, metrics: dict[str, float], kind: str) -> None:
        """Record metrics at an optimizer step; kind is 'train' or 'eval'."""

    def close(self, status: str) -> None:
        """Finish the run with a status: finished, failed or interrupted."""


class HistoryFile:
    """Appends one JSON line per log call to RUN_DIR/history.jsonl (flushed: survives a kill)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run

    def log(self, step: int, metrics: dict[str, float], kind: str) -> None:
        record: dict[str, Any] = {"kind": kind, "step": step, "time": round(time.time(), 3), **metrics}
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()

    def close(self, status: str) -> None:
        if not self._fh.closed:
            self._fh.close()

    def rewind(self, step: int) -> None:
        """Forget records after `step`: a resumed run repeats the steps after its last checkpoint."""
        self._fh.close()
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue  # a line cut short by the kill
        from fmkit.utils.io import atomic_write_text

        atomic_write_text(self.path, "".join(f"{line}\n" for line in kept))
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run


class Trackers:
    """Fan out to several trackers."""

    def __init__(self, *trackers: Tracker) -> None:
        self.trackers = list(trackers)

    def log(self, step: int, metrics: dict[str, float], kind: str) -> None:
        for tracker in self.trackers:
            tracker.log(step, metrics, kind)

    def close(self, status: str) -> None:
        for tracker in self.trackers:
            tracker.close(status)

    def rewind(self, step: int) -> None:
        """Tell trackers that keep a local history that the run resumed at `step` (others need nothing)."""
        for tracker in self.trackers:
            rewind = getattr(tracker, "rewind", None)
            if rewind is not None:
                rewind(step)


class PhaseTracker:
    """Tags every record with the phase, so history.jsonl tells a run's phases (probe, pairs, head warm-up, main) apart."""

    def __init__(self, tracker: Tracker, phase: str) -> None:
        self.tracker, self.phase = tracker, phase

    def log(self, step: int, metrics: dict[str, Any], kind: str) -> None:
        tagged: dict[str, Any] = {**metrics, "phase": self.phase}
        self.tracker.log(step, tagged, kind)

    def close(self, status: str) -> None:
        pass  # the run's own tracker is closed once, by the workflow
