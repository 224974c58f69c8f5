"""Parallel text for `--task translation`: a table of sentence pairs -> prompted token ids, loss on the target only.

Accepted files: CSV, TSV, JSONL or Parquet with
  - columns named by language code (`zh`, `en`, `de`...; `zh-cn`, `en_us` too): `translation.direction` picks
    the way ('zh-en'), or 'both' makes two examples of each pair;
  - or `source`/`target` (`src`/`tgt`) columns: the languages come from `translation.direction`, or are
    guessed from the script (Chinese or not-Chinese = English) when it is 'both';
  - or a headerless two-column TSV/CSV (Tatoeba's `English<TAB>Chinese`): the columns are named by script.
Each example becomes the prompt template (`{source_language}: {source}` ... `{target_language}:`) followed by
" target" and EOS; the labels are -100 on the prompt, so only the translation is learned.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fmkit.config.translation import TranslationConfig
from fmkit.data.readers import check_text_file, read_table
from fmkit.data.tasks.generation import IGNORE_INDEX, EncodedGeneration, bos_prefix
from fmkit.errors import DataError

LANGUAGE_NAMES = {
    "zh": "Chinese", "en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian",
    "pt": "Portuguese", "ru": "Russian", "ja": "Japanese", "ko": "Korean", "ar": "Arabic", "vi": "Vietnamese",
    "th": "Thai", "id": "Indonesian", "nl": "Dutch", "tr": "Turkish", "pl": "Polish", "hi": "Hindi",
    "uk": "Ukrainian", "sv": "Swedish", "cs": "Czech", "el": "Greek", "he": "Hebrew", "fa": "Persian",
}
SOURCE_NAMES = ("source", "src", "source_text", "from")
TARGET_NAMES = ("target", "tgt", "target_text", "translation", "reference", "to")
CJK_SHARE = 0.3  # a column whose letters are at least this share Han characters is Chinese


@dataclass(frozen=True)
class Direction:
    source: str  # language codes
    target: str

    @property
    def name(self) -> str:
        return f"{self.source}-{self.target}"

    @property
    def source_language(self) -> str:
        return language_name(self.source)

    @property
    def target_language(self) -> str:
        return language_name(self.target)

    @classmethod
    def parse(cls, text: str) -> Direction:
        source, _, target = text.strip().lower().partition("-")
        return cls(source, target)


@dataclass(frozen=True)
class TranslationPair:
    source: str
    target: str
    direction: Direction


def language_name(code: str) -> str:
    return LANGUAGE_NAMES.get(code, code)


def language_code(column: str) -> str | None:
    """'zh', 'zh-cn', 'en_US', 'Chinese' -> the language code; None when the name is not a language."""
    name = column.strip().lower()
    by_name = {v.lower(): k for k, v in LANGUAGE_NAMES.items()}
    if name in by_name:
        return by_name[name]
    base = name.replace("_", "-").split("-")[0]
    return base if base in LANGUAGE_NAMES else None


def han_share(texts: list[str]) -> float:
    """Share of letters that are CJK ideographs, over a sample of texts."""
    han = letters = 0
    for text in texts[:500]:
        for ch in text:
            if ch.isalpha():
                letters += 1
                han += "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"
    return han / letters if letters else 0.0


def guess_language(texts: list[str]) -> str:
    """'zh' or 'en' by script: the guess fmkit makes where nothing names the language."""
    return "zh" if han_share(texts) >= CJK_SHARE else "en"


def read_pair_table(path: Path) -> dict[str, list[str]]:
    """The file's columns (name -> cells). A CSV/TSV whose first row names no translation column and that has
    exactly two columns is read as headerless, its columns named by script (Tatoeba's files)."""
    path = Path(path)
    if path.suffix.lower() in (".csv", ".tsv", ".txt"):
        check_text_file(path)
        text = path.read_text(encoding="utf-8")
        delimiter = "," if path.suffix.lower() == ".csv" else "\t"
        # Tab-separated text is not quoted: Tatoeba lines may start with '"'.
        reader = (csv.reader(io.StringIO(text), delimiter=delimiter) if delimiter == ","
                  else csv.reader(io.StringIO(text), delimiter=delimiter, quoting=csv.QUOTE_NONE))
        rows = [r for r in reader if any(c.strip() for c in r)]
        if not rows:
            raise DataError(f"{path}: the file has no rows.")
        first = [c.strip() for c in rows[0]]
        if not any(_is_pair_column(c) for c in first) and len(first) == 2:
            columns = [[r[i] if i < len(r) else "" for r in rows] for i in range(2)]
            codes = [guess_language(c) for c in columns]
            if codes[0] != codes[1]:
                return {codes[0]: columns[0], codes[1]: columns[1]}
        width = len(first)
        bad = next((n for n, r in enumerate(rows[1:], start=2) if len(r) != width), None)
        if bad is not None:
            raise DataError(f"{path}, line {bad}: {len(rows[bad - 1])} cells where the header has {width}; "
                            "every row needs the same columns.")
        return {name: [r[i] for r in rows[1:]] for i, name in enumerate(first)}
    table = read_table(path)
    return {str(c): table[c].astype(str).tolist() for c in table.columns}


def _is_pair_column(name: str) -> bool:
    lowered = name.lower()
    return lowered in SOURCE_NAMES or lowered in TARGET_NAMES or language_code(name) is not None


def _find(columns: list[str], names: tuple[str, ...]) -> str | None:
    return next((c for c in columns if c.lower() in names), None)


def read_translation_pairs(path: Path, settings: TranslationConfig) -> list[TranslationPair]:
    """Every pair of the file, in each direction `settings.direction` asks for."""
    table = read_pair_table(path)
    columns = list(table)
    named_source = settings.source_column or _find(columns, SOURCE_NAMES)
    named_target = settings.target_column or _find(columns, TARGET_NAMES)
    for given in (settings.source_column, settings.target_column):
        if given is not None and given not in table:
            raise DataError(f"{path}: no column '{given}'; columns found: {', '.join(columns)}.")
    if named_source and named_target:
        direction = _source_target_direction(table[named_source], table[named_target], settings.direction)
        pairs = _pairs(table[named_source], table[named_target], direction)
    else:
        by_language = {code: c for c in columns if (code := language_code(c)) is not None}
        if len(by_language) < 2:
            raise DataError(
                f"{path}: no source/target columns. Columns found: {', '.join(columns) or 'none'}. Name them by "
                "language ('zh', 'en'), 'source'/'target', or set translation.source_column and "
                "translation.target_column.")
        directions = _language_directions(list(by_language), settings.direction, path)
        pairs = [p for d in directions for p in _pairs(table[by_language[d.source]], table[by_language[d.target]], d)]
    if not pairs:
        raise DataError(f"{path}: no pair has both a source and a target text.")
    return pairs


def _source_target_direction(sources: list[str], targets: list[str], direction: str) -> Direction:
    if direction != "both":
        return Direction.parse(direction)
    return Direction(guess_language(sources), guess_language(targets))


def _language_directions(codes: list[str], direction: str, path: Path) -> list[Direction]:
    if direction == "both":
        if len(codes) != 2:
            raise DataError(f"{path}: columns in {len(codes)} languages ({', '.join(codes)}); "
                            "set translation.direction to the pair to learn, e.g. 'zh-en'.")
        return [Direction(codes[0], codes[1]), Direction(codes[1], codes[0])]
    wanted = Direction.parse(direction)
    missing = [c for c in (wanted.source, wanted.target) if c not in codes]
    if missing:
        raise DataError(f"{path}: translation.direction '{direction}' needs a column for {', '.join(missing)}; "
                        f"languages found: {', '.join(codes)}.")
    return [wanted]


def _pairs(sources: list[str], targets: list[str], direction: Direction) -> list[TranslationPair]:
    return [TranslationPair(s.strip(), t.strip(), direction)
            for s, t in zip(sources, targets, strict=True) if s.strip() and t.strip()]


def split_pairs(pairs: list[TranslationPair], fraction: float, seed: int
                ) -> tuple[list[TranslationPair], list[TranslationPair]]:
    """Hold out whole source sentences (both directions of a pair stay on one side), at least one each side."""
    keys = sorted({frozenset((p.source, p.target)) for p in pairs}, key=lambda k: sorted(k))
    if len(keys) < 2:
        raise DataError("Need at least two sentence pairs to hold one out for evaluation (or pass --eval).")
    order = np.random.default_rng(seed).permutation(len(keys))
    n_eval = min(len(keys) - 1, max(1, round(len(keys) * fraction)))
    held = {keys[i] for i in order[:n_eval].tolist()}
    train = [p for p in pairs if frozenset((p.source, p.target)) not in held]
    return train, [p for p in pairs if frozenset((p.source, p.target)) in held]


def fill_template(template: str, direction: Direction, source: str) -> str:
    return template.format(source=source, source_language=direction.source_language,
                           target_language=direction.target_language)


def build_prompt(tokenizer: Any, template: str, direction: Direction, source: str,
                 shots: Sequence[TranslationPair] = ()) -> str:
    """BOS + (worked examples, each followed by its translation and a blank line) + this sentence's prompt."""
    examples = "".join(f"{fill_template(template, direction, s.source)} {s.target}\n\n" for s in shots)
    return bos_prefix(tokenizer) + examples + fill_template(template, direction, source)


def encode_pair(tokenizer: Any, pair: TranslationPair, template: str, max_length: int) -> tuple[list[int], list[int]]:
    """Prompt ids (label -100) + ' target' ids + EOS (labelled); a long source loses its start, a long target its end."""
    prompt_ids: list[int] = tokenizer(build_prompt(tokenizer, template, pair.direction, pair.source),
                                      add_special_tokens=False)["input_ids"]
    target_ids: list[int] = tokenizer(" " + pair.target, add_special_tokens=False)["input_ids"]
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if len(prompt_ids) + len(target_ids) + len(eos) > max_length:
        target_ids = target_ids[: max(1, max_length // 2 - len(eos))]
    target_ids = target_ids + eos
    room = max_length - len(target_ids)
    if len(prompt_ids) > room:
        keep = 1 if bos_prefix(tokenizer) else 0  # BOS stays; then the end of the prompt, next to the target
        prompt_ids = prompt_ids[:keep] + prompt_ids[len(prompt_ids) - room + keep:]
    return prompt_ids + target_ids, [IGNORE_INDEX] * len(prompt_ids) + target_ids


def encode_translation(tokenizer: Any, pairs: list[TranslationPair], template: str, max_length: int) -> EncodedGeneration:
    ids, labels = [], []
    for pair in pairs:
        i, lab = encode_pair(tokenizer, pair, template, max_length)
        ids.append(i)
        labels.append(lab)
    return EncodedGeneration(ids, labels)
