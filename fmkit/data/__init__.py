"""Layer 1: rows -> validated, tokenized, collated batches. Knows the tokenizer, never the model.

The names below load on first use, so importing one light module (`fmkit.data.tokenized`) does not pay
for pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"LabeledTexts": "fmkit.data.labeled", "read_labeled": "fmkit.data.labeled",
         "iter_texts": "fmkit.data.readers", "read_table": "fmkit.data.readers",
         "ValidationReport": "fmkit.data.validate", "stratified_split": "fmkit.data.validate",
         "validate_classification": "fmkit.data.validate"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fmkit.data' has no attribute {name!r}")


__all__ = sorted(_LAZY)
