"""Layer 5: load a saved model and use it. No training dependencies.

`load_predictor(path)` reads the model's fmkit.json and returns the predictor its task names in the task
registry (fmkit/config/tasks.py; each class has `load(path, batch_size)`, `predict(texts) -> list[dict]` and
`predict_stream(iterable) -> iterator of dict`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fmkit.errors import ModelError
from fmkit.inference.predictor import Predictor, load


def load_predictor(path: Path | str, batch_size: int | None = None, backend: str | None = None,
                   precision: str | None = None) -> Any:
    """`backend` (torch|onnx) is passed on only when not "auto", `precision` (auto|fp32|bf16) only when given
    ("model" = the model's own): predictors of other tasks need not take them."""
    from fmkit.models.meta import read_meta, saved_model_dir

    path = saved_model_dir(path)
    from fmkit.config.tasks import TASKS, resolve

    task = read_meta(path).get("task", "classification")
    spec = TASKS.get(task)
    if spec is None or spec.predictor is None:
        raise ModelError(f"{path}: no predictor for task '{task}' in this version of fmkit.")
    extra: dict[str, Any] = {"backend": backend} if backend and backend != "auto" else {}  # every predictor's default
    if precision and precision != "model":
        if not spec.head_model:  # only the body + head predictors run the torch forward in a chosen precision
            raise ModelError(f"{path}: --precision applies to text classifiers and regressors; this is a '{task}' model.")
        extra["precision"] = precision
    if batch_size is not None:  # None: each predictor's own default (the text classifier's depends on its backend)
        extra["batch_size"] = batch_size
    return resolve(spec.predictor).load(path, **extra)


__all__ = ["Predictor", "load", "load_predictor"]
