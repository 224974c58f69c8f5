"""A file in a legacy Chinese encoding (GBK/GB18030, Big5) is named as such with the command that converts it,
never read as garbage nor sent to the Latin-1 advice; Korean, Japanese and Latin-1 bytes are not taken for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fmkit.data.conll import read_ner
from fmkit.data.labeled import read_labeled
from fmkit.data.legacy_encodings import BIG5, GB18030, legacy_chinese_encoding
from fmkit.data.readers import read_table
from fmkit.errors import DataError
from tests.integration.test_bad_input import assert_clean_failure, train_args

SIMPLIFIED = ["这家酒店很好，服务态度也不错。", "房间太小了，而且很吵！", "早餐种类很多，味道一般。", "位置方便，离地铁站很近。"]
TRADITIONAL = ["這家酒店很好，服務態度也不錯。", "房間太小了，而且很吵！", "早餐種類很多，味道一般。", "位置方便，離地鐵站很近。"]
KOREAN = "이 호텔은 정말 좋았습니다. 직원들도 친절하고 방도 깨끗했어요."
JAPANESE = "このホテルはとても良かったです。スタッフの対応も丁寧でした。"


def csv_bytes(texts: list[str], encoding: str) -> bytes:
    rows = ["text,label", *(f"{text},{'pos' if i % 2 == 0 else 'neg'}" for i, text in enumerate(texts))]
    return ("\n".join(rows) + "\n").encode(encoding)


def failure(path: Path, content: bytes) -> str:
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        read_table(path)
    return str(info.value)


def test_a_gb18030_csv_is_named_with_the_iconv_line(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    message = failure(path, csv_bytes(SIMPLIFIED, "gb18030"))
    assert message.startswith(f"{path}: looks like GBK/GB18030-encoded Chinese text, not UTF-8 (line 2: bytes ")
    assert f"`iconv -f GB18030 -t UTF-8 {path} > {tmp_path / 'reviews.utf8.csv'}`" in message
    assert "encoding='gb18030'" in message and "Latin-1" not in message


def test_traditional_chinese_in_gbk_is_still_gbk(tmp_path: Path) -> None:
    message = failure(tmp_path / "t.csv", csv_bytes(TRADITIONAL, "gb18030"))
    assert "GBK/GB18030-encoded Chinese text" in message


def test_a_big5_csv_is_named_with_the_iconv_line(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    message = failure(path, csv_bytes(TRADITIONAL, "cp950"))
    assert message.startswith(f"{path}: looks like Big5-encoded traditional Chinese text, not UTF-8 (line 2: ")
    assert f"`iconv -f CP950 -t UTF-8 {path} > " in message and "GB18030" not in message


def test_the_line_is_the_first_that_fails(tmp_path: Path) -> None:
    content = b"text,label\nplain ascii,pos\n" + "很好的酒店，推荐大家来住。,pos\n".encode("gb18030")
    assert "(line 3: bytes " in failure(tmp_path / "t.csv", content)


def test_past_the_first_64_kib_it_is_named_too(tmp_path: Path) -> None:
    # The head check passes (all ASCII); the whole-file decode finds the Chinese further on.
    content = b"text,label\n" + b"plain ascii text,pos\n" * 4000 + csv_bytes(SIMPLIFIED, "gb18030").split(b"\n", 1)[1]
    assert "GBK/GB18030-encoded Chinese text, not UTF-8 (line 4002: " in failure(tmp_path / "t.csv", content)


def test_latin1_keeps_its_advice(tmp_path: Path) -> None:
    message = failure(tmp_path / "t.csv", "text,label\nnaïve café,pos\ninformação,neg\n".encode("latin-1"))
    assert "line 2 is not valid UTF-8" in message and "iconv -f latin1 -t utf-8" in message


@pytest.mark.parametrize(("text", "encoding"), [
    (KOREAN, "euc_kr"), (KOREAN, "cp949"), (JAPANESE, "shift_jis"), (JAPANESE, "euc_jp"),
    ("A informação sobre a situação", "latin-1"), ("ção", "latin-1"),  # one GB2312-shaped pair is no evidence
])
def test_korean_japanese_and_latin1_bytes_are_not_taken_for_chinese(text: str, encoding: str) -> None:
    raw = b"text,label\n" + text.encode(encoding) + b",pos\n"
    assert legacy_chinese_encoding(raw, len(b"text,label\n")) is None


def test_the_diagnosis_of_each_chinese_encoding() -> None:
    simplified, traditional = "".join(SIMPLIFIED), "".join(TRADITIONAL)
    assert legacy_chinese_encoding(simplified.encode("gb18030"), 0) is GB18030
    assert legacy_chinese_encoding(traditional.encode("cp950"), 0) is BIG5
    # A character cut by the end of what was read (the 64 KiB head) is no reason to doubt it.
    assert legacy_chinese_encoding(simplified.encode("gb18030")[:-1], 0) is GB18030


def test_mixed_script_utf8_reads_without_complaint(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    rows = ["text,label", "这家酒店很好 very good,pos", "Отель плохой 差,neg", "ホテル 호텔 hôtel,pos", "فندق جيد,neg"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert read_labeled(path).texts[0] == "这家酒店很好 very good"


def test_a_gbk_conll_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "zh.conll"
    path.write_bytes("银\tB-ORG\n行\tI-ORG\n很\tO\n好\tO\n\n王\tB-PER\n先\tO\n生\tO\n说\tO\n".encode("gb18030"))
    with pytest.raises(DataError, match="GBK/GB18030-encoded Chinese text"):
        read_ner(path)


def test_train_on_a_gb18030_csv_fails_cleanly(tmp_path: Path, tiny_model: Path) -> None:
    path, run = tmp_path / "reviews.csv", tmp_path / "run"
    path.write_bytes(csv_bytes(SIMPLIFIED * 3, "gb18030"))
    assert_clean_failure(train_args(path, run, tiny_model), [str(path), "GBK/GB18030", "iconv -f GB18030 -t UTF-8"])
    assert not run.exists()
