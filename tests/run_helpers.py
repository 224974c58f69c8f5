"""Run folders and registry rows for tests of what reads them (dashboard API, browser tests)."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import yaml

from fmkit.tracking import Registry


def fake_run(root: Path, name: str, *, requested: str = "auto", ran: str = "full", took: float = 3840.0,
             metrics: dict[str, Any] | None = None, primary_metric: str = "macro_f1", with_model: bool = False) -> Path:
    """A finished run that `strategy: auto` turned into `full` after a probe (head warm-up) phase, as the files
    and registry rows a real run leaves. `with_model` adds a stand-in model/fmkit.json (enough to be listed as
    a model, not to predict): training real ones for minutes is not what the UI tests test."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    config = {"task": {"type": "classification"}, "model": {"name": "sentence-transformers/all-MiniLM-L6-v2"},
              "strategy": {"name": requested}, "train": {"epochs": 3}, "eval": {"primary_metric": primary_metric}}
    metrics = metrics or {"accuracy": 0.875, "macro_f1": 0.8667, "train_seconds": 202.69, "wall_seconds": 0.85,
                          "steps": 30, "labels": ["neg", "pos"], "confusion_matrix": [[7, 1], [1, 7]]}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (run_dir / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    (run_dir / "strategy.json").write_text(json.dumps({"requested": requested, "strategy": ran,
                                                       "reason": "enough examples per class"}), encoding="utf-8")
    if with_model:
        (run_dir / "model").mkdir()
        (run_dir / "model" / "fmkit.json").write_text(json.dumps({"task": "classification"}), encoding="utf-8")
    history: list[dict[str, Any]] = [{"kind": "train", "phase": "probe", "step": s, "loss": 1.0 / s} for s in range(1, 11)]
    history += [{"kind": "eval", "phase": "probe", "step": 10, "eval_accuracy": 0.7}]
    history += [{"kind": "train", "step": s, "loss": 0.7 - s / 60} for s in range(2, 31, 2)]
    history += [{"kind": "eval", "step": s, "eval_accuracy": 0.8 + s / 300, "eval_macro_f1": 0.79 + s / 300}
                for s in (10, 20, 30)]
    (run_dir / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history), encoding="utf-8")
    registry = Registry(root)
    registry.start(name, path=run_dir, command="train", config=config)
    for row in history:
        values = {k: v for k, v in row.items() if k not in ("kind", "step")}
        registry.log(name, row["step"], values, row["kind"])
    registry.end(name, "finished", final_metrics=metrics)
    with closing(sqlite3.connect(registry.path)) as conn, conn:  # an hour-long run, without waiting an hour
        conn.execute("UPDATE runs SET started = ended - ? WHERE id = ?", (took, name))
    registry.close()
    started = time.time() - took
    (run_dir / "run.json").write_text(json.dumps({"command": "train", "status": "finished", "started": started,
                                                  "ended": started + took, "metrics": metrics}), encoding="utf-8")
    return run_dir
