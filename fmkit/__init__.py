"""fmkit: adapt a pretrained foundation model to your own data, measure it, and serve it.

Public API::

    import fmkit
    result = fmkit.train(data="train.csv", output="runs/demo")
    clf = fmkit.load("runs/demo/model")
    clf.predict(["shares jump after earnings beat"])
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmkit.errors import ConfigError, DataError, FmkitError, ModelError

if TYPE_CHECKING:
    from fmkit.workflows.rundir import RunResult

__version__ = "0.1.0"


def load(path: str | Path, precision: str | None = None) -> Any:
    """Load a saved model (its folder, or the run directory holding it) for prediction.

    `precision` (auto|fp32|bf16), text classifiers only: of the forward pass; by default the one the
    model's reported metrics were measured in.
    """
    from fmkit.inference import load_predictor

    return load_predictor(path, precision=precision)


def train(config: str | Path | None = None, **overrides: Any) -> RunResult:
    """Train from an optional YAML config plus dotted overrides.

    Short names are accepted for the common options: ``data``, ``eval``, ``model``, ``epochs``,
    ``seed``, ``output``, ``task``, ``strategy``, ``text_column``, ``label_column``; any other key is dotted,
    e.g. ``**{"train.batch_size": 16}``.
    """
    from fmkit.config import load_config
    from fmkit.utils.clock import command_clock
    from fmkit.workflows import train_for_task

    short = {"data": "data.train", "eval": "data.eval", "model": "model.name", "epochs": "train.epochs",
             "seed": "train.seed", "text_column": "data.text_column", "label_column": "data.label_column",
             "task": "task.type", "strategy": "strategy.name"}
    dotted = {short.get(k, k): v for k, v in overrides.items()}
    with command_clock():  # strategy.time_budget counts from this call
        return train_for_task(load_config(config, dotted))


def evaluate(model: str | Path, data: str | Path, **kwargs: Any) -> dict[str, Any]:
    """Metrics of a saved text model (classification, regression, multi-label) on a labelled file; the task
    registry names each task's evaluation."""
    from fmkit.config.tasks import resolve, task_spec
    from fmkit.models.meta import read_meta, saved_model_dir

    folder = saved_model_dir(model)
    task = str(read_meta(folder).get("task", "classification"))
    target = task_spec(task).evaluate
    if target is None:
        raise ModelError(f"{model}: fmkit.evaluate does not evaluate '{task}' models; use `fmkit eval`.")
    result: dict[str, Any] = resolve(target)(Path(model), Path(data), **kwargs)
    return result


__all__ = ["ConfigError", "DataError", "FmkitError", "ModelError", "__version__", "evaluate", "load", "train"]
