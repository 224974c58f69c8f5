"""A model folder's tokenizer.json run by the `tokenizers` library alone, without transformers.

transformers' fast tokenizers are this same Rust tokenizer behind a Python wrapper; importing that wrapper
costs seconds (it imports torch). fmkit saves every model's tokenizer with `save_pretrained`, so the folder's
tokenizer.json already holds the full pipeline (normaliser, pre-tokeniser, model, special-token template):
what is left on the Python side is truncation, which is set here the way transformers sets it. Used by
the ONNX and torch prediction paths; `tests/unit/test_rust_tokenizer.py` checks identical ids against
transformers. Anything else a caller asks of a predictor's tokenizer (padding, tensors, `decode`, token
attributes) goes to the folder's transformers tokenizer, loaded on that first use.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fmkit.errors import ModelError

TOKENIZER_FILE = "tokenizer.json"


class RustTokenizer:
    """The part of a transformers fast tokenizer that fmkit's text predictors call: batch encoding with
    truncation and no padding (`encode_texts`), and `pad_token_id`. Given the model `folder`, every other call
    or attribute is the folder's transformers tokenizer's (loaded once, on first use); without one, refused."""

    is_fast = True

    def __init__(self, tokenizer: Any, pad_token_id: int | None = None, truncation_side: str = "right",
                 folder: Path | None = None) -> None:
        tokenizer.no_padding()  # padding is the predictor's, per length-sorted batch
        tokenizer.no_truncation()
        self._tokenizer = tokenizer
        self.pad_token_id = pad_token_id
        self.truncation_side = truncation_side
        self._folder = folder
        self._full: Any = None
        self._max_length: int | None = None
        # Truncation is state on the Rust object: concurrent callers (the dashboard's threads) must not
        # switch it under each other's encode call.
        self._lock = threading.Lock()

    def transformers_tokenizer(self) -> Any:
        """The folder's transformers tokenizer (what `load_tokenizer` gives), for calls beyond batch encoding."""
        if self._folder is None:
            raise ValueError("this RustTokenizer has no model folder to load the full tokenizer from")
        with self._lock:
            if self._full is None:
                from fmkit.models.backbone import load_tokenizer

                self._full = load_tokenizer(self._folder)
        return self._full

    def __getattr__(self, name: str) -> Any:
        # Only for attributes not set above (decode, unk_token_id, save_pretrained, ...).
        if name.startswith("_") or self.__dict__.get("_folder") is None:
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
        return getattr(self.transformers_tokenizer(), name)

    def __call__(self, texts: Sequence[str], text_pair: Sequence[str] | None = None, truncation: bool = False,
                 max_length: int | None = None, padding: bool = False, return_attention_mask: bool | None = None,
                 return_token_type_ids: bool | None = None, add_special_tokens: bool = True, verbose: bool = True,
                 **options: Any) -> Any:
        # `verbose`: transformers' switch for its over-length warning; this tokenizer never warns.
        # The fast path is what fmkit's encoders ask: lists of texts, ids only, unpadded. Anything else (a single
        # string, padding, masks, tensors) is transformers' own behaviour, so it is transformers' answer.
        fast = (not isinstance(texts, str) and not padding and return_attention_mask is False
                and return_token_type_ids is False and not options)
        if not fast:
            if self._folder is not None:
                return self.transformers_tokenizer()(
                    texts, text_pair, truncation=truncation, max_length=max_length, padding=padding,
                    return_attention_mask=return_attention_mask, return_token_type_ids=return_token_type_ids,
                    add_special_tokens=add_special_tokens, verbose=verbose, **options)
            if padding:
                raise ValueError("RustTokenizer does not pad; the predictor pads each batch itself")
            if isinstance(texts, str):
                raise TypeError("RustTokenizer encodes a list of texts")
        limit = max_length if truncation else None
        with self._lock:
            if limit != self._max_length:
                if limit is None:
                    self._tokenizer.no_truncation()
                else:
                    # transformers' `truncation=True` on single texts: longest_first, stride 0, special tokens counted.
                    self._tokenizer.enable_truncation(limit, stride=0, strategy="longest_first",
                                                      direction=self.truncation_side)
                self._max_length = limit
            inputs: list[Any] = list(texts) if text_pair is None else list(zip(texts, text_pair, strict=True))
            encodings = self._tokenizer.encode_batch(inputs, add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in encodings]}


def _token_content(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_rust_tokenizer(folder: Path) -> Any:
    """The folder's tokenizer.json as a RustTokenizer; a folder without one gets the transformers tokenizer."""
    folder = Path(folder)
    if not (folder / TOKENIZER_FILE).is_file():
        from fmkit.models.backbone import load_tokenizer

        return load_tokenizer(folder)
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    except Exception as exc:  # the Rust side raises a bare Exception for a malformed file
        raise ModelError(f"{folder / TOKENIZER_FILE}: cannot load the tokenizer ({exc}).") from None
    config = _read_json(folder / "tokenizer_config.json")
    pad = _token_content(config.get("pad_token")) or _token_content(
        _read_json(folder / "special_tokens_map.json").get("pad_token"))
    pad_id = tokenizer.token_to_id(pad) if pad else None
    side = config.get("truncation_side", "right")
    return RustTokenizer(tokenizer, pad_id, side if side in ("left", "right") else "right", folder)
