"""How much of the data the model's vocabulary can read: the unknown-token rate and the scripts of the text.

An English WordPiece vocabulary (the default all-MiniLM-L6-v2) turns most Chinese characters into [UNK]:
`这家酒店很好。` -> `[UNK] 家 [UNK] [UNK] [UNK] [UNK] 。`. Training still runs and reports numbers, but the model
never saw most of the text, so `fmkit doctor` and the start of `fmkit train` measure this and name the fix.

Cheap by design: at most SAMPLE_TEXTS evenly spaced texts, each cut at SAMPLE_CHARACTERS, in one batched
tokenizer call.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

SAMPLE_TEXTS = 2000
# The rate is a property of the vocabulary, not of long documents: the first characters of a text tell it
# as well as the whole text, and the cut keeps both the tokenizer call and the script count small.
SAMPLE_CHARACTERS = 500

# Measured with the default vocabulary: English data 0.0-0.2% (banking77, IMDB, GoEmotions' Reddit comments
# with their emoji: any Latin letter falls back to word pieces, only emoji and rare symbols become [UNK]),
# Chinese reviews 65% (ChnSentiCorp, waimai_10k). 5% is far above the first, so English data does not warn,
# yet low enough to catch data of which only a part is in a script the model cannot read. At 1 token in
# 20 erased, the words the model misses are no longer rare ones it could do without.
UNKNOWN_RATE_WARNING = 0.05

# The bundled multilingual encoder (fmkit/models/multilingual.py): 100+ languages, Chinese included.
MULTILINGUAL_MODEL = "multilingual-e5-small"

# Scripts by the first word of a character's Unicode name (after FULLWIDTH/HALFWIDTH): the names are stable
# across Unicode versions and cover every block of a script, which a table of code point ranges would not.
_SCRIPT_BY_NAME = {"CJK": "Han", "LATIN": "Latin", "CYRILLIC": "Cyrillic", "ARABIC": "Arabic",
                   "HIRAGANA": "Kana", "KATAKANA": "Kana", "KATAKANA-HIRAGANA": "Kana", "HANGUL": "Hangul"}
OTHER_SCRIPT = "other"
_WIDTH_WORDS = ("FULLWIDTH", "HALFWIDTH")


@dataclass(frozen=True)
class Coverage:
    """What the tokenizer made of a sample of the texts, and which scripts their letters are written in.

    `scripts`: the share of the letters (digits, punctuation and spaces left out) per script, largest first,
    only scripts present.
    """

    texts: int
    tokens: int
    unknown: int
    scripts: dict[str, float] = field(default_factory=dict, hash=False)

    @property
    def unk_rate(self) -> float:
        return self.unknown / self.tokens if self.tokens else 0.0

    @property
    def dominant_script(self) -> str | None:
        return next(iter(self.scripts), None)

    def summary(self) -> str:
        """One line: '2,000 texts: 61.8% of tokens are unknown to the model's vocabulary; characters 93% Han, 5% Latin'."""
        letters = f"characters {script_mix(self.scripts)}" if self.scripts else "no letters"
        return f"{self.texts:,} texts: {self.unk_rate:.1%} of tokens are unknown to the model's vocabulary; {letters}"

    def as_dict(self) -> dict[str, Any]:
        return {"texts": self.texts, "tokens": self.tokens, "unknown": self.unknown, "unk_rate": self.unk_rate,
                "scripts": dict(self.scripts)}


def measure_coverage(tokenizer: Any, texts: Sequence[str], sample_size: int = SAMPLE_TEXTS) -> Coverage:
    """The unknown-token rate and script mix of an evenly spaced sample of `texts` (the same sample every time)."""
    sample = [text[:SAMPLE_CHARACTERS] for text in evenly_spaced(texts, sample_size)]
    tokens, unknown = count_unknown(tokenizer, sample)
    return Coverage(texts=len(sample), tokens=tokens, unknown=unknown, scripts=script_shares(sample))


def evenly_spaced(texts: Sequence[str], size: int) -> list[str]:
    """`size` texts spread over the whole data: a file sorted by label or source still shows all of it."""
    count = min(len(texts), size)
    return [texts[i * len(texts) // count] for i in range(count)]


def count_unknown(tokenizer: Any, texts: list[str]) -> tuple[int, int]:
    """(non-special tokens, of which unknown) in one batched call; a tokenizer without an unknown token
    (byte-level BPE reads every string) has none."""
    if not texts:
        return 0, 0
    # verbose=False: a long text is counted, not warned about (this call never feeds the model).
    encoded = tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    unk_id = getattr(tokenizer, "unk_token_id", None)
    special = set(getattr(tokenizer, "all_special_ids", ())) - {unk_id}
    ids = [token for row in encoded for token in row if token not in special]
    unknown = 0 if unk_id is None else sum(token == unk_id for token in ids)
    return len(ids), unknown


def script_shares(texts: Sequence[str]) -> dict[str, float]:
    """The share of the letters of `texts` in each script, largest first."""
    per_script: Counter[str] = Counter()
    for char, count in Counter("".join(texts)).items():  # each distinct character is classified once
        script = script_of(char)
        if script is not None:
            per_script[script] += count
    letters = sum(per_script.values())
    return {script: count / letters for script, count in per_script.most_common()}


@lru_cache(maxsize=8192)
def script_of(char: str) -> str | None:
    """The script of a letter (Han, Latin, Cyrillic, Arabic, Kana, Hangul or other); None for anything else."""
    if not char.isalpha():
        return None
    words = unicodedata.name(char, "").split()
    if words and words[0] in _WIDTH_WORDS:
        words = words[1:]
    return _SCRIPT_BY_NAME.get(words[0], OTHER_SCRIPT) if words else OTHER_SCRIPT


def script_mix(scripts: dict[str, float]) -> str:
    """'93% Han, 5% Latin': the scripts that round to at least 1% (a stray letter is not a mix)."""
    return ", ".join(f"{share:.0%} {name}" for name, share in scripts.items() if round(share * 100) >= 1)


def unknown_token_warning(coverage: Coverage, model_name: str) -> str | None:
    """The warning for data the model's vocabulary cannot read (None when it can): the rate, the dominant
    script and the fix."""
    if coverage.unk_rate <= UNKNOWN_RATE_WARNING:
        return None
    script = coverage.dominant_script
    letters = (f"; its letters are {coverage.scripts[script]:.0%} {script}" if script and script != OTHER_SCRIPT
               else "")
    problem = (f"{coverage.unk_rate:.1%} of the tokens of {coverage.texts:,} training texts are unknown to the "
               f"vocabulary of {model_name} (its tokenizer replaces them with its unknown token){letters}, so the "
               "model cannot tell the unknown parts apart and learns little from them.")
    if model_name.lower().endswith(MULTILINGUAL_MODEL):
        return f"{problem} Choose a model whose vocabulary covers this language."
    return (f"{problem} Use a multilingual encoder: --model {MULTILINGUAL_MODEL} (100+ languages, Chinese "
            f"included), or `model.name: {MULTILINGUAL_MODEL}` in the config.")


def vocabulary_check(tokenizer: Any, texts: Sequence[str], model_name: str) -> tuple[Coverage, str | None]:
    """The coverage of `texts` and its warning, what `fmkit doctor` and the start of training both report."""
    coverage = measure_coverage(tokenizer, texts)
    return coverage, unknown_token_warning(coverage, model_name)
