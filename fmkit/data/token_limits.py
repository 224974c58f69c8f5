"""How many tokens one text may use: the single `max_length` resolution that every task and the doctor share.

A configured `data.max_length` above what the model accepts would fail deep in the forward pass (an index
error in the position embeddings) or silently run past the positions the model was trained on, so it is
capped by the tokenizer's recorded limit, once, here, and the cap is said out loud.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Tokenizers saved without a limit report transformers' VERY_LARGE_INTEGER (about 1e30): that means
# "unknown", not "a billion tokens", and leaves the configured value as it is.
UNKNOWN_LIMIT = 10**9


def tokenizer_limit(tokenizer: Any) -> int | None:
    """The longest input the tokenizer says its model accepts, or None when it does not record one."""
    value = getattr(tokenizer, "model_max_length", None)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value >= UNKNOWN_LIMIT:
        return None
    return value


# RoBERTa-style encoders number positions from padding_idx + 1, so their table holds two fewer usable ones.
OFFSET_POSITION_MODELS = ("roberta", "xlm-roberta", "camembert", "longformer", "mpnet", "xlm-roberta-xl")


def position_limit(model_dir: Path | None) -> int | None:
    """The length of the model's position table (from its config.json), or None when it has none or
    cannot be read: rotary and relative-position models (no table) simply return their recorded context."""
    if model_dir is None:
        return None
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    size = config.get("max_position_embeddings")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        return None
    if config.get("model_type") in OFFSET_POSITION_MODELS:
        size -= int(config.get("pad_token_id") or 0) + 1
    return size if size > 0 else None


def resolve_max_length(requested: int, tokenizer: Any, model_dir: Path | None = None) -> int:
    """`requested`, capped at the tokenizer's recorded limit and at the model's position table."""
    limits = [limit for limit in (tokenizer_limit(tokenizer), position_limit(model_dir)) if limit is not None]
    return min([requested, *limits])


def max_length_note(requested: int, tokenizer: Any, model_dir: Path | None = None,
                    setting: str = "data.max_length") -> str | None:
    """A one-line warning when the configured length (the config key `setting`) is more than the model
    accepts, else None."""
    resolved = resolve_max_length(requested, tokenizer, model_dir)
    if resolved == requested:
        return None
    return (f"{setting} {requested} is more than this model accepts ({resolved} tokens): texts are cut at "
            f"{resolved}. Set --set {setting}={resolved} (or less) to silence this.")
