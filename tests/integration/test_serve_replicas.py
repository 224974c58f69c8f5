"""`fmkit serve --workers N`: the worker factory on every kind of model folder (run dir, ONNX, int8), and two
real worker processes sharing a port under concurrent requests, with the key rule beyond localhost intact."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import REPO, run_cli
from tests.pg_helpers import free_port

TEXTS = [f"the movie was {w} and {v}" for w in ("good", "awful", "great", "boring") for v in ("fine", "sad", "happy", "poor")]


@pytest.fixture(scope="module")
def folders(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same classifier as a run directory (model/ inside), an ONNX export and an int8 export."""
    from fmkit.inference.export import export_onnx
    from fmkit.models.backbone import load_tokenizer
    from fmkit.models.classifier import TextClassifier

    root = tmp_path_factory.mktemp("replicas")
    TextClassifier.from_backbone(tiny_model, ["neg", "pos"], max_length=32).save_pretrained(root / "run" / "model",
                                                                                             load_tokenizer(tiny_model))
    export_onnx(root / "run", root / "onnx")
    export_onnx(root / "run", root / "int8", quantize="int8")
    return {"run": root / "run", "onnx": root / "onnx", "int8": root / "int8"}


def expected_labels(folder: Path) -> list[str]:
    from fmkit.inference import load_predictor

    return [record["label"] for record in load_predictor(folder).predict(TEXTS)]


@pytest.mark.parametrize("kind", ["run", "onnx", "int8"])
def test_worker_factory_serves_every_model_folder(folders: dict[str, Path], kind: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from fmkit.cli.serve import worker_app
    from fmkit.config.schema import ServeConfig

    monkeypatch.setenv("FMKIT_SERVE_MODEL", str(folders[kind]))
    monkeypatch.setenv("FMKIT_SERVE_SETTINGS", ServeConfig().model_dump_json())
    monkeypatch.delenv("FMKIT_API_KEY", raising=False)
    with TestClient(worker_app(), base_url="http://127.0.0.1") as client:
        reply = client.post("/v1/predict", json={"texts": TEXTS})
        assert reply.status_code == 200, reply.text
        assert [p["label"] for p in reply.json()["predictions"]] == expected_labels(folders[kind])
        assert re.search(rf'fmkit_worker_info{{pid="{os.getpid()}"}} 1', client.get("/metrics").text)


def test_workers_beyond_localhost_still_need_a_key(folders: dict[str, Path]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FMKIT_API_KEY"}
    done = subprocess.run([sys.executable, "-m", "fmkit", "serve", str(folders["int8"]), "--workers", "2", "--host",
                           "0.0.0.0", "--port", str(free_port())], capture_output=True, text=True, timeout=60, env=env,
                          cwd=REPO)
    assert done.returncode == 2 and "give it a key" in done.stderr and "Traceback" not in done.stderr


def test_missing_model_folder_fails_once_before_the_workers_start(tmp_path: Path) -> None:
    done = run_cli("serve", str(tmp_path / "nothing"), "--workers", "2", "--port", str(free_port()))
    assert done.returncode == 2 and "Model folder not found" in done.stderr


@pytest.mark.slow
def test_two_workers_share_the_port_and_answer_concurrent_requests(folders: dict[str, Path]) -> None:
    kind = "run"  # the ONNX and int8 folders go through the same factory (test_worker_factory_serves_every_model_folder)
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FMKIT_API_KEY": "k-replicas"}
    proc = subprocess.Popen([sys.executable, "-m", "fmkit", "serve", str(folders[kind]), "--workers", "2", "--port",
                             str(port)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base, headers = f"http://127.0.0.1:{port}", {"Authorization": "Bearer k-replicas"}
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                if httpx.get(f"{base}/ready", headers=headers, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.3)
        assert httpx.post(f"{base}/v1/predict", json={"texts": TEXTS[:1]}).status_code == 401
        want = expected_labels(folders[kind])

        def ask(i: int) -> tuple[list[str], str]:
            with httpx.Client(headers=headers, timeout=60) as client:  # a new connection: any worker may take it
                texts = [TEXTS[(i + k) % len(TEXTS)] for k in range(3)]
                labels = [p["label"] for p in client.post(f"{base}/v1/predict", json={"texts": texts}).json()["predictions"]]
                pid = re.search(r'fmkit_worker_info\{pid="(\d+)"\}', client.get(f"{base}/metrics").text)
                return labels, pid.group(1) if pid else ""

        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(ask, range(96)))
        for i, (labels, _) in enumerate(answers):
            assert labels == [want[(i + k) % len(TEXTS)] for k in range(3)]
        pids = {pid for _, pid in answers}
        assert pids <= {str(p) for p in _children(proc.pid)}  # answered by the supervisor's worker processes
        # The kernel hands each new connection to one of the listening workers; with 96 connections both answer.
        assert len(pids) == 2, f"only the workers {pids} answered"
    finally:
        proc.terminate()
        assert proc.wait(60) in (0, -15)
        assert b"Traceback" not in (proc.stderr.read() if proc.stderr else b"")


def _children(pid: int) -> list[int]:
    """Worker processes of the uvicorn supervisor `pid` (Linux /proc)."""
    if not shutil.which("pgrep"):
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]
