"""Pre-flight validation: every fatal case raises DataError naming file/row/column; every warning case warns."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from fmkit.data.labeled import LabeledTexts, read_labeled
from fmkit.data.readers import read_table
from fmkit.data.validate import stratified_split, validate_classification
from fmkit.errors import DataError


def labeled(pairs: list[tuple[str, str]], source: str = "train.csv") -> LabeledTexts:
    return LabeledTexts(texts=[t for t, _ in pairs], labels=[lab for _, lab in pairs], source=source)


BALANCED = [(f"text number {i}", "a" if i % 2 else "b") for i in range(20)]


# --- fatal -------------------------------------------------------------------------------------

def test_empty_text_names_the_rows_and_column(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("text,label\nfine,a\n   ,b\nok,a\n,b\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_labeled(path)
    message = str(info.value)
    assert str(path) in message and "2 row(s)" in message and "column 'text'" in message
    assert "first at row 2, 4" in message  # data rows, 1-based, header excluded


def test_null_texts_in_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "fine", "label": "a"}\n{"text": null, "label": "b"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"empty text in column 'text' \(first at row 2\)"):
        read_labeled(path)


def test_empty_label_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("text,label\nfine,a\nalso fine,\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"no label in column 'label' \(first at row 2\)"):
        read_labeled(path)


@pytest.mark.parametrize("spelling", ["NaN", "nan", "null", "None", "NULL", "<NA>", "n/a"])
def test_a_spelled_out_missing_label_is_missing_not_a_class(tmp_path: Path, spelling: str) -> None:
    # Spreadsheet and pandas exports write these into empty cells; they must not become a class "NaN".
    path = tmp_path / "train.csv"
    path.write_text(f"text,label\nfine,a\nalso fine,b\nthird,{spelling}\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"1 row\(s\) have no label in column 'label' \({spelling!r} count as "
                                        r"missing\) \(first at row 3\)"):
        read_labeled(path)


def test_null_labels_in_jsonl_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "fine", "label": "a"}\n{"text": "ok", "label": null}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"no label in column 'label' \(first at row 2\)"):
        read_labeled(path)


def test_a_label_that_only_contains_a_missing_spelling_is_a_class(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("text,label\nfine,nonexistent\nalso fine,null hypothesis\n", encoding="utf-8")
    assert read_labeled(path).labels == ["nonexistent", "null hypothesis"]


def test_one_class_only() -> None:
    with pytest.raises(DataError, match=r"train\.csv: every row has the same label \('a'\)"):
        validate_classification(labeled([("x", "a"), ("y", "a")]), None)


def test_eval_labels_never_seen_in_training() -> None:
    evaluation = labeled([("p", "a"), ("q", "c"), ("r", "d")], source="eval.csv")
    with pytest.raises(DataError) as info:
        validate_classification(labeled(BALANCED), evaluation)
    message = str(info.value)
    assert message.startswith("eval.csv:") and "'c', 'd'" in message and "first at row 2" in message


def test_same_text_and_label_column(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("text,label\na,b\n", encoding="utf-8")
    with pytest.raises(DataError, match="both 'text'"):
        read_labeled(path, text_column="text", label_column="text")


def test_undecodable_bytes_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(b"text,label\nfine,a\ncaf\xe9 au lait,b\n")
    with pytest.raises(DataError) as info:
        read_table(path)
    message = str(info.value)
    assert "line 3 is not valid UTF-8" in message and "iconv" in message


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), bytes(range(256)) * 4])
def test_binary_file_is_not_a_table(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match="not a table"):
        read_table(path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [("train.csv", "", "the file is empty"), ("train.csv", "\n\n  \n", "the file is empty"),
     ("train.csv", "text,label\n", "no data rows|no rows"),
     ("train.jsonl", '{"text": "a", "label": "b"}\nnot json\n', "line 2 is not valid JSON"),
     ("train.jsonl", '["a", "b"]\n', "not a JSON object"),
     ("train.parquet", "text,label\na,b\n", "cannot read as Parquet")],
)
def test_files_that_are_not_tables(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message) as info:
        read_labeled(path)
    assert str(path) in str(info.value)


# --- warnings ----------------------------------------------------------------------------------

def test_clean_data_has_no_warnings() -> None:
    assert validate_classification(labeled(BALANCED), labeled([("new text", "a")], "eval.csv")).warnings == []


def test_duplicate_texts_warn() -> None:
    report = validate_classification(labeled([*BALANCED, ("text number 1", "a"), ("text number 3 ", "a")]), None)
    assert any("2 duplicate text(s)" in w for w in report.warnings), report.warnings


def test_conflicting_labels_warn() -> None:
    report = validate_classification(labeled([*BALANCED, ("text number 1", "b")]), None)
    assert any("1 text(s) appear with different labels" in w and "text number 1" in w for w in report.warnings)


def test_heavy_imbalance_warns_and_names_the_rare_class() -> None:
    pairs = [(f"t{i}", "common") for i in range(50)] + [(f"r{i}", "rare") for i in range(4)]
    report = validate_classification(labeled(pairs), None)
    assert any("imbalanced (12:1; 'rare' has 4 examples)" in w and "--class-weights auto" in w for w in report.warnings)


def test_numbers_mixed_with_names_warn_naming_both_spellings() -> None:
    pairs = [(f"t{i}", lab) for i, lab in enumerate(["0", "1", "2", "negative", "neutral", "positive"] * 4)]
    report = validate_classification(labeled(pairs), None)
    assert report.warnings == [
        "train.csv: the labels mix numbers ('0', '1', '2') and names ('negative', 'neutral', 'positive'), so "
        "they train 6 classes. If a number and a name mean the same class (for example '0' and 'negative'), "
        "write every row with one spelling."
    ]


@pytest.mark.parametrize("labels", [["0", "1", "2"], ["1.5", "-2", "10"], ["neg", "pos", "4star"]])
def test_labels_that_are_all_numbers_or_all_names_do_not_warn(labels: list[str]) -> None:
    pairs = [(f"t{i}", lab) for i, lab in enumerate(labels * 4)]
    assert validate_classification(labeled(pairs), None).warnings == []


def test_mild_imbalance_does_not_warn() -> None:
    pairs = [(f"t{i}", "common") for i in range(30)] + [(f"r{i}", "rare") for i in range(4)]
    assert validate_classification(labeled(pairs), None).warnings == []


def test_train_eval_overlap_warns() -> None:
    evaluation = labeled([("text number 0", "b"), ("text number 5", "a"), ("unseen", "a")], source="eval.csv")
    report = validate_classification(labeled(BALANCED), evaluation)
    assert report.warnings == [
        "eval.csv: 2 eval text(s) also appear in the training data; eval metrics will be optimistic."
    ]


# --- the split used without an eval file --------------------------------------------------------

def test_stratified_split_keeps_every_class_and_is_seeded() -> None:
    pairs = [(f"a{i}", "a") for i in range(40)] + [(f"b{i}", "b") for i in range(20)] + [("c0", "c"), ("c1", "c")]
    data = labeled(pairs)
    train, evaluation = stratified_split(data, 0.1, seed=3)
    assert Counter(evaluation.labels) == {"a": 4, "b": 2, "c": 1}
    assert len(train) + len(evaluation) == len(data)
    assert set(train.texts).isdisjoint(evaluation.texts)
    # Rows still point at the original file's rows, for error messages.
    assert all(data.texts[r - 1] == t for r, t in zip(evaluation.rows, evaluation.texts, strict=True))
    again = stratified_split(data, 0.1, seed=3)
    assert again[1].texts == evaluation.texts
    assert stratified_split(data, 0.1, seed=4)[1].texts != evaluation.texts


def test_split_of_a_tiny_file_asks_for_an_eval_file() -> None:
    with pytest.raises(DataError, match="give an --eval file"):
        stratified_split(labeled([("x", "a"), ("y", "b")]), 0.1, seed=0)
