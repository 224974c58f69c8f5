"""Bad input through the CLI: exit code 2, one clear line on stderr, no traceback, nothing saved is touched.

Every bad `fmkit train` below points at an existing run with --overwrite (the worst case): its files must
be byte-identical afterwards. Warnings (duplicates, conflicts, imbalance, overlap) print but do not fail.

A few cases run `python -m fmkit` in a subprocess (run_cli), exactly as a user would; the others call the
same entry point, `fmkit.cli.main`, in this process: importing torch in a fresh process per case would
cost ~4 s of CPU each, and the exit-code mapping under test is the same code.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import subprocess
from pathlib import Path

import pytest

import fmkit
from fmkit.cli import main
from tests.conftest import run_cli, write_sentiment_csv


@pytest.fixture(scope="module")
def existing_run(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad-input")
    run = root / "run"
    fmkit.train(data=str(write_sentiment_csv(root / "train.csv", n=60)), model=str(tiny_model), epochs=1,
                output=str(run), **{"train.progress": False, "strategy.name": "full", "train.batch_size": 16})
    assert (run / "model" / "model.safetensors").is_file() and (run / "metrics.json").is_file()
    return run


@pytest.fixture(scope="module")
def good_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sentiment_csv(tmp_path_factory.mktemp("good") / "train.csv", n=40)


def snapshot(run: Path) -> dict[str, str]:
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(run.rglob("*"))
            if p.is_file()}


def run_in_process(args: list[str]) -> subprocess.CompletedProcess[str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def assert_clean_failure(args: list[str], expected: list[str], run: Path | None = None, subprocess_cli: bool = False
                         ) -> str:
    """Run the CLI; it must exit 2 with exactly one `error:` line naming what `expected` lists, and no traceback."""
    before = snapshot(run) if run else None
    proc = run_cli(*args, timeout=300) if subprocess_cli else run_in_process(args)
    stderr = proc.stderr
    assert proc.returncode == 2, (proc.returncode, stderr)
    assert "Traceback" not in stderr and "Error:" not in stderr.replace("error:", ""), stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr  # one clear line
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])
    if run is not None:
        assert snapshot(run) == before, "an existing run was modified by a failing command"
    return lines[0]


def train_args(data: Path | str, run: Path, model: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--model", str(model), "--output", str(run), "--overwrite", "--quiet",
            *extra]


# --- fatal data problems -----------------------------------------------------------------------

def test_missing_file(existing_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    assert_clean_failure(train_args(missing, existing_run, tiny_model), [str(missing), "file not found"], existing_run,
                         subprocess_cli=True)


def test_missing_column_lists_the_columns_present(existing_run: Path, tiny_model: Path, good_csv: Path) -> None:
    assert_clean_failure(train_args(good_csv, existing_run, tiny_model, "--text-column", "body"),
                         [str(good_csv), "'body'", "Columns present: text, label", "--text-column"], existing_run)


def test_empty_and_null_texts_name_the_row(existing_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    rows = [{"text": "good film", "label": "pos"}, {"text": "bad film", "label": "neg"}, {"text": None, "label": "neg"},
            {"text": "  ", "label": "pos"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    assert_clean_failure(train_args(path, existing_run, tiny_model),
                         [str(path), "2 row(s) have an empty text", "first at row 3, 4"], existing_run)


def test_one_class_only(existing_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("text,label\ngood film,pos\ngreat film,pos\nnice plot,pos\n", encoding="utf-8")
    assert_clean_failure(train_args(path, existing_run, tiny_model),
                         [str(path), "same label ('pos')", "at least two classes"], existing_run)


def test_eval_labels_never_seen_in_training(existing_run: Path, tiny_model: Path, good_csv: Path, tmp_path: Path) -> None:
    evaluation = tmp_path / "eval.csv"
    evaluation.write_text("text,label\ngood film,pos\nso so film,meh\n", encoding="utf-8")
    assert_clean_failure(train_args(good_csv, existing_run, tiny_model, "--eval", str(evaluation)),
                         [str(evaluation), "'meh'", "first at row 2"], existing_run)


def test_undecodable_bytes_name_the_line(existing_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(b"text,label\ngood film,pos\nbad film,neg\nna\xefve caf\xe9,neg\n")
    assert_clean_failure(train_args(path, existing_run, tiny_model), [str(path), "line 4", "UTF-8"], existing_run)


def test_binary_file(existing_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(bytes(range(256)) * 64)
    assert_clean_failure(train_args(path, existing_run, tiny_model), [str(path), "not a table"], existing_run)


def test_png_image(existing_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = tmp_path / "photo.png"
    plt.imsave(path, [[0.0, 1.0], [1.0, 0.0]])
    assert_clean_failure(train_args(path, existing_run, tiny_model), [str(path), "not a table"], existing_run,
                         subprocess_cli=True)


def test_parquet_suffix_on_a_text_file(existing_run: Path, tiny_model: Path, tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    path.write_text("text,label\na,b\n", encoding="utf-8")
    assert_clean_failure(train_args(path, existing_run, tiny_model), [str(path), "Parquet"], existing_run)


# --- config and model problems -----------------------------------------------------------------

def test_unknown_config_key_on_the_command_line(existing_run: Path, tiny_model: Path, good_csv: Path) -> None:
    assert_clean_failure(train_args(good_csv, existing_run, tiny_model, "--set", "train.epoch=2"),
                         ["unknown key 'train.epoch'", "did you mean 'train.epochs'?"], existing_run)


def test_unknown_config_key_in_a_file(existing_run: Path, tiny_model: Path, good_csv: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("train:\n  learning_rte: 0.001\n", encoding="utf-8")
    assert_clean_failure(train_args(good_csv, existing_run, tiny_model, "--config", str(config)),
                         [str(config), "unknown key 'train.learning_rte'", "did you mean 'train.learning_rate'?"],
                         existing_run, subprocess_cli=True)


def test_hub_id_while_offline(existing_run: Path, good_csv: Path) -> None:
    args = ["train", "--data", str(good_csv), "--model", "some-org/some-model", "--output", str(existing_run),
            "--overwrite", "--quiet"]
    assert_clean_failure(args, ["'some-org/some-model'", "HF_HUB_OFFLINE", "--model DIR"], existing_run,
                         subprocess_cli=True)


def test_model_folder_that_does_not_exist(existing_run: Path, good_csv: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-model"
    args = ["train", "--data", str(good_csv), "--model", str(missing), "--output", str(existing_run), "--overwrite"]
    assert_clean_failure(args, [str(missing), "not found"], existing_run)


def test_existing_run_is_not_replaced_without_overwrite(existing_run: Path, tiny_model: Path, good_csv: Path) -> None:
    args = ["train", "--data", str(good_csv), "--model", str(tiny_model), "--output", str(existing_run)]
    assert_clean_failure(args, [str(existing_run), "already holds a run", "--resume", "--overwrite"], existing_run)


# --- eval and predict --------------------------------------------------------------------------

def test_eval_with_labels_the_model_does_not_know(existing_run: Path, tmp_path: Path) -> None:
    data = tmp_path / "test.csv"
    data.write_text("text,label\ngood film,pos\nodd film,weird\n", encoding="utf-8")
    assert_clean_failure(["eval", str(existing_run / "model"), "--data", str(data)], [str(data), "'weird'"], existing_run)


def test_predict_on_a_missing_file(existing_run: Path, tmp_path: Path) -> None:
    missing = tmp_path / "new.txt"
    assert_clean_failure(["predict", str(existing_run / "model"), str(missing)], [str(missing), "not found"],
                         existing_run)


def test_predict_with_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    texts = tmp_path / "new.txt"
    texts.write_text("hello\n", encoding="utf-8")
    assert_clean_failure(["predict", str(tmp_path), str(texts)], [str(tmp_path), "fmkit.json"])


# --- warnings do not fail ----------------------------------------------------------------------

def test_warnings_are_printed_and_training_goes_on(tiny_model: Path, tmp_path: Path) -> None:
    train = write_sentiment_csv(tmp_path / "train.csv", n=80)
    lines = train.read_text(encoding="utf-8").splitlines()
    first_text = lines[1].rsplit(",", 1)[0]
    extra = [lines[1], lines[1], f"{first_text},{'neg' if lines[1].endswith('pos') else 'pos'}"]  # duplicates + conflict
    extra += [f"the market report {i},rare" for i in range(3)]  # 40:3 imbalance
    train.write_text("\n".join([*lines, *extra]) + "\n", encoding="utf-8")
    evaluation = tmp_path / "eval.csv"
    evaluation.write_text("\n".join([lines[0], lines[2], lines[3], "a superb story,pos", "an awful plot,neg",
                                     "the market report 9,rare"]) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    proc = run_cli("train", "--data", str(train), "--eval", str(evaluation), "--model", str(tiny_model),
                   "--output", str(run), "--epochs", "1", "--quiet", "--set", "strategy.name=full", timeout=300)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
    joined = "\n".join(warnings)
    assert "duplicate text(s)" in joined
    assert "appear with different labels" in joined
    assert "imbalanced" in joined and "'rare'" in joined
    assert "2 eval text(s) also appear in the training data" in joined
    assert "Traceback" not in proc.stderr
    assert (run / "metrics.json").is_file() and (run / "model" / "model.safetensors").is_file()
