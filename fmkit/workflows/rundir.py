"""The run directory: same shape for every run.

RUN_DIR/config.yaml  metrics.json  history.jsonl  data.json  env.json  run.json  model/  checkpoints/  ...
RUN_LAYOUT below names them all; RUN_DIR/.fmkit-run marks a folder fmkit created.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from fmkit.config import RunConfig, load_config
from fmkit.errors import FmkitError
from fmkit.utils.io import atomic_write_json


@dataclass
class RunResult:
    """What every task's `train()` returns: where the run is, its metrics.json, and the warnings it printed."""

    run_dir: Path
    metrics: dict[str, Any]
    warnings: list[str]


def default_run_dir(root: Path = Path("runs")) -> Path:
    return root / datetime.now().strftime("%Y%m%d-%H%M%S")


# What fmkit writes at the top of a run directory: the ONE list that `--overwrite` and `fmkit runs rm --files`
# go by, so neither ever touches a file fmkit did not write (a user's notes beside the run stay).
RUN_MARKER = ".fmkit-run"
RUN_FILES = (
    RUN_MARKER, "config.yaml", "run.json", "data.json", "env.json", "history.jsonl", "metrics.json", "strategy.json",
    "report.html", "MODEL_CARD.md", "classification_report.txt", "ner_report.txt", "confusion_matrix.csv",
    "confusion_matrix.png", "eval_predictions.jsonl", "samples.txt", "samples.jsonl",
)
RUN_FOLDERS = ("model", "checkpoints", "tensorboard", "adapters")
RUN_LAYOUT = frozenset(RUN_FILES + RUN_FOLDERS)
# The temporary siblings of atomic writes (utils/io.py): `.NAME.<random>.tmp` and `.NAME.old-<pid>`.
_ATOMIC_SUFFIX = re.compile(r"(?:\.tmp|\.old-\d+)$")

# Run records that accumulate rather than being replaced: a replaced run must not show the old run's curves,
# nor leave checkpoints a later --resume would take for its own.
ACCUMULATING_RECORDS = ("history.jsonl", "checkpoints", "tensorboard")


def written_by_fmkit(name: str) -> bool:
    """Whether a top-level entry of a run directory is part of the run layout (or a leftover of writing one)."""
    if name in RUN_LAYOUT:
        return True
    return bool(_ATOMIC_SUFFIX.search(name)) and any(name.startswith(f".{own}.") for own in RUN_LAYOUT)


def is_fmkit_run(path: Path) -> bool:
    """A folder fmkit created as a run: it has the marker, or (runs of fmkit before the marker) a run.json and
    config.yaml that fmkit wrote."""
    path = Path(path)
    if (path / RUN_MARKER).is_file():
        return True
    try:
        status = json.loads((path / "run.json").read_text(encoding="utf-8"))
        config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return False
    # RunStatus always writes command/status/started; write_config always writes the model and train sections.
    return (isinstance(status, dict) and {"command", "status", "started"} <= status.keys()
            and isinstance(config, dict) and {"model", "train"} <= config.keys())


def _marker() -> dict[str, Any]:
    from fmkit import __version__

    return {"created_by": "fmkit", "fmkit_version": __version__, "created": time.time()}


def _create_run_dir(path: Path) -> None:
    """Create `path` with its marker in one rename, so no run directory ever exists without one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        atomic_write_json(tmp / RUN_MARKER, _marker())
        os.rename(tmp, path)  # replaces an empty folder made meanwhile; refuses a non-empty one
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not path.is_dir() or any(path.iterdir()):
            raise FmkitError(f"{path}: cannot create the run directory there; choose another --output.") from None
        atomic_write_json(path / RUN_MARKER, _marker())


def remove_entry(path: Path) -> None:
    """Delete one file or folder of a run (a link goes, never what it points to)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def prepare_run_dir(path: Path, overwrite: bool) -> Path:
    """Refuse to mix a new run into an existing one unless asked; never delete the old model here.

    Only a folder fmkit created is ever overwritten. With `overwrite`, the old run's accumulating records go
    now; its model and other files stay until the new run replaces each of them atomically (so a run that
    fails midway still leaves the old model), and files fmkit did not write are never touched.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FmkitError(f"--output {path} is a file; give a folder for the run.")
    if not path.is_dir() or not any(path.iterdir()):
        if path.is_dir():
            atomic_write_json(path / RUN_MARKER, _marker())  # an empty folder: the run takes it
        else:
            _create_run_dir(path)
        return path
    ours = is_fmkit_run(path)
    if not overwrite:
        if ours:
            raise FmkitError(
                f"{path} already holds a run. Choose another --output, continue it with "
                f"`fmkit train --resume {path}`, or replace it with --overwrite."
            )
        raise FmkitError(f"{path} is not empty. Choose an empty or new folder for --output (or pass --overwrite).")
    if not ours:
        raise FmkitError(
            f"--overwrite: {path} is not empty and was not created by fmkit (no {RUN_MARKER} marker, no fmkit "
            "run.json/config.yaml), so fmkit will not replace anything in it. Choose a new --output folder."
        )
    for name in ACCUMULATING_RECORDS:
        remove_entry(path / name)
    atomic_write_json(path / RUN_MARKER, _marker())  # a run from before the marker gets one now
    return path


def remove_run_files(path: Path) -> list[str]:
    """Delete what fmkit wrote in a run directory, and the folder itself if nothing else is left.

    Returns the names of the entries kept (not written by fmkit). A folder that is not an fmkit run is left
    whole (every name is returned).
    """
    path = Path(path)
    names = sorted(entry.name for entry in path.iterdir())
    if not is_fmkit_run(path):
        return names
    kept = [name for name in names if not written_by_fmkit(name)]
    # The marker goes last: a removal interrupted midway still leaves a folder fmkit recognises as its own.
    for name in sorted(set(names) - set(kept), key=lambda n: n == RUN_MARKER):
        remove_entry(path / name)
    if not kept:
        path.rmdir()
    return kept


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
