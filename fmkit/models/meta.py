"""A saved model's fmkit.json, read without torch: loading an ONNX export must not pay for importing it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fmkit.errors import ModelError

FMKIT_META = "fmkit.json"
HEAD_FILE = "head.safetensors"


def recorded_precision(meta: dict[str, Any]) -> str:
    """The precision a saved model's metrics were measured in; folders saved before fmkit recorded it: fp32."""
    return str(meta.get("precision", "fp32"))


def saved_model_dir(path: Path | str) -> Path:
    """A model folder, or the run directory holding one as model/ (every command accepts either)."""
    path = Path(path)
    if (path / "model").is_dir() and not (path / FMKIT_META).is_file():
        return path / "model"
    return path


def read_meta(directory: Path) -> dict[str, Any]:
    meta_path = Path(directory) / FMKIT_META
    if not Path(directory).is_dir():
        raise ModelError(f"Model folder not found: {directory}.")
    if not meta_path.is_file():
        hint = " (a run directory? use its model/ subfolder)" if (Path(directory) / "model").is_dir() else ""
        raise ModelError(f"{directory}: no {FMKIT_META}, so this is not a model saved by fmkit{hint}.")
    try:
        meta: dict[str, Any] = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{meta_path}: corrupt ({exc}).") from None
    return meta
