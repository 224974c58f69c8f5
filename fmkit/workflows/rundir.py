"""The run directory: same shape for every run.

RUN_DIR/config.yaml  metrics.json  history.jsonl  data.json  env.json  run.json  model/  checkpoints/
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from fmkit.config import RunConfig, load_config
from fmkit.errors import FmkitError
from fmkit.utils.io import atomic_write_json


def default_run_dir(root: Path = Path("runs")) -> Path:
    return root / datetime.now().strftime("%Y%m%d-%H%M%S")


# Run records that accumulate rather than being replaced: a replaced run must not show the old run's curves,
# nor leave checkpoints a later --resume would take for its own.
ACCUMULATING_RECORDS = ("history.jsonl", "checkpoints", "tensorboard")


def prepare_run_dir(path: Path, overwrite: bool) -> Path:
    """Refuse to mix a new run into an existing one unless asked; never delete the old model here.

    With `overwrite`, the old run's accumulating records go now; its model and other files stay until the
    new run replaces each of them atomically (so a run that fails midway still leaves the old model).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FmkitError(f"--output {path} is a file; give a folder for the run.")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        if (path / "config.yaml").is_file():
            raise FmkitError(
                f"{path} already holds a run. Choose another --output, continue it with "
                f"`fmkit train --resume {path}`, or replace it with --overwrite."
            )
        raise FmkitError(f"{path} is not empty. Choose an empty or new folder for --output (or pass --overwrite).")
    if overwrite and (path / "config.yaml").is_file():
        for name in ACCUMULATING_RECORDS:
            target = path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path


class RunStatus:
    """RUN_DIR/run.json: running -> finished | failed | interrupted, with times."""

    def __init__(self, run_dir: Path, command: str) -> None:
        self.path = Path(run_dir) / "run.json"
        self.record: dict[str, Any] = {"command": command, "status": "running", "started": time.time(), "ended": None}
        if self.path.is_file():
            previous = json.loads(self.path.read_text(encoding="utf-8"))
            self.record["started"] = previous.get("started", self.record["started"])
            self.record["resumed"] = previous.get("resumed", 0) + 1
        atomic_write_json(self.path, self.record)
        from fmkit.tracking import RunRecorder

        # The registry row (pid, host, heartbeat) that `fmkit runs` and `fmkit ui` read; see fmkit/tracking.
        self.recorder = RunRecorder(Path(run_dir), command, fresh="resumed" not in self.record)

    def end(self, status: str, **extra: Any) -> None:
        self.record.update(status=status, ended=time.time(), **extra)
        atomic_write_json(self.path, self.record)
        from fmkit.tracking.recorder import close_open_trackers

        close_open_trackers(self.path.parent, status)  # failures too: backends must not stay "running"
        if status == "finished":
            from fmkit.evaluation.report import write_report_safely

            # Every workflow ends here, so every finished run gets report.html + MODEL_CARD.md.
            write_report_safely(self.path.parent)
        self.recorder.end(status, error=extra.get("error"))


def resume_config(run_dir: Path) -> RunConfig:
    if not (run_dir / "config.yaml").is_file():
        raise FmkitError(f"{run_dir}: no config.yaml here, so there is no run to resume.")
    if not (run_dir / "checkpoints" / "last").is_dir():
        raise FmkitError(f"{run_dir}: no checkpoint to resume from (checkpoints/last is missing); start a new run.")
    return load_config(run_dir / "config.yaml")


def run_trackers(run_dir: Path, cfg: RunConfig) -> Any:
    """Every place a run reports to. Workflows call this instead of building trackers themselves."""
    from fmkit.tracking.recorder import build_trackers, remember_trackers
    from fmkit.training.tracking import HistoryFile, Trackers

    trackers = Trackers(HistoryFile(run_dir / "history.jsonl"),
                        *build_trackers(run_dir, cfg.track, cfg.model_dump(mode="json")))
    return remember_trackers(run_dir, trackers)
