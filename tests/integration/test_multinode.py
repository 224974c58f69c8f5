"""Multi-node training, rehearsed on one machine: the same `fmkit train` under two `torchrun --nnodes 2` launches
(each standing in for a machine, one CPU process each, gloo), meeting through a c10d rendezvous on 127.0.0.1.

What a real two-machine job relies on: the global rank 0 alone writes the run directory and the registry (both
"nodes" have local rank 0), the metrics are those of the single-process run with the same global batch, and
`--resume` picks the run up under both nodes after they were killed. Also: the Accelerate config files in
examples/accelerate/ load with accelerate's own loader (unknown keys rejected) and name only real FSDP options.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from fmkit.workflows.rundir import RUN_MARKER
from tests.conftest import REPO, run_cli, write_sentiment_csv
from tests.integration.test_ddp import free_port

TORCHRUN = Path(sys.executable).parent / "torchrun"
ACCELERATE_CONFIGS = REPO / "examples" / "accelerate"
TRAIN_FLAGS = ["--epochs", "3", "--seed", "7", "--quiet", "--strategy", "full", "--set", "train.learning_rate=5e-4",
               "--set", "train.early_stopping_patience=0"]


def launch_nodes(*fmkit_args: str, cwd: Path) -> list[subprocess.Popen[str]]:
    """Two torchrun launches, as on two machines: the c10d rendezvous assigns the ranks (node 0 hosts the store)."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [str(TORCHRUN), "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d",
           "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "fmkit-rehearsal", "-m", "fmkit", *fmkit_args]
    return [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
                             start_new_session=True) for _ in range(2)]


def finish(nodes: list[subprocess.Popen[str]]) -> list[tuple[int, str, str]]:
    results = []
    for node in nodes:
        out, err = node.communicate(timeout=600)
        results.append((node.returncode, out, err))
    return results


def registry_rows(root: Path, run_id: str) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(root / "registry.db")) as conn:
        return list(conn.execute("SELECT id, status FROM runs WHERE id = ?", (run_id,)))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("multinode-data")
    return write_sentiment_csv(root / "train.csv", n=200, seed=3), write_sentiment_csv(root / "eval.csv", n=60, seed=4)


@pytest.mark.slow
def test_two_nodes_match_one_process_and_only_rank0_writes(data: tuple[Path, Path], tiny_model: Path,
                                                           tmp_path: Path) -> None:
    common = ["train", "--data", str(data[0]), "--eval", str(data[1]), "--model", str(tiny_model), *TRAIN_FLAGS]
    single = tmp_path / "single"
    proc = run_cli(*common, "--output", str(single), "--batch-size", "16")  # the global batch of the 2-node run
    assert proc.returncode == 0, proc.stderr[-3000:]

    nodes_root = tmp_path / "nodes"
    nodes_root.mkdir()
    results = finish(launch_nodes(*common, "--output", "run", "--batch-size", "8", cwd=nodes_root))
    assert all(code == 0 for code, _, _ in results), [err[-2000:] for _, _, err in results]
    run = nodes_root / "run"
    assert json.loads((run / "env.json").read_text())["num_processes"] == 2
    assert sum(out.count("model saved to") for _, out, _ in results) == 1  # one node reports: global rank 0
    assert registry_rows(nodes_root, "run") == [("run", "finished")]  # one registry row, written once
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(".")) == [RUN_MARKER]
    assert not [p for p in nodes_root.iterdir() if p.name not in ("run", "registry.db") and not p.name.startswith(".")]

    two, one = (json.loads((r / "metrics.json").read_text()) for r in (run, single))
    assert two["steps"] == one["steps"] == 3 * 13  # 200 rows, 16 per global step
    # Within noise: the same data and global batch, but each node shuffles and drops out on its own stream.
    assert abs(two["accuracy"] - one["accuracy"]) <= 0.1 and two["accuracy"] >= 0.85, (two["accuracy"], one["accuracy"])


def _checkpoint_step(run: Path) -> int:
    try:
        return int(json.loads((run / "checkpoints" / "last" / "loop_state.json").read_text())["step"])
    except (OSError, ValueError, KeyError):
        return -1


@pytest.mark.slow
def test_resume_under_two_nodes_after_both_are_killed(data: tuple[Path, Path], tiny_model: Path,
                                                      tmp_path: Path) -> None:
    run = tmp_path / "run"
    nodes = launch_nodes("train", "--data", str(data[0]), "--eval", str(data[1]), "--model", str(tiny_model),
                         "--output", str(run), "--batch-size", "8", *TRAIN_FLAGS, "--epochs", "4",
                         "--set", "train.checkpoint_every_steps=7", cwd=tmp_path)
    deadline = time.monotonic() + 300
    while _checkpoint_step(run) < 7 and time.monotonic() < deadline and all(n.poll() is None for n in nodes):
        time.sleep(0.1)
    killed_at = _checkpoint_step(run)
    for node in nodes:  # both machines go down: each launcher and its worker (one process group per launch)
        os.killpg(node.pid, signal.SIGKILL)
        node.wait(timeout=30)
    assert 7 <= killed_at < 52, f"no mid-run checkpoint to resume from (step {killed_at})"
    assert json.loads((run / "run.json").read_text())["status"] == "running"

    results = finish(launch_nodes("train", "--resume", str(run), "--quiet", cwd=tmp_path))
    assert all(code == 0 for code, _, _ in results), [err[-2000:] for _, _, err in results]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 4 * 13  # the run went on from the checkpoint to the end, not from the start again
    assert metrics["accuracy"] >= 0.85, metrics
    assert json.loads((run / "run.json").read_text())["status"] == "finished"
    assert sum(out.count("model saved to") for _, out, _ in results) == 1
    assert registry_rows(tmp_path, "run") == [("run", "finished")]


def test_accelerate_config_files_load_with_accelerates_loader() -> None:
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import launch_command_parser

    files = sorted(ACCELERATE_CONFIGS.glob("*.yaml"))
    assert [f.name for f in files] == ["fsdp.yaml", "multi_gpu.yaml", "multi_node_gpu.yaml"]
    configs = {f.stem: load_config_from_file(str(f)) for f in files}  # raises on a key accelerate does not know
    assert configs["multi_gpu"].distributed_type.value == "MULTI_GPU" and configs["multi_gpu"].num_machines == 1
    node = configs["multi_node_gpu"]
    assert (node.num_machines, node.num_processes, node.main_process_port) == (2, 8, 29500)
    fsdp = configs["fsdp"]
    assert fsdp.distributed_type.value == "FSDP"
    # `accelerate launch` turns each fsdp_config key into its --fsdp_* option: every key must be one it has.
    options = {a.dest for a in launch_command_parser()._actions}
    assert set(fsdp.fsdp_config) <= options, set(fsdp.fsdp_config) - options


@pytest.mark.slow
def test_fsdp_through_accelerate_on_cpu(data: tuple[Path, Path], tiny_model: Path, tmp_path: Path) -> None:
    """examples/accelerate/fsdp.yaml with 2 CPU processes (gloo): FSDP wraps the model (its own CPU refusal of
    sync_module_states proves it), trains, and the main process saves the whole model, which predicts."""
    import yaml

    config = yaml.safe_load((ACCELERATE_CONFIGS / "fsdp.yaml").read_text())
    config.update(num_processes=2, mixed_precision="no", main_process_port=free_port())
    config.pop("gpu_ids")

    def launch(sync_module_states: bool, run: Path) -> subprocess.CompletedProcess[str]:
        config["fsdp_config"]["fsdp_sync_module_states"] = sync_module_states
        path = tmp_path / f"fsdp-{sync_module_states}.yaml"
        path.write_text(yaml.safe_dump(config))
        cmd = [str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file", str(path), "-m", "fmkit",
               "train", "--data", str(data[0]), "--eval", str(data[1]), "--model", str(tiny_model), "--output", str(run),
               "--batch-size", "8", *TRAIN_FLAGS]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)

    refused = launch(True, tmp_path / "sync")
    assert refused.returncode != 0 and "FSDP parameter initialization with `sync_module_states=True`" in refused.stderr

    run = tmp_path / "run"
    proc = launch(False, run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("model saved to") == 1
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["steps"] == 3 * 13 and metrics["accuracy"] >= 0.85, metrics
    import fmkit

    records = fmkit.load(run / "model").predict(["a great wonderful film", "an awful terrible movie"])
    assert [r["label"] for r in records] == ["pos", "neg"]
