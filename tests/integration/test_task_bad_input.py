"""Bad input for the tasks on the task contract (regression, multi-label, text pairs): exit 2, one line naming
the row or column and the fix, no traceback, and the existing run (trained with --overwrite pointed at it)
byte-identical afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_bad_input import assert_clean_failure, existing_run, train_args

__all__ = ["existing_run"]  # the module-scoped fixture, shared with test_bad_input.py


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def rows(n: int, target: str) -> str:
    return "".join(f"text number {i} is here,{target.format(i=i)}\n" for i in range(n))


@pytest.mark.parametrize(("name", "content", "extra", "expected"), [
    ("words.csv", "text,score\n" + rows(11, "{i}") + "last one,high\n", [],
     ["row 12", "'high'", "not a number", "--task classification"]),
    ("nan.csv", "text,score\n" + rows(11, "{i}") + "last one,NaN\n", [], ["row 12", "missing or infinite"]),
    ("inf.csv", "text,score\n" + rows(5, "{i}") + "x,inf\n" + rows(6, "{i}"), [], ["row 6", "missing or infinite"]),
    ("constant.csv", "text,score\n" + rows(12, "2.5"), [], ["every target is 2.5", "nothing to learn"]),
    ("pairs.csv", "sentence1,other,score\n" + rows(12, "x,{i}"), ["--text-column", "sentence1,sentence2"],
     ["no text column 'sentence2'", "Columns present: sentence1, other, score"]),
])
def test_regression_bad_data(existing_run: Path, tiny_model: Path, tmp_path: Path, name: str, content: str,
                             extra: list[str], expected: list[str]) -> None:
    data = write(tmp_path / name, content)
    assert_clean_failure(train_args(data, existing_run, tiny_model, "--task", "regression", *extra), expected,
                         run=existing_run)


def test_multilabel_two_separators_are_explained(existing_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    data = write(tmp_path / "tags.csv", "text,tags\n" + "".join(f"text {i},a|b\n" for i in range(10))
                 + "odd one,c;d\n")
    assert_clean_failure(train_args(data, existing_run, tiny_model, "--task", "multilabel"),
                         ["both '|' and ';'", "data.label_separator"], run=existing_run)


def test_multilabel_label_only_in_eval_is_named(existing_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    data = write(tmp_path / "tags.csv", "text,tags\n" + "".join(f"text {i},{'ab'[i % 2]}|c\n" for i in range(12)))
    held_out = write(tmp_path / "eval.csv", "text,tags\nsome text,a|zebra\n")
    assert_clean_failure(train_args(data, existing_run, tiny_model, "--task", "multilabel", "--eval", str(held_out)),
                         ["'zebra'", "never occur in the training data"], run=existing_run)


def test_unknown_task_and_wrong_metric(existing_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    data = write(tmp_path / "t.csv", "text,score\n" + rows(12, "{i}"))
    assert_clean_failure(train_args(data, existing_run, tiny_model, "--task", "regresion"),
                         ["unknown task 'regresion'", "Did you mean 'regression'"], run=existing_run)
    assert_clean_failure(train_args(data, existing_run, tiny_model, "--task", "regression",
                                    "--set", "eval.primary_metric=accuracy"),
                         ["'accuracy' is not a metric of --task regression", "spearman"], run=existing_run)


def test_pair_model_refuses_single_text_files(existing_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    data = write(tmp_path / "p.csv", "premise,hypothesis,label\n"
                 + "".join(f"good film {i},{'great' if i % 2 else 'awful'} plot,{'ab'[i % 2]}\n" for i in range(16)))
    run = tmp_path / "pair-run"
    from fmkit.cli import main

    assert main(["train", "--data", str(data), "--model", str(tiny_model), "--output", str(run), "--quiet",
                 "--epochs", "1"]) == 0
    single = write(tmp_path / "single.csv", "text\nhello there\n")
    assert_clean_failure(["predict", str(run), str(single)], ["no column 'premise', 'hypothesis'", "--text-column A,B"],
                         run=run)
