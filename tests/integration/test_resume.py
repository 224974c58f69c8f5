"""Resume after `kill -9` ends exactly where an uninterrupted run ends; the same seed twice gives the same run.

Everything runs through the CLI in subprocesses, as a user would, on the tiny random BERT.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli, write_sentiment_csv

# Enough optimizer steps that the kill lands mid-run, several evaluations and checkpoints on the way.
# Checkpoints every 7 steps: never aligned with the 25-step epochs, so the resume is mid-epoch.
COMMON = [
    "--epochs", "4", "--batch-size", "8", "--seed", "7", "--quiet",
    "--set", "train.checkpoint_every_steps=7", "--set", "train.learning_rate=5e-4",
    "--set", "train.early_stopping_patience=0", "--set", "train.threads=1", "--set", "strategy.name=full",
]
EXACT_KEYS = ("accuracy", "macro_f1", "weighted_f1", "per_class", "confusion_matrix", "best_step", "steps",
              "epochs_completed", "train_examples")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("resume-data")
    # Harder than the default toy set (more filler, one cue word) so the metrics are not all 1.0.
    return write_sentiment_csv(root / "train.csv", n=200, seed=3), write_sentiment_csv(root / "eval.csv", n=60, seed=4)


def train_args(data: tuple[Path, Path], model: Path, out: Path) -> list[str]:
    return ["train", "--data", str(data[0]), "--eval", str(data[1]), "--model", str(model), "--output", str(out), *COMMON]


def exact_part(run: Path) -> dict[str, object]:
    metrics = json.loads((run / "metrics.json").read_text())
    return {k: metrics[k] for k in EXACT_KEYS}


def eval_scores(run: Path) -> list[dict[str, float]]:
    return [json.loads(line)["scores"] for line in (run / "eval_predictions.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(data: tuple[Path, Path], tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("resume-ref") / "run"
    proc = run_cli(*train_args(data, tiny_model, run))
    assert proc.returncode == 0, proc.stderr
    return run


def last_checkpoint_step(run: Path) -> int:
    state = run / "checkpoints" / "last" / "loop_state.json"
    try:
        return int(json.loads(state.read_text())["step"])
    except (OSError, ValueError, KeyError):
        return -1  # not there yet (the folder appears by an atomic rename, so a partial read is rare)


@pytest.mark.slow
def test_same_seed_same_metrics(data: tuple[Path, Path], tiny_model: Path, reference: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    proc = run_cli(*train_args(data, tiny_model, again))
    assert proc.returncode == 0, proc.stderr
    assert exact_part(again) == exact_part(reference)
    assert eval_scores(again) == eval_scores(reference)


@pytest.mark.slow
def test_resume_after_kill9_matches_uninterrupted(data: tuple[Path, Path], tiny_model: Path, reference: Path,
                                                  tmp_path: Path) -> None:
    run = tmp_path / "killed"
    steps_total = exact_part(reference)["steps"]
    assert isinstance(steps_total, int) and steps_total == 100  # 200 rows / 8 per batch * 4 epochs
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "fmkit", *train_args(data, tiny_model, run)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Kill once a checkpoint past the first epoch's evaluation exists (so best-so-far state must survive too).
    deadline = time.monotonic() + 300
    killed_at = -1
    while time.monotonic() < deadline and proc.poll() is None:
        killed_at = last_checkpoint_step(run)
        if killed_at >= 30:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"run ended on its own before the kill: {proc.stderr.read()!r}"  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    assert not (run / "metrics.json").exists()
    assert 30 <= killed_at < steps_total
    assert json.loads((run / "run.json").read_text())["status"] == "running"  # a kill -9 leaves no chance to say more

    resumed = run_cli("train", "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr
    status = json.loads((run / "run.json").read_text())
    assert status["status"] == "finished" and status["resumed"] == 1
    assert exact_part(run) == exact_part(reference)
    assert eval_scores(run) == eval_scores(reference)
    # The history of the resumed run continues up to the last step of the loop (head-only phases are logged apart).
    records = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in records if "phase" not in r) == steps_total
    # ... and records each step once: the steps replayed after the kill replace the ones logged before it.
    train_steps = [r["step"] for r in records if "phase" not in r and r["kind"] == "train"]
    assert train_steps == sorted(set(train_steps))


def test_resume_refuses_a_folder_without_a_run(tmp_path: Path) -> None:
    proc = run_cli("train", "--resume", str(tmp_path))
    assert proc.returncode == 2
    assert "no config.yaml" in proc.stderr and "Traceback" not in proc.stderr
