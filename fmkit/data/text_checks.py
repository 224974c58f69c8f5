"""Checks a text must pass before it may join a batch with other people's texts.

A tokenizer fails the whole call on one bad input (a lone surrogate such as "\\ud800" is valid JSON but
not encodable Unicode: tokenizers raises `TypeError: TextEncodeInput must be ...`). Servers batch texts of
many requests into one forward pass, so one such text would fail every request in the batch. Every
entry point that batches (the model server, the dashboard playground, the apps' servers, batch
prediction) runs these checks per request first and rejects the offending request alone.
"""

from __future__ import annotations

from collections.abc import Sequence


class InvalidText(ValueError):
    """A text that cannot be tokenized; `index` is its position in the request (None for a field that
    holds one text, such as a prompt), `reason` says why."""

    def __init__(self, index: int | None, reason: str, field: str = "texts") -> None:
        self.index = index
        self.reason = reason
        self.field = field
        super().__init__(f"{field_location(field, index)} {reason}")


def field_location(field: str, index: int | None) -> str:
    """Where a text sits in a request: `texts[2]`, or `prompt` for a field of one text."""
    return field if index is None else f"{field}[{index}]"


def text_problem(text: object) -> str | None:
    """Why `text` cannot be tokenized, or None when it can."""
    if not isinstance(text, str):
        return f"is {type(text).__name__}, not a string"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = ord(text[exc.start])
        return (f"holds an unpaired surrogate U+{bad:04X} at character {exc.start}, which is not valid Unicode: "
                "send the text as UTF-8 (a JSON \\ud83d\\ude00 pair is fine, a lone \\ud800 is not)")
    return None


def check_texts(texts: Sequence[object], field: str = "texts", indexed: bool = True) -> None:
    """Raise InvalidText for the first text that cannot be tokenized (`indexed=False`: `field` holds one text)."""
    for index, text in enumerate(texts):
        reason = text_problem(text)
        if reason is not None:
            raise InvalidText(index if indexed else None, reason, field)
