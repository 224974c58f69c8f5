"""The run registry: one SQLite file per runs folder (RUNS_ROOT/registry.db) that every run reports to.

Several training processes write to the same file at once, so: WAL journal (readers never block the
writer), a busy timeout (writers queue instead of failing), one short transaction per call and a fresh
connection per call (safe across threads and forks). A run records its pid, host and a heartbeat; a
"running" row whose process is gone (or whose heartbeat stopped) is marked interrupted when listed.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REGISTRY_FILE = "registry.db"
HEARTBEAT_SECONDS = 15.0
# A live run beats every HEARTBEAT_SECONDS; on this host a dead pid is proof enough, elsewhere we wait longer.
STALE_SAME_HOST_SECONDS = 120.0
STALE_OTHER_HOST_SECONDS = 900.0
STATUSES = ("running", "finished", "failed", "interrupted")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    path TEXT,
    command TEXT NOT NULL,
    task TEXT,
    model TEXT,
    strategy TEXT,
    status TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL,
    heartbeat REAL,
    pid INTEGER,
    host TEXT,
    parent TEXT,
    config TEXT,
    data TEXT,
    env TEXT,
    final_metrics TEXT,
    artifacts TEXT,
    error TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    epoch REAL,
    time REAL NOT NULL,
    PRIMARY KEY (run_id, kind, step, name)
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started);
"""

_JSON_COLUMNS = ("config", "data", "env", "final_metrics", "artifacts")


@dataclass(frozen=True)
class RunRecord:
    """One row of the registry, JSON columns decoded."""

    id: str
    path: str | None
    command: str
    task: str | None
    model: str | None
    strategy: str | None
    status: str
    started: float
    ended: float | None
    heartbeat: float | None
    pid: int | None
    host: str | None
    parent: str | None
    config: dict[str, Any] | None
    data: dict[str, Any] | None
    env: dict[str, Any] | None
    final_metrics: dict[str, Any] | None
    artifacts: list[dict[str, Any]] | None
    error: str | None

    @property
    def duration(self) -> float | None:
        end = self.ended or (self.heartbeat if self.status == "running" else None)
        return None if end is None else max(0.0, end - self.started)

    def headline(self) -> dict[str, float]:
        """The scalar final metrics (what tables and comparisons show)."""
        metrics = self.final_metrics or {}
        return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["duration"] = self.duration
        return out


def run_id_for(run_dir: Path, root: Path) -> str:
    """A run is named by its folder relative to the runs root (unique within one registry)."""
    run_dir, root = Path(run_dir).resolve(), Path(root).resolve()
    try:
        return run_dir.relative_to(root).as_posix() or run_dir.name
    except ValueError:
        return f"{run_dir.name}-{abs(hash(str(run_dir))) % 10**6:06d}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) still answers kill(0): read its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return True


class Registry:
    """Read and write RUNS_ROOT/registry.db."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.path = self.root / REGISTRY_FILE
        self._local = threading.local()

    # --- plumbing -------------------------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        """One connection per thread and process (a forked child opens its own), set up once."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA journal_mode = WAL")  # readers never block the writer, nor it them
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable at checkpoints, no fsync per commit
        conn.executescript(_SCHEMA)
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextmanager
    def _connect(self, write: bool = True) -> Iterator[sqlite3.Connection]:
        """A short transaction: BEGIN IMMEDIATE takes the write lock up front, so busy waits happen here."""
        if not write and not self.exists():
            raise FileNotFoundError(self.path)
        self.root.mkdir(parents=True, exist_ok=True)
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            conn.close()
        self._local.conn = None

    def exists(self) -> bool:
        return self.path.is_file()

    # --- writes ---------------------------------------------------------------------------------------
    def start(self, run_id: str, *, path: Path | None, command: str, config: dict[str, Any] | None = None,
              data: dict[str, Any] | None = None, env: dict[str, Any] | None = None, parent: str | None = None,
              fresh: bool = True) -> None:
        """Register a run as running. `fresh` replaces an earlier run with the same id (e.g. --overwrite)."""
        now = time.time()
        config = config or {}
        fields = {
            "path": str(path) if path is not None else None, "command": command,
            "task": (config.get("task") or {}).get("type"), "model": (config.get("model") or {}).get("name"),
            "strategy": (config.get("strategy") or {}).get("name"), "status": "running", "ended": None,
            "heartbeat": now, "pid": os.getpid(), "host": socket.gethostname(), "parent": parent,
            "config": json.dumps(config, default=str), "data": json.dumps(data, default=str),
            "env": json.dumps(env, default=str), "error": None,
        }
        with self._connect() as conn:
            row = conn.execute("SELECT started FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is not None and fresh:
                conn.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
                conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
                row = None
            if row is None:
                cols = ["id", "started", *fields]
                conn.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                             (run_id, now, *fields.values()))
            else:  # resumed: keep the start time and the curves so far
                sets = ", ".join(f"{k} = ?" for k in fields)
                conn.execute(f"UPDATE runs SET {sets} WHERE id = ?", (*fields.values(), run_id))

    def log(self, run_id: str, step: int, metrics: dict[str, float], kind: str) -> None:
        now = time.time()
        epoch = metrics.get("epoch")
        phase = metrics.get("phase")
        if isinstance(phase, str) and phase:  # a strategy's phases restart step numbering: keep them apart
            kind = f"{phase}:{kind}"
        rows = [(run_id, kind, int(step), name, float(value), epoch, now)
                for name, value in metrics.items()
                if name != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool)]
        with self._connect() as conn:
            conn.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ?", (now, run_id))

    def heartbeat(self, run_id: str) -> None:
        with self._connect() as conn:
            conn.execute("UPDATE runs SET heartbeat = ? WHERE id = ? AND status = 'running'", (time.time(), run_id))

    def end(self, run_id: str, status: str, *, final_metrics: dict[str, Any] | None = None,
            artifacts: list[dict[str, Any]] | None = None, error: str | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        now = time.time()
        with self._connect() as conn:
            conn.execute(
                "UPDATE runs SET status = ?, ended = ?, heartbeat = ?, error = ?, "
                "final_metrics = COALESCE(?, final_metrics), artifacts = COALESCE(?, artifacts) WHERE id = ?",
                (status, now, now, error, json.dumps(final_metrics, default=str) if final_metrics is not None else None,
                 json.dumps(artifacts, default=str) if artifacts is not None else None, run_id),
            )

    def remove(self, run_id: str) -> bool:
        with self._connect() as conn:
            conn.execute("DELETE FROM metrics WHERE run_id = ?", (run_id,))
            return conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount > 0

    # --- reads ----------------------------------------------------------------------------------------
    def runs(self, *, status: str | None = None, task: str | None = None, search: str | None = None) -> list[RunRecord]:
        """Every run, newest first; stale "running" rows are marked interrupted first."""
        if not self.exists():
            return []
        self.mark_stale()
        query, params = "SELECT * FROM runs WHERE 1 = 1", []
        if status:
            query += " AND status = ?"
            params.append(status)
        if task:
            query += " AND task = ?"
            params.append(task)
        if search:
            query += " AND (id LIKE ? OR model LIKE ? OR command LIKE ?)"
            params += [f"%{search}%"] * 3
        with self._connect(write=False) as conn:
            rows = conn.execute(query + " ORDER BY started DESC", params).fetchall()
        return [_record(row) for row in rows]

    def get(self, run_id: str) -> RunRecord | None:
        if not self.exists():
            return None
        self.mark_stale()
        with self._connect(write=False) as conn:
            row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return None if row is None else _record(row)

    def curves(self, run_id: str) -> dict[str, list[dict[str, Any]]]:
        """{"train/loss": [{"step", "epoch", "value"}...], "eval/eval_accuracy": [...]}, in step order."""
        if not self.exists():
            return {}
        with self._connect(write=False) as conn:
            rows = conn.execute("SELECT kind, step, name, value, epoch FROM metrics WHERE run_id = ? "
                                "ORDER BY kind, name, step", (run_id,)).fetchall()
        out: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            out.setdefault(f"{row['kind']}/{row['name']}", []).append(
                {"step": row["step"], "epoch": row["epoch"], "value": row["value"]})
        return out

    def mark_stale(self, now: float | None = None) -> list[str]:
        """Mark runs whose process is gone as interrupted; returns their ids."""
        now = now or time.time()
        host = socket.gethostname()
        with self._connect(write=False) as conn:
            running = conn.execute("SELECT id, pid, host, heartbeat, path FROM runs WHERE status = 'running'").fetchall()
        stale = []
        for row in running:
            beat = row["heartbeat"] or 0.0
            if row["host"] == host:
                dead = (row["pid"] is not None and not pid_alive(row["pid"])) or now - beat > STALE_SAME_HOST_SECONDS
            else:
                dead = now - beat > STALE_OTHER_HOST_SECONDS
            if dead:
                stale.append((row["id"], beat, row["path"]))
        if not stale:
            return []
        with self._connect() as conn:
            for run_id, beat, _ in stale:
                conn.execute("UPDATE runs SET status = 'interrupted', ended = ?, error = ? WHERE id = ? "
                             "AND status = 'running'", (beat, "process ended without reporting (killed or crashed)",
                                                        run_id))
        for _, beat, path in stale:
            _mark_run_json_interrupted(Path(path) if path else None, beat)
        return [run_id for run_id, _, _ in stale]


def _record(row: sqlite3.Row) -> RunRecord:
    values = dict(row)
    for key in _JSON_COLUMNS:
        values[key] = json.loads(values[key]) if values[key] else None
    return RunRecord(**values)


def _mark_run_json_interrupted(run_dir: Path | None, when: float) -> None:
    """Keep RUN_DIR/run.json in step with the registry, so both say the run is over."""
    if run_dir is None or not (run_dir / "run.json").is_file():
        return
    from fmkit.utils.io import atomic_write_json

    try:
        record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if record.get("status") == "running":
        record.update(status="interrupted", ended=when)
        atomic_write_json(run_dir / "run.json", record)
