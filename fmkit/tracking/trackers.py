"""Trackers (the training.tracking.Tracker protocol) for the registry, TensorBoard and MLflow.

Each is independent: a tracker that cannot write warns once and goes quiet rather than stopping
a training run that is otherwise fine.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from fmkit.tracking.registry import HEARTBEAT_SECONDS, Registry


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


class RegistryTracker:
    """Metric curves into the registry's metrics table."""

    def __init__(self, registry: Registry, run_id: str) -> None:
        self.registry = registry
        self.run_id = run_id
        self._broken = False

    def log(self, step: int, metrics: dict[str, float], kind: str) -> None:
        if self._broken:
            return
        try:
            self.registry.log(self.run_id, step, metrics, kind)
        except Exception as exc:  # a locked or read-only registry must not kill the training run
            self._broken = True
            _warn(f"run registry {self.registry.path}: {exc}; metrics stay in history.jsonl only.")

    def close(self, status: str) -> None:
        """Status and final metrics are written by RunRecorder.end, which also sees failures."""


class TensorBoardTracker:
    """Scalars into RUN_DIR/tensorboard, tagged train/<name> and eval/<name>."""

    def __init__(self, log_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer: Any = SummaryWriter(log_dir=str(log_dir))

    def log(self, step: int, metrics: dict[str, float], kind: str) -> None:
        phase = metrics.get("phase")
        prefix = f"{phase}_{kind}" if isinstance(phase, str) and phase else kind
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{prefix}/{name.removeprefix('eval_')}", float(value), step)
        self.writer.flush()

    def close(self, status: str) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """{"train": {"epochs": 3}} -> {"train.epochs": "3"} (MLflow params are flat strings)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:500]
    return out


class MlflowTracker:
    """One MLflow run per fmkit run: config as params, curves as metrics, status at the end."""

    _STATUS: ClassVar[dict[str, str]] = {"finished": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}

    def __init__(self, tracking_uri: str, experiment: str, run_name: str, config: dict[str, Any],
                 tags: dict[str, str]) -> None:
        import logging

        from mlflow.tracking import MlflowClient

        for name in ("mlflow", "alembic"):  # schema-migration chatter would drown the progress output
            logging.getLogger(name).setLevel(logging.WARNING)
        self.client = MlflowClient(tracking_uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found is not None else self.client.create_experiment(experiment)
        self.mlflow_run_id: str = self.client.create_run(experiment_id, run_name=run_name, tags=tags).info.run_id
        self.run_id: str | None = self.mlflow_run_id  # None once closed
        params = list(flatten(config).items())
        from mlflow.entities import Param

        for i in range(0, len(params), 100):  # MLflow caps a batch at 100 params
            self.client.log_batch(self.run_id, params=[Param(k, v) for k, v in params[i:i + 100]])

    def log(self, step: int, metrics: dict[str, float], kind: str) -> None:
        if self.run_id is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        phase = metrics.get("phase")
        prefix = f"{phase}_" if isinstance(phase, str) and phase else ""
        batch = [Metric(prefix + (f"{kind}_{name.removeprefix('eval_')}" if kind != "train" else name), float(value), now, step)
                 for name, value in metrics.items() if isinstance(value, (int, float)) and not isinstance(value, bool)]
        self.client.log_batch(self.run_id, metrics=batch)

    def log_final(self, metrics: dict[str, float]) -> None:
        """Final metrics arrive after the loop has closed its trackers; MLflow accepts them on an ended run."""
        if metrics:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            self.client.log_batch(self.mlflow_run_id,
                                  metrics=[Metric(f"final_{k}", float(v), now, 0) for k, v in metrics.items()])

    def close(self, status: str) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, self._STATUS.get(status, "FINISHED"))
            self.run_id = None


class Heartbeat:
    """A daemon thread that tells the registry this process is alive; it dies with the process."""

    def __init__(self, registry: Registry, run_id: str, every: float = HEARTBEAT_SECONDS) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(registry, run_id, every), daemon=True,
                                        name="fmkit-heartbeat")
        self._thread.start()

    def _run(self, registry: Registry, run_id: str, every: float) -> None:
        while not self._stop.wait(every):
            try:
                registry.heartbeat(run_id)
            except Exception:  # a busy registry just misses one beat
                continue

    def stop(self) -> None:
        self._stop.set()
