"""End to end through the CLI: export (fp32 and int8, verified on an SST-2 slice), predict, serve."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, run_cli, shared

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sst2_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = shared("sst2", "SST-2", "dev.tsv")
    out = tmp_path_factory.mktemp("sst2") / "dev200.csv"
    with open(src, encoding="utf-8", newline="") as fh, open(out, "w", encoding="utf-8", newline="") as dst:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        writer = csv.writer(dst)
        writer.writerow(["text", "label"])
        for i, row in enumerate(reader):
            if i == 200:
                break
            writer.writerow([row[1], row[0]])
    return out


@pytest.fixture(scope="module")
def model_dir(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fmkit.models.backbone import load_tokenizer
    from fmkit.models.classifier import TextClassifier

    out = tmp_path_factory.mktemp("m") / "model"
    TextClassifier.from_backbone(tiny_model, ["0", "1"], max_length=64).save_pretrained(out, load_tokenizer(tiny_model))
    return out


def test_export_verify_predict(model_dir: Path, sst2_slice: Path, tmp_path: Path) -> None:
    out = tmp_path / "onnx"
    r = run_cli("export", str(model_dir), "--format", "onnx", "--output", str(out), "--verify", str(sst2_slice))
    assert r.returncode == 0, r.stderr
    assert "agreement 100.00%" in r.stdout and "(+0.00 points)" in r.stdout
    r = run_cli("export", str(model_dir), "--quantize", "int8", "--output", str(tmp_path / "int8"), "--verify",
                str(sst2_slice), "--max-accuracy-drop", "100")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "int8" / "export.json").read_text())
    assert report["quantization"] == "int8" and report["examples"] == 200 and report["agreement"] > 0.8
    a = run_cli("predict", str(model_dir), str(sst2_slice), "--backend", "torch")
    b = run_cli("predict", str(out), str(sst2_slice), "--backend", "onnx")
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    la = [json.loads(x)["label"] for x in a.stdout.splitlines()]
    lb = [json.loads(x)["label"] for x in b.stdout.splitlines()]
    assert len(la) == 200 and la == lb
    r = run_cli("eval", str(out), "--data", str(sst2_slice), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["num_examples"] == 200


def test_serve_subprocess(model_dir: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FMKIT_API_KEY": "k1"}
    proc = subprocess.Popen([sys.executable, "-m", "fmkit", "serve", str(model_dir), "--port", str(port),
                             "--set", "serve.max_texts_per_request=4"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.3)
        headers = {"Authorization": "Bearer k1"}
        assert httpx.post(f"{base}/v1/predict", json={"texts": ["good"]}).status_code == 401
        r = httpx.post(f"{base}/v1/predict", json={"texts": ["good movie", "awful"]}, headers=headers)
        assert r.status_code == 200 and [p["label"] in ("0", "1") for p in r.json()["predictions"]] == [True, True]
        assert httpx.post(f"{base}/v1/predict", json={"texts": ["a"] * 5}, headers=headers).status_code == 413
        assert "fmkit_requests_total" in httpx.get(f"{base}/metrics", headers=headers).text
    finally:
        proc.terminate()
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status still says "terminated".
        assert proc.wait(60) in (0, -15)
        assert b"Traceback" not in (proc.stderr.read() if proc.stderr else b"")
