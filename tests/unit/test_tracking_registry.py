"""Run registry: records, curves, stale runs, and several processes writing at once."""

from __future__ import annotations

import json
import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fmkit.tracking import Registry, RunRecorder, run_id_for
from fmkit.tracking.registry import STALE_SAME_HOST_SECONDS


def test_start_log_end_round_trip(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    reg.start("r1", path=tmp_path / "r1", command="train", config={"task": {"type": "classification"},
                                                                    "model": {"name": "m"}, "strategy": {"name": "full"}},
              data={"train": {"rows": 10}}, env={"versions": {"torch": "x"}})
    reg.log("r1", 10, {"loss": 0.5, "learning_rate": 1e-4, "epoch": 0.5}, "train")
    reg.log("r1", 20, {"loss": 0.25, "epoch": 1.0}, "train")
    reg.log("r1", 20, {"eval_accuracy": 0.75, "epoch": 1.0, "phase": "probe"}, "eval")
    reg.end("r1", "finished", final_metrics={"accuracy": 0.75, "per_class": {"a": {}}}, artifacts=[{"path": "model/"}])
    (record,) = reg.runs()
    assert (record.id, record.status, record.task, record.model, record.strategy) == ("r1", "finished", "classification",
                                                                                       "m", "full")
    assert record.headline() == {"accuracy": 0.75}
    assert record.data == {"train": {"rows": 10}} and record.artifacts == [{"path": "model/"}]
    curves = reg.curves("r1")
    assert [p["value"] for p in curves["train/loss"]] == [0.5, 0.25]
    assert [p["epoch"] for p in curves["train/loss"]] == [0.5, 1.0]
    assert curves["probe:eval/eval_accuracy"] == [{"step": 20, "epoch": 1.0, "value": 0.75}]
    assert "train/epoch" not in curves
    assert reg.runs(status="running") == [] and len(reg.runs(search="r")) == 1
    assert reg.remove("r1") and reg.runs() == [] and reg.curves("r1") == {}


def test_fresh_start_replaces_and_resume_keeps_curves(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    reg.start("r", path=None, command="train")
    reg.log("r", 1, {"loss": 1.0}, "train")
    reg.start("r", path=None, command="train", fresh=False)  # resumed: the curve so far stays
    assert len(reg.curves("r")["train/loss"]) == 1
    reg.start("r", path=None, command="train", fresh=True)  # --overwrite: a new run under the same name
    assert reg.curves("r") == {}


def test_dead_process_is_marked_interrupted(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps({"status": "running", "started": 1.0}))
    reg = Registry(tmp_path)
    reg.start("run", path=run_dir, command="train")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with reg._connect() as conn:
        conn.execute("UPDATE runs SET pid = ? WHERE id = 'run'", (dead.pid,))
    assert reg.get("run").status == "interrupted"  # type: ignore[union-attr]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"


def test_live_process_with_old_heartbeat_is_interrupted_but_fresh_one_is_not(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    reg.start("alive", path=None, command="train")  # this very process: alive, heartbeat now
    assert reg.mark_stale() == []
    assert reg.mark_stale(now=time.time() + STALE_SAME_HOST_SECONDS + 5) == ["alive"]


def _writer(root: str, worker: int, n: int) -> None:
    reg = Registry(Path(root))
    run_id = f"w{worker}"
    reg.start(run_id, path=None, command="train")
    for step in range(n):
        reg.log(run_id, step, {"loss": float(step), "epoch": step / n}, "train")
    reg.end(run_id, "finished", final_metrics={"accuracy": worker / 10})


def test_concurrent_processes_do_not_corrupt_the_registry(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 60)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    reg = Registry(tmp_path)
    runs = {r.id: r for r in reg.runs()}
    assert sorted(runs) == ["w0", "w1", "w2", "w3"]
    for w in range(4):
        assert runs[f"w{w}"].status == "finished"
        assert runs[f"w{w}"].headline() == {"accuracy": w / 10}
        assert [p["value"] for p in reg.curves(f"w{w}")["train/loss"]] == [float(s) for s in range(60)]
    with reg._connect(write=False) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_recorder_reads_the_run_directory(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "exp1"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("task:\n  type: classification\nmodel:\n  name: tiny\n")
    (run_dir / "data.json").write_text(json.dumps({"train": {"rows": 3}}))
    (run_dir / "metrics.json").write_text(json.dumps({"accuracy": 1.0, "labels": ["a"]}))
    recorder = RunRecorder(run_dir, "train")
    assert recorder.run_id == run_id_for(run_dir, tmp_path / "runs") == "exp1"
    recorder.end("finished")
    record = Registry(tmp_path / "runs").get("exp1")
    assert record is not None and record.status == "finished" and record.model == "tiny"
    assert record.data == {"train": {"rows": 3}} and record.headline() == {"accuracy": 1.0}
    assert {a["path"] for a in record.artifacts or []} == {"config.yaml", "data.json", "metrics.json"}


def test_recorder_respects_track_registry_off(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "off"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("track:\n  registry: false\n")
    RunRecorder(run_dir, "train").end("finished")
    assert not (tmp_path / "runs" / "registry.db").exists()


def test_unknown_status_is_rejected(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    reg.start("x", path=None, command="train")
    with pytest.raises(ValueError):
        reg.end("x", "done")


def test_runs_compare_table_marks_the_best_score_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fmkit.cli import main

    reg = Registry(tmp_path)
    for run_id, acc, secs in (("x", 0.5, 10.0), ("y", 0.75, 20.0)):
        reg.start(run_id, path=None, command="train", config={"train": {"epochs": 1 if run_id == "x" else 2}})
        reg.end(run_id, "finished", final_metrics={"accuracy": acc, "train_seconds": secs, "steps": 8})
    assert main(["runs", "compare", "x", "y", "--runs", str(tmp_path)]) == 0
    lines = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert lines["accuracy"] == ["0.5000", "0.7500", "*"]
    assert lines["train_seconds"] == ["10", "s", "*", "20", "s"]  # durations as `10 s`; lower is better
    assert lines["steps"] == ["8", "8"]  # a count, not a score
    assert lines["train.epochs"] == ["1", "2"]
    assert main(["runs", "ls", "--runs", str(tmp_path / "missing")]) == 2
    assert "no run registry here" in capsys.readouterr().err
