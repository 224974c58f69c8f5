"""Runs on the tiny BERT say what they are doing when stderr is a log, report speeds that mean something,
and stay silent when asked to."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import fmkit
from tests.conftest import run_cli

FAST = {"train.batch_size": 8, "train.learning_rate": 1e-3, "train.threads": 1}
# A count line of the plain (non-terminal) format, e.g. "encode train: 120/120 texts (100%), 950 texts/s, in 0s".
COUNT_LINE = re.compile(r"^(?P<desc>[\w ]+): [\d,]+/[\d,]+ (?P<unit>\w+) \(\d+%\)(, .*)?, [\d,.]+ \w+/s, (ETA|in) \w+$")


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("FMKIT_CACHE_DIR", str(cache))
    for name in ("FMKIT_PROGRESS", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    return cache


def train(tmp_path: Path, tiny_model: Path, train_csv: Path, eval_csv: Path, strategy: str, name: str = "run",
          **extra: Any) -> dict[str, Any]:
    out = tmp_path / name
    fmkit.train(data=str(train_csv), eval=str(eval_csv), model=str(tiny_model), output=str(out),
                **{**FAST, "strategy.name": strategy, **extra})
    return dict(json.loads((out / "metrics.json").read_text()))


def count_lines(stderr: str) -> dict[str, str]:
    return {m["desc"]: line for line in stderr.splitlines() if (m := COUNT_LINE.match(line))}


def test_linear_probe_logs_encoding_and_reports_the_encoders_speed(
        tiny_model: Path, sentiment_csv: Path, sentiment_eval_csv: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    metrics = train(tmp_path, tiny_model, sentiment_csv, sentiment_eval_csv, "linear-probe")
    lines = count_lines(capsys.readouterr().err)
    assert lines["encode train"].startswith("encode train: 120/120 texts (100%), ")
    assert lines["encode eval"].startswith("encode eval: 40/40 texts (100%), ")
    details = metrics["strategy_details"]
    encoding = details["encoding"]
    assert encoding["texts"] == 160 and encoding["from_cache"] == []
    assert encoding["tokens"] > encoding["texts"] and encoding["tokens_per_second"] > encoding["texts_per_second"] > 0
    # The run's speed is the encoder's; the head's (texts x L-BFGS iterations / s) keeps a name that says so.
    assert metrics["train_examples_per_second"] == pytest.approx(encoding["texts_per_second"], rel=1e-3)
    assert details["head_examples_per_second"] > 0
    assert details["head_examples_per_second"] != pytest.approx(metrics["train_examples_per_second"], rel=0.01)
    assert metrics["train_seconds"] >= details["head_seconds"]  # encoding the training texts is training time

    # Second run: the vectors come from the cache, and the log says so instead of counting.
    again = train(tmp_path, tiny_model, sentiment_csv, sentiment_eval_csv, "linear-probe", name="again")
    err = capsys.readouterr().err
    assert "encode train: 120 texts from the vector cache" in err.splitlines()
    assert "encode eval: 40 texts from the vector cache" in err.splitlines()
    assert count_lines(err) == {}
    assert again["strategy_details"]["encoding"]["from_cache"] == ["train", "eval"]
    assert again["train_examples_per_second"] > 0


def test_loop_phases_log_step_lines_with_loss_and_speed(tiny_model: Path, sentiment_csv: Path, sentiment_eval_csv: Path,
                                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train(tmp_path, tiny_model, sentiment_csv, sentiment_eval_csv, "full", name="run", **{"train.epochs": 1})
    lines = count_lines(capsys.readouterr().err)
    assert set(lines) >= {"encode train", "encode eval", "train"}  # the probe-initialised head, then the loop
    assert re.match(r"train: 15/15 steps \(100%\), epoch 1, loss \d+\.\d{4}, [\d,.]+ examples/s, [\d,.]+ steps/s, "
                    r"in \w+$", lines["train"]), lines["train"]


def test_fewshot_pairs_and_zeroshot_labels_are_logged(tiny_model: Path, sentiment_csv: Path, sentiment_eval_csv: Path,
                                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metrics = train(tmp_path, tiny_model, sentiment_csv, sentiment_eval_csv, "fewshot", name="fewshot",
                    **{"strategy.fewshot.pairs_per_example": 2})
    lines = count_lines(capsys.readouterr().err)
    assert set(lines) >= {"pairs", "encode train", "encode eval"}
    details = metrics["strategy_details"]
    assert details["encoding"]["texts"] == 160 and "head_examples_per_second" in details
    assert metrics["train_examples_per_second"] != pytest.approx(details["head_examples_per_second"], rel=0.01)

    train(tmp_path, tiny_model, sentiment_csv, sentiment_eval_csv, "zeroshot", name="zeroshot")
    assert count_lines(capsys.readouterr().err)["encode labels"].startswith("encode labels: 2/2 texts (100%)")


def test_progress_off_prints_no_progress(tiny_model: Path, sentiment_csv: Path, sentiment_eval_csv: Path,
                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train(tmp_path, tiny_model, sentiment_csv, sentiment_eval_csv, "full", name="run", **{"train.epochs": 1, "train.progress": False})
    train(tmp_path, tiny_model, sentiment_csv, sentiment_eval_csv, "linear-probe", name="probe",
          **{"train.progress": False})
    err = capsys.readouterr().err
    assert "encode" not in err and "train:" not in err and "step " not in err, err


def test_cli_quiet_prints_no_progress_but_the_summary(tiny_model: Path, sentiment_csv: Path, sentiment_eval_csv: Path,
                                                      tmp_path: Path, private_cache: Path) -> None:
    quiet = run_cli("train", "--data", str(sentiment_csv), "--eval", str(sentiment_eval_csv), "--model", str(tiny_model),
                    "--strategy", "linear-probe", "--set", "train.threads=1", "--output", str(tmp_path / "quiet"),
                    "--quiet", env={"FMKIT_CACHE_DIR": str(private_cache)})
    assert quiet.returncode == 0, quiet.stderr
    assert "encode" not in quiet.stderr, quiet.stderr
    # The summary's speed is the encoder's texts/s from metrics.json, not the head's.
    metrics = json.loads((tmp_path / "quiet" / "metrics.json").read_text())
    assert metrics["train_examples_per_second"] == metrics["strategy_details"]["encoding"]["texts_per_second"]
    assert f"{metrics['train_examples_per_second']:.0f} examples/s" in quiet.stdout
