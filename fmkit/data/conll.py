"""Named-entity data: CoNLL column files and JSONL with character spans -> words + IOB2 tags.

CoNLL: one `token ... tag` line per word (tab or space separated; the token is the first
column, the tag the last), a blank line between sentences, `-DOCSTART-` lines skipped. Tokens
that all carry a language prefix (WikiANN's `en:`) have it stripped. Tags in BIO, IOB1, IOB2,
IOBES or BILOU become IOB2; an `I-X` that follows `O` or another type in a file that otherwise
uses `B-` is an invalid sequence: it is repaired to `B-X` and reported as a warning.

JSONL: {"text": "...", "entities": [{"start": 0, "end": 5, "label": "PER"}, ...]} (also "spans",
"type"), or pre-split {"tokens": [...], "tags": [...]}. Text is split into words by
`split_words`, the same function the NER predictor uses: each CJK character is a word of its own.

Either may be gzip-compressed, named `NAME.conll.gz` / `NAME.jsonl.gz` (read as is, no unpacking).
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmkit.data.legacy_encodings import legacy_chinese_encoding
from fmkit.data.readers import check_text_file
from fmkit.errors import DataError

_TAG = re.compile(r"^([BIESLU])-(.+)$")
# Scripts written without spaces between words: each character is a word of its own (Chinese and
# Japanese CoNLL data is one character per line). Han (unified, extensions A-H, compatibility), radicals,
# CJK symbols and punctuation (not U+3000, the ideographic space), Hiragana, Katakana, Bopomofo, CJK
# strokes, enclosed CJK and compatibility blocks, vertical and small forms, and the full-width forms
# (U+FF01-FF9F, U+FFE0-FFEE; the half-width Hangul in between stays with Hangul). Hangul syllables are
# not here: Korean puts spaces between words.
CJK_CHARS = ("\u2e80-\u2fdf\u2ff0-\u2fff\u3001-\u303f\u3040-\u309f\u30a0-\u30ff\u3100-\u312f\u3190-\u31ff"
             "\u3200-\u32ff\u3300-\u33ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\ufe10-\ufe1f\ufe30-\ufe6f"
             "\uff01-\uff9f\uffe0-\uffee\U00020000-\U0002fa1f\U00030000-\U000323af")
_CJK_WORD = re.compile(f"[{CJK_CHARS}]+")
# One CJK character; a run of other word characters (a Latin word or a number, also inside Chinese text,
# with inner - ' ’ . kept); or one other non-space character (punctuation).
_WORD = re.compile(f"[{CJK_CHARS}]|[^\\W{CJK_CHARS}]+(?:[-'’.][^\\W{CJK_CHARS}]+)*|[^\\w\\s]", re.UNICODE)
_LANG_PREFIX = re.compile(r"^([a-z]{2,3}):(?=.)")


@dataclass
class NerData:
    tokens: list[list[str]]
    tags: list[list[str]]
    source: str
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tokens)

    def subset(self, rows: list[int]) -> NerData:
        return NerData([self.tokens[i] for i in rows], [self.tags[i] for i in rows], self.source, [])

    @property
    def entity_types(self) -> list[str]:
        return sorted({t[2:] for sent in self.tags for t in sent if t != "O"})


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Words and punctuation marks with their character offsets (start, end) in `text`.

    Each CJK character (Han, kana, CJK and full-width punctuation and forms) is a word of its own, as in
    character-level CoNLL; a Latin word or number inside such text stays one word:
    `我在Apple工作了3年` -> 我 在 Apple 工 作 了 3 年."""
    return [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]


def is_cjk_word(word: str) -> bool:
    """True for a word made only of CJK characters (see `CJK_CHARS`): text that has no spaces in it."""
    return _CJK_WORD.fullmatch(word) is not None


def read_ner(path: Path | str) -> NerData:
    """CoNLL or JSONL (by suffix) into words + IOB2 tags; `NAME.conll.gz` / `NAME.jsonl.gz` are read gzipped."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found.")
    inner = Path(path.stem).suffix.lower() if _is_gzip_name(path) else path.suffix.lower()
    if inner in (".jsonl", ".json", ".ndjson"):
        return _read_jsonl(path)
    return read_conll(path)


def _is_gzip_name(path: Path) -> bool:
    return path.suffix.lower() == ".gz"


def _read_lines(path: Path) -> list[str]:
    """The file's lines: plain UTF-8 text, or gzip-compressed UTF-8 text when the name ends in .gz."""
    if not _is_gzip_name(path):
        check_text_file(path)
        try:
            return path.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError:
            raise DataError(f"{path}: not valid UTF-8. Re-save the file as UTF-8.") from None
    return _gunzip_text(path).splitlines()


def _gunzip_text(path: Path) -> str:
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except gzip.BadGzipFile:
        raise DataError(f"{path}: named .gz but not a gzip file. Rename it without .gz if it is plain text, "
                        "or compress it with `gzip`.") from None
    except (EOFError, zlib.error) as exc:
        raise DataError(f"{path}: the gzip data is damaged or cut short ({exc}); `gzip -t {path}` checks it. "
                        "Copy or download the file again.") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    if b"\x00" in raw[:65536]:
        raise DataError(f"{path}: what it decompresses to is binary, not CoNLL or JSONL text (a .tar.gz archive? "
                        "Extract it and give the file inside).")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        found = f"line {line} of the decompressed text, bytes {raw[exc.start : exc.start + 4]!r}"
        legacy = legacy_chinese_encoding(raw, exc.start)
        source, iconv = ((f"{legacy.label}-encoded {legacy.language} text", legacy.iconv) if legacy is not None
                         else ("not valid UTF-8 (probably Latin-1/Windows-1252)", "latin1"))
        target = path.with_name(f"{Path(path.stem).stem}.utf8{Path(path.stem).suffix}.gz")
        raise DataError(f"{path}: {source} ({found}). Convert it to UTF-8, e.g. "
                        f"`gunzip -c {path} | iconv -f {iconv} -t UTF-8 | gzip > {target}`.") from None


def read_conll(path: Path | str) -> NerData:
    path = Path(path)
    lines = _read_lines(path)
    sentences: list[list[tuple[str, str, int]]] = []
    current: list[tuple[str, str, int]] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            if current:
                sentences.append(current)
                current = []
            continue
        parts = line.split("\t") if "\t" in line else line.split()
        parts = [p for p in parts if p.strip()] if len(parts) > 2 else parts
        if parts[0].startswith("-DOCSTART-"):
            continue
        if len(parts) < 2 or not parts[-1].strip():
            raise DataError(f"{path} line {lineno}: expected 'token<TAB>tag', got {line!r}. Each word goes on its own "
                            "line with its tag in the last column; sentences are separated by a blank line.")
        tag = parts[-1].strip()
        if tag != "O" and not _TAG.match(tag):
            raise DataError(f"{path} line {lineno}: tag {tag!r} is not O or B-/I-/E-/S-TYPE.")
        current.append((parts[0].strip() or parts[0], tag, lineno))
    if current:
        sentences.append(current)
    if not sentences:
        raise DataError(f"{path}: no sentences. Expected CoNLL lines 'token<TAB>tag' with blank lines between sentences.")
    tokens = [[w for w, _, _ in s] for s in sentences]
    tokens = _strip_language_prefix(tokens)
    raw_tags = [[t for _, t, _ in s] for s in sentences]
    line_numbers = [[n for _, _, n in s] for s in sentences]
    tags, warnings = normalise_tags(raw_tags, path, line_numbers)
    return NerData(tokens, tags, str(path), warnings)


def _strip_language_prefix(tokens: list[list[str]]) -> list[list[str]]:
    """WikiANN writes every token as `en:word`: strip the prefix when every token has the same one."""
    flat = [w for sent in tokens for w in sent[:20]][:2000]
    prefixes = {m.group(1) if (m := _LANG_PREFIX.match(w)) else None for w in flat}
    if len(prefixes) != 1 or None in prefixes:
        return tokens
    cut = len(next(iter(prefixes)) or "") + 1
    return [[w[cut:] if _LANG_PREFIX.match(w) else w for w in sent] for sent in tokens]


def normalise_tags(tags: list[list[str]], path: Path, line_numbers: list[list[int]] | None = None
                   ) -> tuple[list[list[str]], list[str]]:
    """Any of BIO/IOB1/IOB2/IOBES/BILOU -> IOB2; invalid `I-` starts repaired (counted in a warning)."""
    uses_b = any(t.startswith("B-") for sent in tags for t in sent)
    out: list[list[str]] = []
    repaired, first_line = 0, None
    for s, sent in enumerate(tags):
        fixed: list[str] = []
        prev = "O"
        for i, tag in enumerate(sent):
            if tag == "O":
                fixed.append("O")
                prev = tag
                continue
            m = _TAG.match(tag)
            assert m is not None  # checked by the readers
            prefix, kind = m.group(1), m.group(2)
            if prefix in ("S", "U"):
                prefix = "B"
            elif prefix in ("E", "L"):
                prefix = "I"
            if prefix == "I" and (prev == "O" or prev[2:] != kind):
                if uses_b:  # IOB1 files start entities with I- legitimately; elsewhere it is an error
                    repaired += 1
                    if first_line is None and line_numbers is not None:
                        first_line = line_numbers[s][i]
                prefix = "B"
            new = f"{prefix}-{kind}"
            fixed.append(new)
            prev = new
        out.append(fixed)
    warnings = []
    if repaired:
        where = f", first at line {first_line}" if first_line is not None else ""
        warnings.append(f"{path}: {repaired} invalid tag sequence(s) (I-X not after B-X/I-X) repaired to B-X{where}.")
    return out, warnings


def _read_jsonl(path: Path) -> NerData:
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    for lineno, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} line {lineno}: not valid JSON ({exc.msg}).") from None
        words, word_tags = _record_to_words(obj, path, lineno)
        if words:
            tokens.append(words)
            tags.append(word_tags)
    if not tokens:
        raise DataError(f"{path}: no examples. Expected lines like {{\"text\": ..., \"entities\": [{{\"start\", \"end\", "
                        "\"label\"}}]}}.")
    norm, warnings = normalise_tags(tags, path)
    return NerData(tokens, norm, str(path), warnings)


def _record_to_words(obj: dict[str, Any], path: Path, lineno: int) -> tuple[list[str], list[str]]:
    if "tokens" in obj:
        tokens = [str(w) for w in obj["tokens"]]
        given = [str(t) for t in obj.get("tags", obj.get("ner_tags", []))]
        if len(tokens) != len(given):
            raise DataError(f"{path} line {lineno}: {len(tokens)} tokens but {len(given)} tags.")
        bad = [t for t in given if t != "O" and not _TAG.match(t)]
        if bad:
            raise DataError(f"{path} line {lineno}: tag {bad[0]!r} is not O or B-/I-/E-/S-TYPE.")
        return tokens, given
    text = obj.get("text")
    if not isinstance(text, str):
        raise DataError(f"{path} line {lineno}: no 'text' string (or 'tokens' + 'tags').")
    spans = obj.get("entities", obj.get("spans", obj.get("labels", [])))
    words = split_words(text)
    word_tags = ["O"] * len(words)
    for span in sorted(_spans(spans, path, lineno, len(text)), key=lambda s: s[0]):
        start, end, label = span
        inside = [i for i, (_, ws, we) in enumerate(words) if ws < end and we > start]
        if not inside:
            raise DataError(f"{path} line {lineno}: span {start}-{end} ({text[start:end]!r}) covers no word.")
        if any(word_tags[i] != "O" for i in inside):
            raise DataError(f"{path} line {lineno}: span {start}-{end} overlaps another entity; spans must not overlap.")
        for j, i in enumerate(inside):
            word_tags[i] = f"{'B' if j == 0 else 'I'}-{label}"
    return [w for w, _, _ in words], word_tags


def _spans(spans: Any, path: Path, lineno: int, length: int) -> list[tuple[int, int, str]]:
    out = []
    for span in spans or []:
        if isinstance(span, dict):
            start, end, label = span.get("start"), span.get("end"), span.get("label", span.get("type"))
        elif isinstance(span, list | tuple) and len(span) == 3:
            start, end, label = span
        else:
            raise DataError(f"{path} line {lineno}: entity {span!r} is not {{start, end, label}} or [start, end, label].")
        if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= length or not label:
            raise DataError(f"{path} line {lineno}: entity {span!r} has bad offsets for a text of {length} characters "
                            "(need 0 <= start < end <= len(text)) or no label.")
        out.append((start, end, str(label)))
    return out
