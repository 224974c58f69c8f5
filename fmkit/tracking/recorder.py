"""Builds a run's trackers from its `track` config and records its life in the registry.

`RunRecorder` is what workflows/rundir.py's RunStatus uses: start (running, pid, host, heartbeat,
config, data fingerprints, versions) and end (status, final metrics, artifacts). It reads what the
run directory already holds (config.yaml, data.json, env.json, metrics.json), so every workflow
gets the same record without passing anything extra.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from fmkit.config.schema import TrackConfig
from fmkit.tracking.registry import Registry, run_id_for
from fmkit.tracking.trackers import Heartbeat, MlflowTracker, RegistryTracker, TensorBoardTracker


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_run_config(run_dir: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load((Path(run_dir) / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return raw if isinstance(raw, dict) else {}


def track_config(raw: dict[str, Any]) -> TrackConfig:
    try:
        return TrackConfig.model_validate(raw.get("track") or {})
    except ValueError:
        return TrackConfig()


def runs_root_for(run_dir: Path, track: TrackConfig) -> Path:
    """Where the registry lives: track.runs_root, else the folder holding the run directory."""
    return Path(track.runs_root) if track.runs_root else Path(run_dir).resolve().parent


def artifact_list(run_dir: Path) -> list[dict[str, Any]]:
    """Files a person would open, with sizes (checkpoints and TensorBoard internals left out)."""
    out = []
    for path in sorted(Path(run_dir).iterdir()):
        if path.name.startswith(".") or path.name in ("checkpoints", "tensorboard"):
            continue
        if path.is_file():
            out.append({"path": path.name, "bytes": path.stat().st_size})
        elif path.is_dir():
            size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
            out.append({"path": path.name + "/", "bytes": size})
    return out


def mlflow_uri(track: TrackConfig, root: Path) -> str:
    return track.tracking_uri or f"sqlite:///{(Path(root).resolve() / 'mlflow.db').as_posix()}"


class RunRecorder:
    """The registry side of one run: begin on construction, end(status) once."""

    def __init__(self, run_dir: Path, command: str, *, fresh: bool = True) -> None:
        self.run_dir = Path(run_dir).resolve()
        raw = read_run_config(self.run_dir)
        self.track = track_config(raw)
        self.registry: Registry | None = None
        self._heartbeat: Heartbeat | None = None
        self.root = runs_root_for(self.run_dir, self.track)
        self.run_id = run_id_for(self.run_dir, self.root)
        if not self.track.registry:
            return
        try:
            registry = Registry(self.root)
            registry.start(self.run_id, path=self.run_dir, command=command, config=raw,
                           data=_read_json(self.run_dir / "data.json"), env=_read_json(self.run_dir / "env.json"),
                           fresh=fresh)
        except Exception as exc:  # recording is a convenience; the run itself goes on
            print(f"warning: run registry in {self.root}: {exc}; this run is not recorded there.", file=sys.stderr)
            return
        self.registry = registry
        self._heartbeat = Heartbeat(registry, self.run_id)

    def end(self, status: str, error: str | None = None) -> None:
        if self._heartbeat is not None:
            self._heartbeat.stop()
            self._heartbeat = None
        if self.registry is None:
            return
        metrics = _read_json(self.run_dir / "metrics.json") if status == "finished" else None
        try:
            self.registry.end(self.run_id, status, final_metrics=metrics, artifacts=artifact_list(self.run_dir),
                              error=error)
        except Exception as exc:
            print(f"warning: run registry in {self.root}: {exc}", file=sys.stderr)


def build_trackers(run_dir: Path, track: TrackConfig, config: dict[str, Any]) -> list[Any]:
    """The trackers `track` asks for (besides the run's own history file)."""
    run_dir = Path(run_dir).resolve()
    root = runs_root_for(run_dir, track)
    trackers: list[Any] = []
    if track.registry:
        trackers.append(RegistryTracker(Registry(root), run_id_for(run_dir, root)))
    if track.tensorboard:
        try:
            trackers.append(TensorBoardTracker(run_dir / "tensorboard"))
        except ImportError:
            print("warning: tensorboard is not installed; no event files for this run (pip install tensorboard).",
                  file=sys.stderr)
    if track.backend == "mlflow":
        from fmkit.errors import ConfigError

        try:
            trackers.append(MlflowTracker(mlflow_uri(track, root), track.experiment, run_id_for(run_dir, root),
                                          config, {"fmkit.run_dir": str(run_dir)}))
        except ImportError as exc:
            raise ConfigError("track.backend=mlflow needs the mlflow package: pip install 'fmkit[mlflow]'.") from exc
    return trackers


def record_eval(model_dir: Path, data: Path, metrics: dict[str, Any], runs_root: Path | None = None) -> str | None:
    """Record a `fmkit eval` as a finished run of its own (command 'eval'), linked to the trained run."""
    model_dir = Path(model_dir).resolve()
    run_dir = model_dir.parent if model_dir.name == "model" else model_dir
    trained = (run_dir / "run.json").is_file()
    root = Path(runs_root) if runs_root else (run_dir.parent if trained else Path("runs"))
    registry = Registry(root)
    raw = read_run_config(run_dir) if trained else {}
    parent = run_id_for(run_dir, root) if trained else None
    run_id = f"eval-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{model_dir.parent.name if trained else model_dir.name}"
    try:
        registry.start(run_id, path=None, command="eval", config=raw, parent=parent,
                       data={"eval": {"source": str(data)}})
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        registry.end(run_id, "finished", final_metrics={**scalars, "model": str(model_dir), "data": str(data)})
    except Exception as exc:
        print(f"warning: run registry in {root}: {exc}; this evaluation is not recorded.", file=sys.stderr)
        return None
    return run_id


# Trackers of runs in this process, so RunStatus.end can close them on failure too (the workflow
# itself only closes them after a successful loop).
_OPEN: dict[Path, Any] = {}


def remember_trackers(run_dir: Path, trackers: Any) -> Any:
    _OPEN[Path(run_dir).resolve()] = trackers
    return trackers


def close_open_trackers(run_dir: Path, status: str) -> None:
    trackers = _OPEN.pop(Path(run_dir).resolve(), None)
    if trackers is None:
        return
    if status == "finished":
        metrics = _read_json(Path(run_dir) / "metrics.json") or {}
        scalars = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        for tracker in getattr(trackers, "trackers", [trackers]):
            if hasattr(tracker, "log_final"):
                tracker.log_final(scalars)
    trackers.close(status)
