"""Which network scores the monitor's stream: the int8 ONNX export of the model when it has one.

`fmkit export MODEL --quantize int8 --output DIR` writes a separate folder whose fmkit.json records
`format: onnx`, `quantization: int8` and `exported_from` (the model folder). The monitor looks for
such a folder beside the model (the layout of `fmkit export runs/x/model --output runs/x/int8`) or
inside it, and with `backend: auto` scores with it: dynamic int8 on CPU is 2-4x the throughput of
the fp32 PyTorch model (BENCHMARKS.md, issue 21) for a verified accuracy change (export.json).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from fmkit.errors import ConfigError
from fmkit.models.meta import FMKIT_META, read_meta, saved_model_dir

ScoringBackend = Literal["auto", "torch", "int8"]
SCORING_BACKENDS = ("auto", "torch", "int8")


def _int8_export_of(folder: Path, source: Path) -> bool:
    try:
        meta = json.loads((folder / FMKIT_META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    exported_from = meta.get("exported_from")
    return (isinstance(meta, dict) and meta.get("format") == "onnx" and meta.get("quantization") == "int8"
            and exported_from is not None and Path(str(exported_from)).resolve() == source)


def find_int8_export(model: Path | str) -> Path | None:
    """An int8 export of `model` in a folder beside it or inside it (the first by name), else None."""
    source = saved_model_dir(model).resolve()
    folders = [p for base in (source.parent, source) if base.is_dir() for p in sorted(base.iterdir())
               if p.is_dir() and p != source]
    return next((p for p in folders if _int8_export_of(p, source)), None)


def scoring_model(model: Path | str, backend: str = "auto") -> tuple[Path, str]:
    """(folder to load, "int8" or "torch") for the monitor's model and its `backend` setting.

    A model folder that is itself an int8 export is used as it is, whatever the setting.
    """
    if backend not in SCORING_BACKENDS:
        raise ConfigError(f"backend '{backend}' is not one of {', '.join(SCORING_BACKENDS)}.")
    path = saved_model_dir(model)
    meta = read_meta(path)
    if meta.get("format") == "onnx":
        return path, "int8" if meta.get("quantization") == "int8" else "onnx"
    if backend == "torch":
        return path, "torch"
    export = find_int8_export(path)
    if export is None and backend == "int8":
        raise ConfigError(f"{path}: no int8 export of this model beside it; write one with `fmkit export {path} "
                          f"--quantize int8 --output {path.parent / 'int8'}` or use backend auto/torch.")
    return (export, "int8") if export is not None else (path, "torch")


def load_scorer(model: Path | str, backend: str = "auto", batch_size: int = 64) -> tuple[Any, str]:
    """The predictor the monitor scores with, and the backend it runs on."""
    from fmkit.inference import load_predictor

    path, chosen = scoring_model(model, backend)
    return load_predictor(path, batch_size=batch_size), chosen
