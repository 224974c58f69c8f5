"""Bad input through the CLI: exit code 2, one clear line on stderr, no traceback, nothing saved is touched.

Every bad `fmkit train` below points at an existing run with --overwrite (the worst case): its files must
be byte-identical afterwards. Warnings (duplicates, conflicts, imbalance, overlap) print but do not fail.

A few cases run `python -m fmkit` in a subprocess (run_cli), exactly as a user would; the others call the
same entry point, `fmkit.cli.main`, in this process: importing torch in a fresh process per case would
cost ~4 s of CPU each, and the exit-code mapping under test is the same code.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fmkit
from fmkit.cli import build_parser, main
from fmkit.cli.examples import iter_parsers
from tests.conftest import REPO, run_cli, write_sentiment_csv


@pytest.fixture(scope="module")
def existing_run(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad-input")
    run = root / "run"
    overrides: dict[str, Any] = {"train.progress": False, "strategy.name": "full", "train.batch_size": 16}
    fmkit.train(data=str(write_sentiment_csv(root / "train.csv", n=60)), model=str(tiny_model), epochs=1,
                output=str(run), **overrides)
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


# --- the catalogue: every command against every kind of bad input ------------------------------
#
# Each command gets the bad path in the slot where a user names its main input (a data file, a model,
# an app or index folder). Commands are listed by walking the parser, so a new command fails
# test_the_catalogue_covers_every_command until it is added here. Runs in this process; a command that
# would start a server is stopped by the patched uvicorn.run (a failure, not a hang).

BAD_INPUT_KINDS = ("binary", "latin1_csv", "empty", "folder", "missing", "unreadable")
COMMANDS_WITHOUT_INPUT = {("init-config",): "prints the documented defaults; reads nothing"}
VALID_FOR_COMMAND: dict[tuple[tuple[str, ...], str], str] = {(("ui",), "folder"): "an empty folder is a valid runs folder: the dashboard shows no runs"}


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("catalogue")
    paths = {"binary": root / "binary.csv", "latin1_csv": root / "latin1.csv", "empty": root / "empty.csv",
             "folder": root / "folder", "missing": root / "missing.csv",
             # Root reads any file despite chmod; this one fails read() with EINVAL for everyone.
             "unreadable": Path("/proc/self/clear_refs")}
    paths["binary"].write_bytes(bytes(range(256)) * 64)
    paths["latin1_csv"].write_bytes(b"text,label\ngood film,pos\nna\xefve caf\xe9,neg\n")
    paths["empty"].write_bytes(b"")
    paths["folder"].mkdir()
    try:
        paths["unreadable"].read_bytes()
    except OSError:
        pass
    else:
        pytest.skip(f"{paths['unreadable']} is readable on this system")
    return paths


@pytest.fixture(scope="module")
def inputs(existing_run: Path, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Valid inputs for the slots a case does not test, and an index built from them."""
    root = tmp_path_factory.mktemp("valid")
    docs = root / "docs.txt"
    docs.write_text("good film\nbad film\nthe market report\n", encoding="utf-8")
    index = root / "docs.index"
    assert run_in_process(["index", "build", str(tiny_model), str(docs), "--output", str(index)]).returncode == 0
    return {"model": str(tiny_model), "classifier": str(existing_run / "model"), "docs": str(docs),
            "index": str(index), "out": str(root / "out")}


CATALOGUE: dict[tuple[str, ...], Callable[[str, dict[str, str]], list[str]]] = {
    ("train",): lambda bad, ok: ["train", "--data", bad, "--model", ok["model"], "--output", f"{ok['out']}/train",
                                 "--quiet", "--overwrite"],
    ("eval",): lambda bad, ok: ["eval", ok["classifier"], "--data", bad],
    ("predict",): lambda bad, ok: ["predict", ok["classifier"], bad],
    ("doctor",): lambda bad, ok: ["doctor", "--data", bad, "--model", ok["model"]],
    ("runs", "ls"): lambda bad, ok: ["runs", "ls", "--runs", bad],
    ("runs", "show"): lambda bad, ok: ["runs", "show", "some-run", "--runs", bad],
    ("runs", "compare"): lambda bad, ok: ["runs", "compare", "run-a", "run-b", "--runs", bad],
    ("runs", "rm"): lambda bad, ok: ["runs", "rm", "some-run", "--runs", bad],
    ("report",): lambda bad, ok: ["report", bad],
    ("ui",): lambda bad, ok: ["ui", "--runs", bad],
    ("export",): lambda bad, ok: ["export", bad, "--output", f"{ok['out']}/onnx"],
    ("serve",): lambda bad, ok: ["serve", bad],
    ("pretrain",): lambda bad, ok: ["pretrain", "--data", bad, "--model", ok["model"], "--output", f"{ok['out']}/pre",
                                    "--quiet", "--overwrite"],
    ("generate",): lambda bad, ok: ["generate", bad, "hello"],
    ("transcribe",): lambda bad, ok: ["transcribe", bad],
    ("embed",): lambda bad, ok: ["embed", ok["model"], bad, "--output", f"{ok['out']}/vectors.parquet"],
    ("index", "build"): lambda bad, ok: ["index", "build", ok["model"], bad, "--output", f"{ok['out']}/idx"],
    ("index", "add"): lambda bad, ok: ["index", "add", ok["index"], bad],
    ("index", "delete"): lambda bad, ok: ["index", "delete", bad, "0"],
    ("index", "info"): lambda bad, ok: ["index", "info", bad],
    ("index", "eval"): lambda bad, ok: ["index", "eval", ok["index"], bad],
    ("search",): lambda bad, ok: ["search", bad, "good film"],
    ("app", "support", "build"): lambda bad, ok: ["app", "support", "build", "--faq", bad, "--model", ok["model"],
                                                  "--output", f"{ok['out']}/support"],
    ("app", "support", "chat"): lambda bad, ok: ["app", "support", "chat", bad],
    ("app", "support", "ask"): lambda bad, ok: ["app", "support", "ask", bad, "where is my order"],
    ("app", "support", "serve"): lambda bad, ok: ["app", "support", "serve", bad],
    ("app", "support", "eval"): lambda bad, ok: ["app", "support", "eval", "--stackfaq", bad, "--model", ok["model"]],
    ("app", "monitor", "init"): lambda bad, ok: ["app", "monitor", "init", f"{ok['out']}/mon", "--model", bad],
    ("app", "monitor", "run"): lambda bad, ok: ["app", "monitor", "run", bad, ok["docs"], "--once"],
    ("app", "monitor", "serve"): lambda bad, ok: ["app", "monitor", "serve", bad],
    ("app", "monitor", "status"): lambda bad, ok: ["app", "monitor", "status", bad],
    ("app", "recommend", "build"): lambda bad, ok: ["app", "recommend", "build", "--items", bad, "--model", ok["model"],
                                                    "--output", f"{ok['out']}/rec"],
    ("app", "recommend", "for"): lambda bad, ok: ["app", "recommend", "for", bad, "--user", "1"],
    ("app", "recommend", "eval"): lambda bad, ok: ["app", "recommend", "eval", "--items", bad, "--ratings", bad,
                                                   "--model", ok["model"]],
    ("app", "recommend", "serve"): lambda bad, ok: ["app", "recommend", "serve", bad],
    ("audit",): lambda bad, ok: ["audit", "--data", bad, "--model", ok["model"], "--quiet"],
    ("suggest",): lambda bad, ok: ["suggest", ok["classifier"], "--pool", bad],
    ("translate",): lambda bad, ok: ["translate", bad, "hello"],
}


def leaf_commands() -> set[tuple[str, ...]]:
    return {path for path, parser, _ in iter_parsers(build_parser())
            if not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)}


def test_the_catalogue_covers_every_command() -> None:
    listed = set(CATALOGUE) | set(COMMANDS_WITHOUT_INPUT)
    assert sorted(leaf_commands() - listed) == [], "add these commands to CATALOGUE"
    assert sorted(listed - leaf_commands()) == [], "these commands no longer exist"


@pytest.fixture
def no_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the command got as far as starting a server")

    monkeypatch.setattr(uvicorn, "run", refuse)


@pytest.mark.usefixtures("no_servers")
@pytest.mark.parametrize("kind", BAD_INPUT_KINDS)
@pytest.mark.parametrize("command", sorted(CATALOGUE), ids=" ".join)
def test_every_command_fails_cleanly_on_bad_input(command: tuple[str, ...], kind: str, bad_inputs: dict[str, Path],
                                                  inputs: dict[str, str]) -> None:
    if (command, kind) in VALID_FOR_COMMAND:
        pytest.skip(VALID_FOR_COMMAND[command, kind])
    bad = bad_inputs[kind]
    assert_clean_failure(CATALOGUE[command](str(bad), inputs), [bad.name])  # named (some print it resolved)


# Commands that write, each pointed at an output it cannot create. /sys refuses mkdir even to root (EPERM).
WRITERS: dict[str, Callable[[str, dict[str, str]], list[str]]] = {
    "train": lambda out, ok: ["train", "--data", ok["train"], "--model", ok["model"], "--output", f"{out}/run",
                              "--quiet", "--epochs", "1"],
    "predict": lambda out, ok: ["predict", ok["classifier"], ok["docs"], "--output", f"{out}/predictions.jsonl"],
    "embed": lambda out, ok: ["embed", ok["model"], ok["docs"], "--output", f"{out}/vectors.parquet"],
    "index build": lambda out, ok: ["index", "build", ok["model"], ok["docs"], "--output", f"{out}/idx"],
    "export": lambda out, ok: ["export", ok["classifier"], "--output", f"{out}/onnx"],
    "pretrain": lambda out, ok: ["pretrain", "--data", ok["train"], "--model", ok["model"], "--output", f"{out}/pre",
                                 "--quiet"],
    "app support build": lambda out, ok: ["app", "support", "build", "--faq", ok["faq"], "--calibration", ok["faq"],
                                          "--model", ok["model"], "--output", f"{out}/support"],
    "app monitor init": lambda out, ok: ["app", "monitor", "init", f"{out}/mon", "--model", ok["classifier"]],
    "app recommend build": lambda out, ok: ["app", "recommend", "build", "--items", ok["items"], "--model", ok["model"],
                                            "--output", f"{out}/rec"],
}
UNWRITABLE = Path("/sys/fmkit-cannot-write-here")


@pytest.fixture(scope="module")
def writer_inputs(inputs: dict[str, str], good_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("writer-inputs")
    faq = root / "faq.csv"
    faq.write_text("question,answer\nhow do I reset my password,use the reset link\n"
                   "where is my order,see the tracking page\nhow do I cancel,go to settings\n", encoding="utf-8")
    items = root / "items.csv"
    items.write_text("id,title,genres\n1,Toy Story,Animation|Comedy\n2,Heat,Action|Crime\n3,Up,Animation\n",
                     encoding="utf-8")
    return {**inputs, "train": str(good_csv), "faq": str(faq), "items": str(items)}


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_every_writer_fails_cleanly_on_an_output_it_cannot_create(command: str, writer_inputs: dict[str, str]) -> None:
    try:
        UNWRITABLE.mkdir()
    except OSError:
        pass
    else:
        UNWRITABLE.rmdir()
        pytest.skip(f"{UNWRITABLE.parent} is writable here")
    assert_clean_failure(WRITERS[command](str(UNWRITABLE), writer_inputs), [str(UNWRITABLE), "choose a path"])


def in_private_mount(folder: Path, command: list[str], size: str = "1m", read_only: bool = True) -> list[str]:
    """COMMAND run in a private mount namespace where FOLDER is a (read-only or tiny) tmpfs: a real EROFS or
    ENOSPC for root, which chmod cannot give, and nothing outside the namespace sees the mount."""
    options = f"{'ro,' if read_only else ''}size={size}"
    script = f"mount -t tmpfs -o {options} tmpfs {shlex.quote(str(folder))} && exec {shlex.join(command)}"
    return ["unshare", "-m", "sh", "-c", script]


@pytest.fixture(scope="module")
def mount_namespace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mountpoint")
    probe = subprocess.run(in_private_mount(folder, ["true"]), capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a private read-only tmpfs here (unshare/mount): {probe.stderr.strip()}")
    return folder


def run_in_mount(folder: Path, argv: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(in_private_mount(folder, [sys.executable, "-m", "fmkit", *argv], **options),
                          capture_output=True, text=True,
                          timeout=300, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})


@pytest.mark.parametrize("command", ["train", "predict"])
def test_a_read_only_file_system_is_named_in_one_line(command: str, mount_namespace: Path,
                                                      writer_inputs: dict[str, str]) -> None:
    proc = run_in_mount(mount_namespace, WRITERS[command](str(mount_namespace), writer_inputs))
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert str(mount_namespace) in lines[0] and "read-only" in lines[0], lines[0]


def test_a_full_disk_names_the_output(mount_namespace: Path, writer_inputs: dict[str, str]) -> None:
    proc = run_in_mount(mount_namespace, WRITERS["train"](str(mount_namespace), writer_inputs), size="200k",
                        read_only=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr  # not even from TensorBoard's writer thread
    assert len(errors) == 1 and str(mount_namespace) in errors[0] and "no space left" in errors[0], proc.stderr
