"""Data parallel on CPU: the same `fmkit train` command under `accelerate launch` with 2 processes (gloo).

`accelerate launch --cpu` always starts ONE process (its multi-CPU mode needs MPI), so the two processes
come from accelerate's torchrun-based launcher (`--multi_gpu`); on a machine without a GPU fmkit then
forms a gloo process group on CPU (fmkit.training.loop.make_accelerator).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fmkit.workflows.rundir import RUN_MARKER
from tests.conftest import REPO, write_sentiment_csv

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch_two_processes(tiny_model: Path, tmp_path: Path, run: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """`fmkit train` on the toy sentiment data under accelerate's launcher with 2 CPU processes (gloo)."""
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if accelerate is None:
        pytest.skip("accelerate's launcher is not installed in this environment")
    train = write_sentiment_csv(tmp_path / "train.csv", n=200, seed=3)
    evaluation = write_sentiment_csv(tmp_path / "eval.csv", n=60, seed=4)
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
           "-m", "fmkit", "train", "--data", str(train), "--eval", str(evaluation), "--model", str(tiny_model),
           "--output", str(run), "--epochs", "3", "--batch-size", "8", "--seed", "7", "--quiet",
           "--set", "train.learning_rate=5e-4", *extra]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=600)


def test_two_process_training_on_cpu(tiny_model: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = launch_two_processes(tiny_model, tmp_path, run, "--set", "train.early_stopping_patience=0")
    assert proc.returncode == 0, proc.stderr[-4000:]

    # Really two processes, each with half of every global batch: 200 rows / (8 x 2) per step.
    assert json.loads((run / "env.json").read_text())["num_processes"] == 2
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 3 * math.ceil(200 / 16)
    assert metrics["accuracy"] >= 0.9, metrics  # chance is 0.5; the toy task is separable by single words
    assert metrics["num_examples"] == 60

    # Only the main process reports, evaluates at the end and writes the run: one summary, one model, no leftovers.
    assert proc.stdout.count("model saved to") == 1, proc.stdout
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == [RUN_MARKER]  # no temporary folders left behind
    assert len([line for line in (run / "eval_predictions.jsonl").read_text().splitlines() if line]) == 60
    evals = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    main_evals = [r for r in evals if r["kind"] == "eval" and "phase" not in r]
    assert [r["step"] for r in main_evals] == [13, 26, 39]  # once per epoch, logged once (not once per process)

    import fmkit

    records = fmkit.load(run / "model").predict(["a great wonderful film", "an awful terrible movie"])
    assert [r["label"] for r in records] == ["pos", "neg"]


@pytest.mark.parametrize("strategy", ["lora", "linear-probe"])
def test_strategies_under_two_processes(tiny_model: Path, tmp_path: Path, strategy: str) -> None:
    """Adapters and the probe's cached-vector head also run under the launcher: one run written, a model that predicts."""
    run = tmp_path / "run"
    proc = launch_two_processes(tiny_model, tmp_path, run, "--strategy", strategy,
                                "--set", "strategy.lora.learning_rate=5e-3")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert json.loads((run / "env.json").read_text())["num_processes"] == 2
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["strategy"] == strategy
    assert metrics["accuracy"] >= 0.7, metrics  # chance 0.5; LoRA on a tiny random body learns slowly
    if strategy == "lora":
        assert metrics["steps"] == 3 * math.ceil(200 / 16)  # each process took half of every batch
    assert proc.stdout.count("model saved to") == 1, proc.stdout
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == [RUN_MARKER]
    if strategy == "lora":
        assert (run / "adapters").is_dir()


def test_regression_under_two_processes(tiny_model: Path, tmp_path: Path) -> None:
    """The shared run frame (TaskRun) under the launcher: the main process alone writes the run and the model,
    and env.json records both processes (it used to write 1 whatever ran)."""
    from tests.unit.test_regression import write_scores

    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if accelerate is None:
        pytest.skip("accelerate's launcher is not installed in this environment")
    data = write_scores(tmp_path / "train.jsonl", 160, 0)
    run = tmp_path / "run"
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
           "-m", "fmkit", "train", "--task", "regression", "--data", str(data), "--model", str(tiny_model),
           "--output", str(run), "--epochs", "3", "--batch-size", "8", "--quiet", "--strategy", "full",
           "--set", "train.learning_rate=1e-3"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert json.loads((run / "env.json").read_text())["num_processes"] == 2
    assert proc.stdout.count("model saved to") == 1, proc.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 3 * math.ceil(144 / 16) and metrics["spearman"] > 0.5, metrics
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == [RUN_MARKER]
