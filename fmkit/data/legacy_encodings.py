"""Name the legacy Chinese encoding of a file that is not UTF-8, so that it is converted, never read as garbage.

Windows in mainland China saves CSV files as GBK (GB2312 extended; GB18030 is the superset that decodes
both), in Taiwan and Hong Kong as Big5. Without this, such a file got the Latin-1 advice, and converting
Chinese text from Latin-1 gives mojibake that trains without complaint.

The two are told apart, and from their Korean and Japanese cousins, by what the bytes decode to (every
East Asian double-byte encoding decodes much of the others' bytes without error):
- Korean (EUC-KR/CP949) decodes as GB18030 into common Han characters, but as CP949 into Hangul;
- Japanese EUC-JP decodes as Big5 into Han characters, but as EUC-JP into kana, which Japanese never lacks;
- Big5 decodes as GB18030 into rare characters (few are in GB2312, the set of common simplified ones),
  while simplified GBK text rarely decodes as Big5 at all and, when it does, is almost all GB2312;
- Shift-JIS decodes as GB18030 into characters outside GB2312.
"""

from __future__ import annotations

import codecs
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from fmkit.data.coverage import script_of

# Enough text to judge by, from the line that failed; the rest of a large file adds nothing.
_WINDOW_BYTES = 64 * 1024
# Below this many non-ASCII characters, a few accented Latin-1 letters could pass for Chinese by chance
# (Portuguese "ção" is one valid GB2312 character followed by "o").
_MIN_CHARACTERS = 4
# Real Chinese text is almost all Han characters and CJK punctuation; mis-decoded bytes of another
# encoding fall short of this (or fail to decode at all).
_CHINESE_SHARE = 0.9
# Of GBK text, simplified Chinese is ~100% GB2312 characters and traditional ~65%; Big5 or Shift-JIS bytes
# decoded as GB18030 give ~35% and ~0%.
_GB2312_SHARE_GBK = 0.5
_GB2312_SHARE_SIMPLIFIED = 0.9
_HANGUL_SHARE_KOREAN = 0.9
_KANA_SHARE_JAPANESE = 0.2


@dataclass(frozen=True)
class LegacyEncoding:
    label: str  # as the user knows it
    codec: str  # Python's name: the decoding the diagnosis checked
    iconv: str  # iconv's name (glibc and libiconv both know these)
    language: str


GB18030 = LegacyEncoding("GBK/GB18030", "gb18030", "GB18030", "Chinese")
BIG5 = LegacyEncoding("Big5", "cp950", "CP950", "traditional Chinese")  # cp950: Big5 as Windows writes it


def legacy_chinese_encoding(raw: bytes, offset: int) -> LegacyEncoding | None:
    """GB18030 or BIG5 when the bytes from the line holding `offset` (where UTF-8 failed) decode cleanly as
    that encoding into plausible Chinese text; None for anything else (Latin-1, Korean, Japanese, binary)."""
    window = _window(raw, offset)
    if _is_korean(window) or _is_japanese(window):
        return None
    gbk = _decode(window, GB18030.codec)
    common = _share(gbk, _in_gb2312)
    if not _at_least(common, _GB2312_SHARE_SIMPLIFIED) and _at_least(
            _share(_decode(window, BIG5.codec), _is_chinese), _CHINESE_SHARE):
        return BIG5
    if _at_least(_share(gbk, _is_chinese), _CHINESE_SHARE) and _at_least(common, _GB2312_SHARE_GBK):
        return GB18030
    return None


def conversion_advice(path: str, target: str, encoding: LegacyEncoding) -> str:
    """The commands that convert the file: iconv, and Python for who has no iconv (Windows)."""
    return (f"Convert it: `iconv -f {encoding.iconv} -t UTF-8 {path} > {target}` (in Python: read it with "
            f"encoding='{encoding.codec}' and write it with encoding='utf-8').")


def _window(raw: bytes, offset: int) -> bytes:
    # A line start is a character boundary in all these encodings: no multi-byte character holds b"\n".
    start = raw.rfind(b"\n", 0, offset) + 1
    return raw[start : start + _WINDOW_BYTES]


def _decode(window: bytes, codec: str) -> str | None:
    """The text, or None if the bytes are not valid in `codec`; a character cut by the window's end is no error."""
    try:
        return codecs.getincrementaldecoder(codec)().decode(window, final=False)
    except UnicodeDecodeError:
        return None


def _share(text: str | None, accept: Callable[[str], bool]) -> float | None:
    """The share of the non-ASCII characters of `text` that `accept` takes; None for too few to judge by."""
    if text is None:
        return None
    foreign = [char for char in text if ord(char) > 0x7F]
    if len(foreign) < _MIN_CHARACTERS:
        return None
    return sum(map(accept, foreign)) / len(foreign)


def _at_least(share: float | None, floor: float) -> bool:
    return share is not None and share >= floor


def _is_korean(window: bytes) -> bool:
    return _at_least(_share(_decode(window, "cp949"), lambda char: script_of(char) == "Hangul"), _HANGUL_SHARE_KOREAN)


def _is_japanese(window: bytes) -> bool:
    return _at_least(_share(_decode(window, "euc_jp"), lambda char: script_of(char) == "Kana"), _KANA_SHARE_JAPANESE)


def _is_chinese(char: str) -> bool:
    """A Han character, or punctuation and full-width forms as Chinese text writes them (，。！ＡＢ１)."""
    return (script_of(char) == "Han" or unicodedata.category(char).startswith("P")
            or unicodedata.east_asian_width(char) == "F")


def _in_gb2312(char: str) -> bool:
    if not _is_chinese(char):
        return False
    try:
        char.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True
