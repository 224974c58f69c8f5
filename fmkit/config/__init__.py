"""Layer 0: the typed run configuration (no torch import) and the task registry.

Names are imported on first use: the task registry (config/tasks.py) is read on the ONNX prediction path,
which must not pay for pydantic and YAML (a quarter of a second) to find a predictor.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the real types for mypy; at run time they load on first use
    from fmkit.config.load import documented_default_yaml, load_command_config, load_config, parse_override, write_config
    from fmkit.config.schema import (
        DEFAULT_MODEL,
        DataConfig,
        EvalConfig,
        ModelConfig,
        RunConfig,
        StrategyConfig,
        TaskConfig,
        TrainConfig,
    )

_EXPORTS = {
    "documented_default_yaml": "fmkit.config.load", "load_config": "fmkit.config.load",
    "load_command_config": "fmkit.config.load",
    "parse_override": "fmkit.config.load", "write_config": "fmkit.config.load",
    "DEFAULT_MODEL": "fmkit.config.schema", "DataConfig": "fmkit.config.schema", "EvalConfig": "fmkit.config.schema",
    "ModelConfig": "fmkit.config.schema", "RunConfig": "fmkit.config.schema", "StrategyConfig": "fmkit.config.schema",
    "TaskConfig": "fmkit.config.schema", "TrainConfig": "fmkit.config.schema",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fmkit.config' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "DEFAULT_MODEL", "DataConfig", "EvalConfig", "ModelConfig", "RunConfig", "StrategyConfig", "TaskConfig",
    "TrainConfig", "documented_default_yaml", "load_command_config", "load_config", "parse_override", "write_config",
]
