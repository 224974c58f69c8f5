"""Kill -9 the monitor mid-stream, let the stream grow, restart: every line stored exactly once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

T0 = 1_700_000_000.0
pytestmark = pytest.mark.slow


def _stored(db: Path) -> list[tuple[int, str]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute("SELECT offset, text FROM items ORDER BY offset").fetchall()
        except sqlite3.OperationalError:
            return []


def test_kill_and_restart_loses_nothing_and_scores_nothing_twice(tiny_model: Path, tmp_path: Path) -> None:
    from fmkit.models.backbone import load_tokenizer
    from fmkit.models.classifier import TextClassifier

    TextClassifier.from_backbone(tiny_model, ["Bearish", "Bullish", "Neutral"], max_length=32).save_pretrained(
        tmp_path / "clf", load_tokenizer(tiny_model))
    from fmkit.apps.monitor import init_monitor

    init_monitor(tmp_path / "app", str(tmp_path / "clf"), window_seconds=60, batch_size=4)
    path = tmp_path / "news.jsonl"
    lines = [{"text": f"shares {'rise' if i % 2 else 'fall'} report {i}", "time": T0 + i} for i in range(400)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines[:200]))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "fmkit", "app", "monitor", "run", str(tmp_path / "app"), str(path)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db = tmp_path / "app" / "monitor.db"
    deadline = time.time() + 120
    while not _stored(db) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no clean shutdown: whatever was mid-batch is lost from memory
    proc.wait()
    assert 0 < len(_stored(db)) <= 400
    with open(path, "a") as fh:  # the stream kept growing while the monitor was down
        fh.write("".join(json.dumps(line) + "\n" for line in lines[200:]))
    done = subprocess.run([*cmd, "--once"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    stored = _stored(db)
    assert [text for _, text in stored] == [line["text"] for line in lines]
    assert len({offset for offset, _ in stored}) == 400
