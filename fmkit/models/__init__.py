"""Layer 2: backbone + head = task model. Heads return logits or vectors; losses are separate.

The names below load on first use: `fmkit.models.meta` (read by every predictor) must not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"TextClassifier": "fmkit.models.classifier", "predict_logits": "fmkit.models.classifier",
         "resolve_model_path": "fmkit.models.backbone"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fmkit.models' has no attribute {name!r}")


__all__ = ["TextClassifier", "predict_logits", "resolve_model_path"]
