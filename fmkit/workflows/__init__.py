"""Top layer: wires config -> data -> models -> training -> evaluation -> inference into runs.

The CLI and the public API call these; nothing below imports them. Each task has a module
exposing `train(cfg, *, resume_dir=None, overwrite=False) -> RunResult`; TASK_WORKFLOWS maps
`task.type` to it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from fmkit.config import RunConfig
from fmkit.errors import ConfigError

TASK_WORKFLOWS = {
    "classification": "fmkit.workflows.classification",
    "generation": "fmkit.workflows.generation",
    "image": "fmkit.workflows.image",
    "ner": "fmkit.workflows.ner",
    "embedding": "fmkit.workflows.embedding",
}


def train_for_task(cfg: RunConfig, *, resume_dir: Path | None = None, overwrite: bool = False) -> Any:
    module_name = TASK_WORKFLOWS.get(cfg.task.type)
    if module_name is None:
        raise ConfigError(f"task '{cfg.task.type}' has no training workflow; choose one of {', '.join(TASK_WORKFLOWS)}.")
    return importlib.import_module(module_name).train(cfg, resume_dir=resume_dir, overwrite=overwrite)
