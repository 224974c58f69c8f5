"""`fmkit predict|embed --engine ray`: bad input (fast), and on a real two-node Ray cluster on this machine (slow):
row-by-row equal to the single-process commands, an actor killed mid-job, the driver killed and the job re-run.

The cluster is a head and a worker node (`ray start --block`, one CPU each), each stopped by its own process id."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pytest

import fmkit
from fmkit.cli import main
from tests.conftest import REPO, run_cli, write_sentiment_csv

RAY = shutil.which("ray", path=str(Path(sys.executable).parent))
# A throwaway cluster on this machine: without the token authentication `ray start` turns on by default.
CLUSTER_ENV = {"HF_HUB_OFFLINE": "1", "RAY_AUTH_MODE": "disabled"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def assert_one_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def write_docs(path: Path, n: int, blank_every: int = 0) -> Path:
    """doc_id,text rows of the toy sentiment vocabulary; every `blank_every`-th text blank."""
    source = write_sentiment_csv(path.with_name(f".{path.stem}.src.csv"), n=n, seed=11)  # hidden: no glob matches it
    texts = [line.split(",")[0] for line in source.read_text(encoding="utf-8").splitlines()[1:]]
    lines = ["doc_id,text"] + [f"doc-{i},{'' if blank_every and i % blank_every == 3 else t}" for i, t in enumerate(texts)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fake_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough of a saved classifier for the checks that come before any model is loaded."""
    model = tmp_path_factory.mktemp("fake") / "model"
    model.mkdir()
    (model / "fmkit.json").write_text(json.dumps({"task": "classification", "labels": ["neg", "pos"]}))
    return model


# --- bad input (fast) -----------------------------------------------------------------------------------------

def test_ray_not_installed_exits_2_naming_the_extra(fake_model: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError, as without the package
    docs = write_docs(tmp_path / "docs.csv", 10)
    assert_one_error(cli("predict", str(fake_model), str(docs), "--engine", "ray", "--output", str(tmp_path / "o")),
                     "pip install 'fmkit[ray]'")
    assert_one_error(cli("embed", str(fake_model), str(docs), "--engine", "ray", "--output", str(tmp_path / "o")),
                     "pip install 'fmkit[ray]'")
    assert not (tmp_path / "o").exists()


@pytest.mark.timeout(60)  # ray.init would wait far longer for a head that never answers
def test_cluster_that_does_not_answer_exits_2_and_writes_nothing(fake_model: Path, tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs.csv", 10)
    port = free_port()  # bound and released: nothing listens there
    out = tmp_path / "out"
    proc = run_cli("predict", str(fake_model), str(docs), "--engine", "ray", "--address", f"127.0.0.1:{port}",
                   "--output", str(out), timeout=60)
    assert_one_error(proc, f"--address 127.0.0.1:{port}", "no Ray cluster answers", "ray start --head")
    assert not out.exists()
    assert_one_error(cli("predict", str(fake_model), str(docs), "--engine", "ray", "--address", "head-node",
                         "--output", str(out)), "HOST:PORT")


def test_output_of_another_job_refused_and_options_ray_cannot_honour(fake_model: Path, tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs.csv", 10)
    out = tmp_path / "out"
    out.mkdir()
    (out / "_fmkit_job.json").write_text(json.dumps({"job": "0123", "kind": "embed", "input": "other.csv",
                                                     "model": "m", "shards": ["part-00000-000000000000.parquet"]}))
    (out / "part-00000-000000000000.parquet").write_bytes(b"another job's shard")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert_one_error(cli("predict", str(fake_model), str(docs), "--engine", "ray", "--output", str(out)),
                     "another job", "--overwrite")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    for extra, fragment in ((["--fields", "label"], "--fields"), (["--format", "jsonl"], "--format")):
        assert_one_error(cli("predict", str(fake_model), str(docs), "--engine", "ray", "--output", str(out), *extra),
                         fragment, "not available with --engine ray")
    assert_one_error(cli("predict", str(fake_model), "-", "--engine", "ray", "--output", str(out)), "not stdin")
    assert_one_error(cli("predict", str(fake_model), str(docs), "--engine", "ray"), "--output DIR")
    assert_one_error(cli("predict", str(fake_model), str(tmp_path / "no-*.csv"), "--engine", "ray", "--output",
                         str(out)), "no CSV")


# --- a two-node cluster on this machine (slow) ----------------------------------------------------------------

def _ray_node(*args: str, temp_dir: Path) -> subprocess.Popen[bytes]:
    assert RAY is not None
    ports = [f"--{name}={free_port()}" for name in ("dashboard-agent-listen-port", "dashboard-agent-grpc-port",
                                                     "runtime-env-agent-port", "metrics-export-port",
                                                     "node-manager-port", "object-manager-port")]
    cmd = [RAY, "start", "--block", "--num-cpus=1", "--object-store-memory=100000000", "--disable-usage-stats",
           *ports, *args]
    env = {**os.environ, **CLUSTER_ENV, "RAY_TMPDIR": str(temp_dir)}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO,
                            start_new_session=True)


def _wait_for_nodes(address: str, count: int, deadline_s: float = 90) -> None:
    probe = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False); "
             "print(sum(1 for n in ray.nodes() if n['Alive']))")
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        proc = subprocess.run([sys.executable, "-c", probe, address], capture_output=True, text=True, timeout=60,
                              env={**os.environ, **CLUSTER_ENV})
        if proc.returncode == 0 and proc.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        time.sleep(1)
    raise AssertionError(f"the Ray cluster at {address} did not come up with {count} nodes")


def _stop(node: subprocess.Popen[bytes]) -> None:
    """The node's processes (GCS, raylet, workers) share the process group its `ray start` was given, ours alone.
    SIGKILL: on SIGTERM a node drains for 30 s first, which a throwaway test cluster does not need."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.pid, signal.SIGKILL)
    node.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    if RAY is None:
        pytest.skip("Ray is not installed (pip install 'fmkit[ray]')")
    temp_dir = Path(tempfile.mkdtemp(prefix="fr", dir="/tmp"))  # short: Ray's socket paths have a length limit
    port = free_port()
    address = f"127.0.0.1:{port}"
    head = _ray_node("--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp_dir}",
                     f"--ray-client-server-port={free_port()}", temp_dir=temp_dir)
    nodes = [head]
    try:
        _wait_for_nodes(address, 1)
        nodes.append(_ray_node(f"--address={address}", temp_dir=temp_dir))
        _wait_for_nodes(address, 2)
        yield address
    finally:
        for node in reversed(nodes):
            _stop(node)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def trained(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ray-model")
    run = root / "run"
    fmkit.train(data=str(write_sentiment_csv(root / "train.csv", n=120)), model=str(tiny_model), epochs=1,
                output=str(run), **{"train.progress": False, "strategy.name": "full", "train.batch_size": 16})
    return run


def shards_table(out: Path) -> list[dict[str, object]]:
    files = sorted(str(p) for p in out.glob("part-*.parquet"))
    return pads.dataset(files, format="parquet").to_table().to_pylist()


@pytest.mark.slow
def test_predict_on_two_nodes_equals_single_process(cluster: str, trained: Path, tmp_path: Path) -> None:
    folder = tmp_path / "shards"
    folder.mkdir()
    write_docs(folder / "a.csv", 150, blank_every=40)
    write_docs(folder / "b.csv", 90)
    out = tmp_path / "out"
    proc = run_cli("predict", str(trained), str(folder / "*.csv"), "--engine", "ray", "--address", cluster,
                   "--num-workers", "2", "--rows-per-shard", "40", "--output", str(out), env=CLUSTER_ENV)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = shards_table(out)
    manifest = json.loads((out / "_fmkit_job.json").read_text())
    assert manifest["complete"] and manifest["rows"] == 240 and len(manifest["shards"]) == 4 + 3

    expected: list[dict[str, object]] = []
    for name in ("a.csv", "b.csv"):
        single = run_cli("predict", str(trained), str(folder / name), "--output", str(tmp_path / f"{name}.jsonl"))
        assert single.returncode == 0, single.stderr
        expected += [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
    assert len(expected) == 240 - 4  # a.csv: 4 blank texts, skipped by both engines
    assert [r["id"] for r in rows] == [r["id"] for r in expected]  # every row once, in input order
    assert [r["label"] for r in rows] == [r["label"] for r in expected]
    got = np.array([[r["scores"][k] for k in ("neg", "pos")] for r in rows])  # type: ignore[index]
    want = np.array([[r["scores"][k] for k in ("neg", "pos")] for r in expected])  # type: ignore[index]
    np.testing.assert_allclose(got, want, atol=2e-6)
    assert rows[0]["row"] == 0 and rows[-1]["row"] == 239  # global row numbers run across the files

    again = run_cli("predict", str(trained), str(folder / "*.csv"), "--engine", "ray", "--address", cluster,
                    "--rows-per-shard", "40", "--output", str(out), env=CLUSTER_ENV)
    assert again.returncode == 0 and "7 kept from an earlier run" in again.stderr, again.stderr
    assert shards_table(out) == rows


def _descendants(roots: set[int]) -> dict[int, str]:
    """pid -> command line of every process under `roots` (read from /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
    found: dict[int, str] = {}
    frontier = set(roots)
    while frontier:
        children = {pid for pid, parent in parents.items() if parent in frontier and pid not in found}
        for pid in children:
            with contextlib.suppress(OSError):
                found[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        frontier = children
    return found


def _wait_for(condition: object, timeout_s: float = 120) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if callable(condition) and condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for the job to reach the point under test")


@pytest.mark.slow
def test_embed_survives_a_killed_actor_and_a_killed_driver(cluster: str, tmp_path: Path) -> None:
    """MiniLM (each actor loads it once): slow enough per slice to kill things mid-job."""
    docs = write_docs(tmp_path / "docs.csv", 1000)
    out = tmp_path / "vectors"
    args = ["embed", "all-MiniLM-L6-v2", str(docs), "--engine", "ray", "--address", cluster, "--num-workers", "2",
            "--rows-per-shard", "80", "--output", str(out)]
    env = {**os.environ, **CLUSTER_ENV}

    # 1. kill -9 an actor process once the first shard is written: Ray restarts it and re-runs its slice.
    before = set(_descendants({os.getpid()}))
    job = subprocess.Popen([sys.executable, "-m", "fmkit", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=env, cwd=REPO)
    _wait_for(lambda: any(out.glob("part-*.parquet")))
    # The actors run under the cluster's raylets, which run under the `ray start` processes this module started.
    actors = {pid: cmd for pid, cmd in _descendants({os.getpid()}).items() if pid not in before and "MapWorker" in cmd}
    assert actors, "no actor process found to kill"
    os.kill(min(actors), signal.SIGKILL)
    _, stderr = job.communicate(timeout=300)
    assert job.returncode == 0, stderr[-3000:]
    rows = shards_table(out)
    assert [r["id"] for r in rows] == [f"doc-{i}" for i in range(1000)]  # none lost, none doubled
    assert not list(out.glob(".*")), "a temporary shard was left behind"

    # 2. the same vectors as the single-process `fmkit embed`
    single = tmp_path / "single.parquet"
    proc = run_cli("embed", "all-MiniLM-L6-v2", str(docs), "--output", str(single))
    assert proc.returncode == 0, proc.stderr
    reference = pads.dataset(str(single), format="parquet").to_table().to_pylist()
    assert [r["id"] for r in reference] == [r["id"] for r in rows]
    np.testing.assert_allclose(np.array([r["vector"] for r in rows]), np.array([r["vector"] for r in reference]),
                               atol=1e-5)

    # 3. the driver killed mid-job: the same command again keeps the finished shards and writes only the rest.
    shutil.rmtree(out)
    job = subprocess.Popen([sys.executable, "-m", "fmkit", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True, env=env, cwd=REPO)
    _wait_for(lambda: len(list(out.glob("part-*.parquet"))) >= 3)
    job.send_signal(signal.SIGKILL)
    job.wait(timeout=30)
    written = {p.name for p in out.glob("part-*.parquet")}
    assert 3 <= len(written) < 13, written
    again = run_cli(*args, env=CLUSTER_ENV)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{len(written)} kept from an earlier run" in again.stderr, again.stderr
    assert [r["id"] for r in shards_table(out)] == [f"doc-{i}" for i in range(1000)]

