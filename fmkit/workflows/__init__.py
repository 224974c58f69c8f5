"""Top layer: wires config -> data -> models -> training -> evaluation -> inference into runs.

The CLI and the public API call these; nothing below imports them. Each task's workflow is named by its
entry in the task registry (fmkit/config/tasks.py): `train(cfg, *, resume_dir=None, overwrite=False) -> RunResult`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fmkit.config import RunConfig
from fmkit.config.tasks import resolve, task_spec


def train_for_task(cfg: RunConfig, *, resume_dir: Path | None = None, overwrite: bool = False) -> Any:
    spec = task_spec(cfg.task.type)
    spec.check_strategy(cfg.strategy.name)
    return resolve(spec.workflow)(cfg, resume_dir=resume_dir, overwrite=overwrite)
