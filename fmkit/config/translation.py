"""Config section of `--task translation` (layer 0: pydantic only, no torch).

Kept beside schema.py so the shared schema only gains one field (`translation`).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_PROMPT_TEMPLATE = "Translate {source_language} to {target_language}.\n{source_language}: {source}\n{target_language}:"
_DIRECTION = re.compile(r"^[a-z]{2,3}-[a-z]{2,3}$")


class TranslationConfig(BaseModel):
    """`--task translation`: which way to translate, how the prompt reads, and what evaluation translates."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    direction: str = Field(
        "both", description="'SRC-TGT' language codes ('zh-en', 'en-zh') or 'both'. With language-named columns "
        "('zh'/'en') 'both' trains each pair in both directions; with source/target columns the languages are "
        "read from this (or, for 'both', guessed from the script: Chinese or English).",
    )
    source_column: str | None = Field(
        None, description="Column of the text to translate. Auto-detected: a language code (zh, en, de...) or "
        "source/src; a headerless two-column TSV (Tatoeba) is named by script.",
    )
    target_column: str | None = Field(None, description="Column of its translation (auto-detected: target/tgt, a language code).")
    prompt_template: str = Field(
        DEFAULT_PROMPT_TEMPLATE, description="What the model reads before it writes the translation; must hold "
        "{source}, may hold {source_language} and {target_language}. Saved with the model.",
    )
    max_length: int = Field(64, ge=16, le=4096, description="Maximum tokens of prompt + translation per training pair.")
    max_new_tokens: int = Field(64, ge=1, le=1024, description="Tokens generated per sentence at evaluation and predict.")
    eval_sentences: int = Field(
        200, ge=0, description="Held-out pairs per direction translated at the end for BLEU/chrF and the samples "
        "(0: none; the whole split if it is smaller).",
    )
    base_few_shot: int = Field(
        3, ge=0, le=16, description="Training pairs shown before each sentence when the base model is scored (a "
        "pretrained LM needs the pattern shown; the tuned model is scored without them).",
    )

    @field_validator("direction")
    @classmethod
    def _direction(cls, value: str) -> str:
        value = value.strip().lower()
        if value != "both" and not _DIRECTION.match(value):
            raise ValueError(f"translation.direction '{value}': give 'SRC-TGT' language codes like 'zh-en', or 'both'")
        if value != "both" and value.split("-")[0] == value.split("-")[1]:
            raise ValueError(f"translation.direction '{value}': source and target language are the same")
        return value

    @field_validator("prompt_template")
    @classmethod
    def _template(cls, value: str) -> str:
        if "{source}" not in value:
            raise ValueError("translation.prompt_template must contain {source} (where the text to translate goes)")
        try:
            value.format(source="", source_language="", target_language="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"translation.prompt_template: only {{source}}, {{source_language}} and "
                             f"{{target_language}} may appear in braces ({exc})") from None
        return value
