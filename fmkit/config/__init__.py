"""Layer 0: the typed run configuration (no torch import)."""

from fmkit.config.load import documented_default_yaml, load_config, parse_override, write_config
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

__all__ = [
    "DEFAULT_MODEL",
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "RunConfig",
    "StrategyConfig",
    "TaskConfig",
    "TrainConfig",
    "documented_default_yaml",
    "load_config",
    "parse_override",
    "write_config",
]
