"""Atomic writes: a failure (or a kill -9) mid-write leaves the previous file or folder intact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fmkit.utils import io as fio
from tests.conftest import REPO


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_atomic_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    fio.atomic_write_json(target, {"accuracy": 0.5})
    fio.atomic_write_json(target, {"accuracy": 0.9})
    assert json.loads(target.read_text()) == {"accuracy": 0.9}
    assert leftovers(tmp_path) == []


def test_failed_file_write_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "metrics.json"
    fio.atomic_write_text(target, "old")

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(fio.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        fio.atomic_write_text(target, "new content that never lands")
    assert target.read_text() == "old"
    assert leftovers(tmp_path) == []  # the temporary file is cleaned up


def write_model(directory: Path, version: str) -> None:
    (directory / "model.safetensors").write_text(f"weights {version}")
    (directory / "config.json").write_text(json.dumps({"version": version}))


def test_atomic_directory_replaces_the_folder(tmp_path: Path) -> None:
    final = tmp_path / "model"
    for version in ("1", "2"):
        with fio.atomic_directory(final) as tmp:
            write_model(tmp, version)
    assert (final / "model.safetensors").read_text() == "weights 2"
    assert sorted(p.name for p in final.iterdir()) == ["config.json", "model.safetensors"]
    assert leftovers(tmp_path) == []


def test_failure_inside_the_block_keeps_the_previous_folder(tmp_path: Path) -> None:
    final = tmp_path / "model"
    with fio.atomic_directory(final) as tmp:
        write_model(tmp, "1")
    with pytest.raises(RuntimeError), fio.atomic_directory(final) as tmp:
        (tmp / "model.safetensors").write_text("half written")
        raise RuntimeError("crash while saving")
    assert (final / "model.safetensors").read_text() == "weights 1"
    assert leftovers(tmp_path) == []


def test_failure_while_swapping_keeps_the_previous_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    final = tmp_path / "model"
    with fio.atomic_directory(final) as tmp:
        write_model(tmp, "1")
    real_replace = os.replace
    calls: list[tuple[str, str]] = []

    def replace_failing_on_the_new_folder(src: str | Path, dst: str | Path) -> None:
        calls.append((str(src), str(dst)))
        if Path(dst) == final and str(src).endswith(".tmp"):  # moving the new folder in fails
            raise OSError("rename failed")
        real_replace(src, dst)

    monkeypatch.setattr(fio.os, "replace", replace_failing_on_the_new_folder)
    with pytest.raises(OSError, match="rename failed"), fio.atomic_directory(final) as tmp:
        write_model(tmp, "2")
    monkeypatch.setattr(fio.os, "replace", real_replace)
    assert len(calls) >= 2  # the old folder was moved aside first, so this really tests putting it back
    assert (final / "model.safetensors").read_text() == "weights 1"
    assert leftovers(tmp_path) == []


def test_kill9_mid_write_keeps_the_previous_folder(tmp_path: Path) -> None:
    final = tmp_path / "model"
    with fio.atomic_directory(final) as tmp:
        write_model(tmp, "1")
    marker = tmp_path / "writing"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from fmkit.utils.io import atomic_directory
        with atomic_directory(Path({str(final)!r})) as tmp:
            (tmp / "model.safetensors").write_text("half written")
            Path({str(marker)!r}).touch()
            time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        assert marker.exists(), "the writer never started"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (final / "model.safetensors").read_text() == "weights 1"
    assert json.loads((final / "config.json").read_text()) == {"version": "1"}
