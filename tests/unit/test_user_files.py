"""No user file is ever deleted: `--overwrite` (and every command that writes a whole folder) only replaces
folders fmkit created, and `fmkit runs rm --files` deletes only what fmkit wrote (issue 17, part D)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fmkit.apps.recommend import build_recommender
from fmkit.apps.support import build_support
from fmkit.cli import main
from fmkit.errors import FmkitError
from fmkit.inference.index import VectorIndex
from fmkit.tracking import Registry
from fmkit.workflows.rundir import prepare_run_dir
from tests.unit.apps_fakes import BagOfWordsEmbedder

FAQ = """question,answer
How do I reset my password?,Use the Forgot password link.
I forgot my password,Use the Forgot password link.
What are your opening hours?,9am to 5pm on weekdays.
When is the shop open?,9am to 5pm on weekdays.
"""
CALIBRATION = "query,answer\nreset password,Use the Forgot password link.\nbanana bread recipe,oos\n"
MOVIES = "1,Space Battle (1990),Sci-Fi|Action\n2,Laugh Riot (1995),Comedy\n"


def _user_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "userdir"
    folder.mkdir()
    (folder / "thesis.docx").write_text("precious", encoding="utf-8")
    return folder


def _fake_run(run_dir: Path) -> Path:
    """What a finished run leaves, written the way fmkit writes it (without training anything)."""
    prepare_run_dir(run_dir, overwrite=False)
    (run_dir / "config.yaml").write_text("model:\n  name: tiny\ntrain:\n  epochs: 1\n", encoding="utf-8")
    (run_dir / "run.json").write_text(json.dumps({"command": "train", "status": "finished", "started": 1.0}))
    for name in ("metrics.json", "data.json", "env.json", "history.jsonl", "report.html", "MODEL_CARD.md"):
        (run_dir / name).write_text("{}\n", encoding="utf-8")
    for folder in ("model", "checkpoints/last", "tensorboard"):
        (run_dir / folder).mkdir(parents=True)
        (run_dir / folder / "weights.bin").write_bytes(b"\0" * 8)
    return run_dir


def _registered(runs: Path, run_dir: Path) -> str:
    registry = Registry(runs)
    registry.start("r1", path=run_dir, command="train")
    registry.end("r1", "finished")
    return "r1"


def test_train_overwrite_refuses_a_folder_fmkit_did_not_create(tiny_model: Path, sentiment_csv: Path,
                                                                tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                                ) -> None:
    folder = _user_folder(tmp_path)
    code = main(["train", "--data", str(sentiment_csv), "--model", str(tiny_model), "--output", str(folder),
                 "--overwrite", "--quiet", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(folder) in err and "not created by fmkit" in err and "--output" in err
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.docx"]  # nothing written, nothing deleted


def test_overwrite_of_an_fmkit_run_keeps_files_fmkit_did_not_write(tmp_path: Path) -> None:
    run_dir = _fake_run(tmp_path / "run")
    (run_dir / "notes.txt").write_text("mine", encoding="utf-8")
    prepare_run_dir(run_dir, overwrite=True)
    assert (run_dir / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "history.jsonl").exists()
    assert (run_dir / "model" / "weights.bin").is_file()  # replaced only when the new model is complete


def test_a_run_from_before_the_marker_is_still_overwritable(tmp_path: Path) -> None:
    run_dir = _fake_run(tmp_path / "old-run")
    (run_dir / ".fmkit-run").unlink()  # fmkit versions before the marker
    prepare_run_dir(run_dir, overwrite=True)
    assert not (run_dir / "checkpoints").exists()
    assert (run_dir / ".fmkit-run").is_file()  # and it is marked from now on


def test_a_folder_with_a_foreign_run_json_is_not_taken_for_a_run(tmp_path: Path) -> None:
    folder = _user_folder(tmp_path)
    (folder / "run.json").write_text('{"laps": 3}', encoding="utf-8")
    (folder / "config.yaml").write_text("theme: dark\n", encoding="utf-8")
    with pytest.raises(FmkitError, match="not created by fmkit"):
        prepare_run_dir(folder, overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "run.json", "thesis.docx"]


def test_a_new_run_dir_is_created_with_its_marker(tmp_path: Path) -> None:
    run_dir = prepare_run_dir(tmp_path / "runs" / "new", overwrite=False)
    marker = json.loads((run_dir / ".fmkit-run").read_text(encoding="utf-8"))
    assert marker["created_by"] == "fmkit" and marker["fmkit_version"]
    assert [p.name for p in run_dir.parent.iterdir()] == ["new"]  # no temporary sibling left behind


def test_runs_rm_files_keeps_what_fmkit_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    run_dir = _fake_run(runs / "r1")
    (run_dir / "thesis.docx").write_text("precious", encoding="utf-8")
    run_id = _registered(runs, run_dir)
    assert main(["runs", "rm", run_id, "--files", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in run_dir.iterdir()) == ["thesis.docx"]
    assert (run_dir / "thesis.docx").read_text(encoding="utf-8") == "precious"
    assert "kept 1 file not written by fmkit: thesis.docx" in out
    assert Registry(runs).get(run_id) is None


def test_runs_rm_files_deletes_the_folder_when_only_fmkit_files_were_there(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    run_dir = _fake_run(runs / "r1")
    (run_dir / ".metrics.json.abc123.tmp").write_text("{", encoding="utf-8")  # a write cut short
    run_id = _registered(runs, run_dir)
    assert main(["runs", "rm", run_id, "--files", "--runs", str(runs)]) == 0
    assert not run_dir.exists()
    assert f"deleted {run_dir}" in capsys.readouterr().out


def test_runs_rm_files_leaves_a_folder_that_is_not_an_fmkit_run(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    runs = tmp_path / "runs"
    folder = _user_folder(tmp_path)
    (folder / "config.yaml").write_text("theme: dark\n", encoding="utf-8")
    run_id = _registered(runs, folder)
    assert main(["runs", "rm", run_id, "--files", "--runs", str(runs)]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "thesis.docx"]
    assert "not created by fmkit" in capsys.readouterr().out


def test_index_save_refuses_a_folder_that_is_not_an_index(tmp_path: Path) -> None:
    folder = _user_folder(tmp_path)
    index = VectorIndex(3, model="m")
    index.add(["a"], np.ones((1, 3), dtype=np.float32))
    with pytest.raises(FmkitError, match="not created by fmkit"):
        index.save(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.docx"]
    index.save(tmp_path / "idx")
    index.save(tmp_path / "idx")  # its own index is still replaced


def test_app_builds_with_overwrite_refuse_a_folder_that_is_not_their_app(tmp_path: Path) -> None:
    (tmp_path / "faq.csv").write_text(FAQ)
    (tmp_path / "cal.csv").write_text(CALIBRATION)
    (tmp_path / "movies.csv").write_text(MOVIES)
    folder = _user_folder(tmp_path)
    with pytest.raises(FmkitError, match="not created by fmkit"):
        build_support(tmp_path / "faq.csv", folder, calibration=tmp_path / "cal.csv", embedder=BagOfWordsEmbedder(),
                      overwrite=True)
    with pytest.raises(FmkitError, match="not created by fmkit"):
        build_recommender(tmp_path / "movies.csv", folder, embedder=BagOfWordsEmbedder(), overwrite=True)
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.docx"]
    app = tmp_path / "app"
    for _ in range(2):  # a support app fmkit built is replaced by --overwrite
        build_support(tmp_path / "faq.csv", app, calibration=tmp_path / "cal.csv", embedder=BagOfWordsEmbedder(),
                      overwrite=True)
