"""Readers: CSV/TSV/JSONL/Parquet, delimiter and header sniffing, column auto-detection, streaming texts."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from fmkit.data.labeled import read_labeled
from fmkit.data.readers import iter_texts, read_table
from fmkit.errors import DataError

ROWS = [("shares jump after earnings beat", "positive"), ("bank cuts jobs, stock falls", "negative"),
        ('he said "fine", then left', "neutral"), ("profit rises; outlook raised", "positive")]


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def frame(rows: list[tuple[str, str]] = ROWS, text: str = "text", label: str = "label") -> pd.DataFrame:
    return pd.DataFrame({text: [r[0] for r in rows], label: [r[1] for r in rows]})


def assert_rows(path: Path, **columns: str) -> None:
    data = read_labeled(path, **columns)  # type: ignore[arg-type]
    assert data.texts == [r[0] for r in ROWS]
    assert data.labels == [r[1] for r in ROWS]
    assert data.source == str(path)


def test_csv_with_header(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    frame().to_csv(path, index=False)  # quotes the commas and the quote marks
    assert_rows(path)


def test_tsv_with_header(tmp_path: Path) -> None:
    path = write(tmp_path / "train.tsv", "sentence\tcategory\n" + "".join(f"{t}\t{lab}\n" for t, lab in ROWS))
    assert_rows(path)  # 'sentence' and 'category' are auto-detected


def test_headerless_two_column_tsv_text_then_label(tmp_path: Path) -> None:
    # Like AG News: no header, text<TAB>label, labels repeat down the column.
    path = write(tmp_path / "dev.tsv", "".join(f"{t}\t{lab}\n" for t, lab in ROWS))
    df = read_table(path)
    assert list(df.columns) == ["text", "label"]
    assert len(df) == len(ROWS)  # the first row is data, not a header
    assert_rows(path)


def test_headerless_two_column_csv_label_then_text(tmp_path: Path) -> None:
    body = "".join(f'{lab},"{t.replace(chr(34), chr(34) * 2)}"\n' for t, lab in ROWS)
    path = write(tmp_path / "train.csv", body)
    df = read_table(path)
    assert list(df.columns) == ["label", "text"]
    assert_rows(path)


def test_delimiter_is_sniffed_without_a_known_suffix(tmp_path: Path) -> None:
    body = "text;label\n" + "".join(f"{t.replace(';', ',')};{lab}\n" for t, lab in ROWS)
    df = read_table(write(tmp_path / "train.txt", body))
    assert list(df.columns) == ["text", "label"]
    assert df["label"].tolist() == [r[1] for r in ROWS]


def test_tab_separated_file_with_a_txt_suffix(tmp_path: Path) -> None:
    body = "label\ttext\n" + "".join(f"{lab}\t{t}\n" for t, lab in ROWS)
    assert_rows(write(tmp_path / "train.txt", body))


def test_jsonl(tmp_path: Path) -> None:
    lines = [json.dumps({"id": i, "text": t, "label": lab}) for i, (t, lab) in enumerate(ROWS)]
    assert_rows(write(tmp_path / "train.jsonl", "\n".join(lines) + "\n\n"))  # blank lines are skipped


def test_json_array(tmp_path: Path) -> None:
    records = [{"content": t, "target": lab} for t, lab in ROWS]
    assert_rows(write(tmp_path / "train.json", json.dumps(records)))


def test_jsonl_numeric_labels_become_strings(tmp_path: Path) -> None:
    lines = [json.dumps({"text": t, "label": i % 2}) for i, (t, _) in enumerate(ROWS)]
    data = read_labeled(write(tmp_path / "train.jsonl", "\n".join(lines)))
    assert data.labels == ["0", "1", "0", "1"]


def test_parquet(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    frame(text="review", label="sentiment").to_parquet(path)
    assert_rows(path)


def test_parquet_integer_labels(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    pd.DataFrame({"text": [r[0] for r in ROWS], "label": [0, 1, 2, 0]}).to_parquet(path)
    assert read_labeled(path).labels == ["0", "1", "2", "0"]


def test_columns_are_found_case_insensitively(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    frame(text="Text", label="Label").to_csv(path, index=False)
    assert_rows(path)


def test_explicit_columns_win_over_auto_detection(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    df = frame(text="body", label="tag")
    df["text"] = "decoy"
    df.to_csv(path, index=False)
    assert_rows(path, text_column="body", label_column="tag")


def test_utf8_bom_crlf_and_multiline_quoted_cells(tmp_path: Path) -> None:
    body = '\ufefftext,label\r\n"line one\r\nline two",a\r\nplain,b\r\n'
    data = read_labeled(write(tmp_path / "train.csv", body.encode("utf-8")))
    assert data.texts == ["line one\r\nline two", "plain"]
    assert data.labels == ["a", "b"]


def test_empty_cells_stay_empty_strings(tmp_path: Path) -> None:
    df = read_table(write(tmp_path / "t.csv", "text,label,note\nNA,x,\nnull,y,\n"))
    assert df["text"].tolist() == ["NA", "null"]  # not turned into missing values
    assert df["note"].tolist() == ["", ""]


def test_unknown_columns_are_listed(tmp_path: Path) -> None:
    path = write(tmp_path / "train.csv", "body,tag\nsome text,a\nmore text,b\n")
    with pytest.raises(DataError) as info:
        read_labeled(path)
    message = str(info.value)
    assert str(path) in message and "body, tag" in message and "--text-column" in message


def test_missing_file_lists_nearby_data_files(tmp_path: Path) -> None:
    write(tmp_path / "train.csv", "text,label\na,b\n")
    with pytest.raises(DataError, match=r"file not found\. Files here: train\.csv"):
        read_table(tmp_path / "trian.csv")


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a folder"):
        read_table(tmp_path)


# --- streaming texts for `fmkit predict` ---------------------------------------------------------

def test_iter_texts_plain_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "new.txt", "first line\nsecond, with a comma\n\nfourth\n")
    assert list(iter_texts(path)) == ["first line", "second, with a comma", "", "fourth"]


def test_iter_texts_csv_column(tmp_path: Path) -> None:
    path = tmp_path / "new.csv"
    frame().to_csv(path, index=False)
    assert list(iter_texts(path)) == [r[0] for r in ROWS]
    assert list(iter_texts(path, text_column="label")) == [r[1] for r in ROWS]


def test_iter_texts_headerless_tsv_picks_the_long_column(tmp_path: Path) -> None:
    path = write(tmp_path / "new.tsv", "".join(f"{t}\t{lab}\n" for t, lab in ROWS))
    assert list(iter_texts(path)) == [r[0] for r in ROWS]


def test_iter_texts_jsonl_and_parquet(tmp_path: Path) -> None:
    jsonl = write(tmp_path / "new.jsonl", "\n".join(json.dumps({"sentence": t}) for t, _ in ROWS) + "\n")
    assert list(iter_texts(jsonl)) == [r[0] for r in ROWS]
    parquet = tmp_path / "new.parquet"
    frame().to_parquet(parquet)
    assert list(iter_texts(parquet)) == [r[0] for r in ROWS]


def test_iter_texts_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("one\r\ntwo\n"))
    assert list(iter_texts("-")) == ["one", "two"]


def test_iter_texts_is_lazy(tmp_path: Path) -> None:
    path = write(tmp_path / "big.txt", "".join(f"text {i}\n" for i in range(100_000)))
    stream = iter_texts(path)
    assert next(stream) == "text 0"  # a generator: nothing forces the whole file into a list


def test_iter_texts_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        list(iter_texts(tmp_path / "missing.txt"))
