"""Financial news sentiment monitor: score a stream of news items, store them, aggregate, alert.

Items are JSON lines {"text", "time" (ISO 8601 or epoch seconds), optional "ticker", "source"} from a
growing file (tail -f), standard input or HTTP POST (see monitor_web). Each batch is scored by a
trained fmkit classifier (and a topic classifier when given), then the items AND the stream's read
offset are committed in ONE transaction: after a crash or kill the monitor re-reads from the last
committed offset, so nothing is lost, and a unique (stream, offset) key means nothing is stored or
scored twice.

Aggregates are tumbling event-time windows (`window_seconds`), overall ("*") and per ticker: count,
mean sentiment (P(positive) - P(negative)) and share negative. When a window closes (an item at or
after its end has been stored) it is compared with the previous `baseline_windows` windows of the
same scope; a jump of the negative share (absolute or z-score) or of the volume (z-score or ratio)
raises an alert, stored in the database, appended to alerts.jsonl and optionally POSTed to a webhook.

App folder: monitor.json (settings), monitor.db (SQLite, unless `db` is another SQLAlchemy URL),
alerts.jsonl.

Several workers (processes, machines) may share one PostgreSQL database, each following its own files
(monitor_workers.py): an offset moves only from the value its worker last saw, so two workers on one file
stop with an error instead of storing twice, and a lost connection is retried (monitor_store.py).
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import sqlalchemy as sa

from fmkit.errors import ConfigError, DataError, FmkitError
from fmkit.utils.io import atomic_write_json

OVERALL = "*"
NEGATIVE_HINTS = ("neg", "bear", "down", "sell")
POSITIVE_HINTS = ("pos", "bull", "up", "buy")


@dataclass
class MonitorSettings:
    model: str
    db: str
    topic_model: str | None = None
    negative_label: str | None = None
    positive_label: str | None = None
    window_seconds: int = 3600
    baseline_windows: int = 12
    min_baseline_windows: int = 3
    min_count: int = 10
    neg_share_jump: float = 0.25
    neg_share_z: float = 3.0
    volume_z: float = 4.0
    volume_ratio: float = 3.0
    webhook: str | None = None
    batch_size: int = 64
    # Items read, scored and stored per transaction (None: batch_size). The predictor sorts them by length into
    # forward passes of batch_size, so a larger read pads less: int8 scored 600 tweets/s in calls of 512 vs 295 in
    # calls of 64 (BENCHMARKS.md, issue 21). init_monitor writes 8 x batch_size.
    read_batch: int | None = None
    # auto: the model's int8 ONNX export when one sits beside it (monitor_scoring.py), else the model; torch | int8.
    backend: str = "auto"
    db_retry_seconds: float = 60.0  # how long a lost database connection is retried before the worker stops


def init_monitor(app_dir: Path | str, model: str, *, db: str | None = None, overwrite: bool = False,
                 **options: Any) -> MonitorSettings:
    """Write APP_DIR/monitor.json after checking the model loads and its labels have a negative class."""
    app_dir = Path(app_dir)
    if (app_dir / "monitor.json").exists() and not overwrite:
        raise FmkitError(f"{app_dir} already holds a monitor; pass --overwrite to replace its settings.")
    model_path = str(Path(model).resolve())
    settings = MonitorSettings(model=model_path, db=db or f"sqlite:///{(app_dir / 'monitor.db').resolve()}",
                               **{k: v for k, v in options.items() if v is not None})
    if settings.topic_model:
        settings.topic_model = str(Path(settings.topic_model).resolve())
    settings.read_batch = settings.read_batch or 8 * settings.batch_size
    from fmkit.apps.monitor_scoring import scoring_model
    from fmkit.inference import load_predictor

    scoring_model(model_path, settings.backend)  # backend int8 without an export fails now, not at the first run
    labels = list(load_predictor(model_path).labels)
    settings.negative_label, settings.positive_label = polarity_labels(labels, settings.negative_label,
                                                                       settings.positive_label)
    atomic_write_json(app_dir / "monitor.json", asdict(settings))  # creates APP_DIR only once the model checked out
    return settings


def polarity_labels(labels: list[str], negative: str | None, positive: str | None) -> tuple[str, str | None]:
    """The model's negative (required) and positive (optional) labels, named or recognised by name."""
    def find(hints: tuple[str, ...]) -> str | None:
        return next((lab for lab in labels if any(h in lab.lower() for h in hints)), None)

    negative = negative or find(NEGATIVE_HINTS)
    positive = positive or find(POSITIVE_HINTS)
    for name, value in (("negative", negative), ("positive", positive)):
        if value is not None and value not in labels:
            raise ConfigError(f"--{name}-label '{value}' is not one of the model's labels ({', '.join(labels)}).")
    if negative is None:
        raise ConfigError(f"Cannot tell which of the model's labels ({', '.join(labels)}) is negative; "
                          "pass --negative-label (and --positive-label).")
    return negative, positive


# --- storage ----------------------------------------------------------------------------------------

metadata = sa.MetaData()
items_table = sa.Table(
    "items", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("stream", sa.String(512), nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("ts", sa.Float, nullable=False, index=True),
    sa.Column("ticker", sa.String(64), index=True),
    sa.Column("source", sa.String(128)),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("label", sa.String(128), nullable=False),
    sa.Column("sentiment", sa.Float, nullable=False),
    sa.Column("negative", sa.Boolean, nullable=False),
    sa.Column("topic", sa.String(128)),
    sa.Column("scored_at", sa.Float, nullable=False),
    sa.UniqueConstraint("stream", "offset", name="uq_stream_offset"),
)
progress_table = sa.Table(
    "progress", metadata,
    sa.Column("stream", sa.String(512), primary_key=True),
    sa.Column("offset", sa.BigInteger, nullable=False),
)
state_table = sa.Table(
    "state", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Float, nullable=False),
)
alerts_table = sa.Table(
    "alerts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("window_start", sa.Float, nullable=False, index=True),
    sa.Column("window_end", sa.Float, nullable=False),
    sa.Column("scope", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("baseline", sa.Float, nullable=False),
    sa.Column("z", sa.Float),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
)


def open_engine(url: str) -> sa.Engine:
    from fmkit.apps.monitor_store import engine_options, shown_url

    try:
        engine = sa.create_engine(url, **engine_options(url))
        if engine.dialect.name == "sqlite":
            @sa.event.listens_for(engine, "connect")
            def _wal(conn: Any, _: Any) -> None:
                # WAL lets the dashboard read while the ingester writes; NORMAL sync is still durable per commit in WAL.
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA busy_timeout=10000")
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":  # workers starting together: one creates the tables, others wait
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(720101)"))
            metadata.create_all(conn)
    except (sa.exc.ArgumentError, sa.exc.OperationalError, ModuleNotFoundError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        hint = " (pip install 'fmkit[postgres]')" if isinstance(exc, ModuleNotFoundError) else ""
        raise ConfigError(f"cannot open the database '{shown_url(url)}': {reason}{hint}. Give a SQLAlchemy URL such "
                          "as sqlite:///monitor.db or postgresql+psycopg://user@host/db (password in PGPASSWORD or the "
                          "URL).") from None
    return engine


# --- parsing items ------------------------------------------------------------------------------------

@dataclass
class Item:
    offset: int
    text: str
    ts: float
    ticker: str | None
    source: str | None


def parse_time(value: Any) -> float:
    if value is None or value == "":
        return time.time()
    if isinstance(value, int | float):
        return float(value) / 1000.0 if value > 1e11 else float(value)  # milliseconds are common too
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise DataError(f"time '{text}' is neither ISO 8601 nor epoch seconds") from None


def parse_item(line: bytes | str, offset: int) -> Item:
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"not JSON ({exc.msg if isinstance(exc, json.JSONDecodeError) else exc})") from None
    if not isinstance(obj, dict) or not str(obj.get("text", "")).strip():
        raise DataError('an item needs a non-empty "text" field')
    ticker = obj.get("ticker")
    return Item(offset, str(obj["text"]), parse_time(obj.get("time")), str(ticker).upper() if ticker else None,
                str(obj["source"]) if obj.get("source") else None)


# --- the monitor ----------------------------------------------------------------------------------------

class Monitor:
    """Scores batches, stores them with their offsets atomically, evaluates closed windows."""

    def __init__(self, app_dir: Path | str, settings: MonitorSettings, predictor: Any, topic_predictor: Any | None = None,
                 log: Any = sys.stderr) -> None:
        self.app_dir = Path(app_dir)
        self.settings = settings
        self.predictor = predictor
        self.topic_predictor = topic_predictor
        self.engine = open_engine(settings.db)
        self.log = log
        labels = list(predictor.labels)
        self.neg_index = labels.index(settings.negative_label)
        self.pos_index = labels.index(settings.positive_label) if settings.positive_label in labels else None
        self.alerts_path = self.app_dir / "alerts.jsonl"
        self.scoring_seconds = 0.0
        self.storing_seconds = 0.0
        self.scoring_backend = "given"  # what scores the stream: "int8" or "torch" once load() chose (monitor_scoring)
        self._offsets: dict[str, int] = {}  # per stream: the offset this worker last read or stored
        # `serve --follow` ingests from a file thread and from HTTP requests: one writer at a time, so window
        # evaluation and HTTP offset allocation never race.
        self.lock = threading.RLock()

    @classmethod
    def load(cls, app_dir: Path | str, log: Any = sys.stderr) -> Monitor:
        app_dir = Path(app_dir)
        path = app_dir / "monitor.json"
        if not path.is_file():
            raise FmkitError(f"{app_dir}: no monitor.json; create it with `fmkit app monitor init {app_dir} --model DIR`.")
        settings = MonitorSettings(**json.loads(path.read_text(encoding="utf-8")))
        from fmkit.apps.monitor_scoring import load_scorer
        from fmkit.inference import load_predictor

        predictor, backend = load_scorer(settings.model, settings.backend, settings.batch_size)
        topic = load_predictor(settings.topic_model, batch_size=settings.batch_size) if settings.topic_model else None
        monitor = cls(app_dir, settings, predictor, topic, log)
        monitor.scoring_backend = backend
        return monitor

    # offsets -----------------------------------------------------------------------------------------
    def resume_offset(self, stream: str) -> int:
        def read() -> int:
            with self.engine.connect() as conn:
                return int(conn.execute(sa.select(progress_table.c.offset)
                                        .where(progress_table.c.stream == stream)).scalar() or 0)

        self._offsets[stream] = self._retrying("reading the stored offset", read)
        return self._offsets[stream]

    def _retrying(self, what: str, action: Any) -> Any:
        from fmkit.apps.monitor_store import retrying

        return retrying(self.engine, what, action, self.settings.db_retry_seconds, self.log)

    # scoring + storing ------------------------------------------------------------------------------
    def process(self, stream: str, items: list[Item], end_offset: int | None = None) -> list[dict[str, Any]]:
        """Score `items` and store them with the stream's new offset in one transaction; returns the rows."""
        with self.lock:
            return self._process(stream, items, end_offset)

    def _process(self, stream: str, items: list[Item], end_offset: int | None) -> list[dict[str, Any]]:
        start = time.perf_counter()
        rows: list[dict[str, Any]] = []
        if items:
            texts = [it.text for it in items]
            probs = self.predictor.predict_proba(texts)
            topics = self.topic_predictor.predict_proba(texts) if self.topic_predictor is not None else None
            topic_labels = list(self.topic_predictor.labels) if self.topic_predictor is not None else []
            labels = self.predictor.labels
            now = time.time()
            for i, it in enumerate(items):
                p = probs[i]
                sentiment = float(p[self.pos_index] if self.pos_index is not None else 0.0) - float(p[self.neg_index])
                rows.append({"stream": stream, "offset": it.offset, "ts": it.ts, "ticker": it.ticker, "source": it.source,
                             "text": it.text, "label": labels[int(p.argmax())], "sentiment": round(sentiment, 6),
                             "negative": int(p.argmax()) == self.neg_index, "scored_at": now,
                             "topic": topic_labels[int(topics[i].argmax())] if topics is not None else None})
        scored = time.perf_counter()
        self._retrying(f"storing {len(rows)} items of {stream}", lambda: self._store(stream, rows, end_offset))
        self.scoring_seconds += scored - start
        self.storing_seconds += time.perf_counter() - scored
        return rows

    def _store(self, stream: str, rows: list[dict[str, Any]], end_offset: int | None) -> None:
        """One transaction: the stream's offset moves first (from the value this worker saw), then the rows."""
        from fmkit.apps.monitor_store import upsert_value

        with self.engine.begin() as conn:
            if end_offset is not None and not self._advance_offset(conn, stream, end_offset):
                return  # an earlier try of this very batch committed before its connection dropped
            if rows:
                conn.execute(items_table.insert(), rows)
                upsert_value(conn, state_table, {"key": "watermark"}, "value", max(r["ts"] for r in rows), keep_max=True)
        if end_offset is not None:
            self._offsets[stream] = end_offset

    def _advance_offset(self, conn: sa.Connection, stream: str, end: int) -> bool:
        """Move the stream's offset to `end`; False when it is already there (this batch is stored).

        The UPDATE matches only the offset this worker last saw, and it locks the row until commit: a second
        worker on the same stream waits, then finds the offset moved and stops instead of storing items twice.
        """
        from fmkit.apps.monitor_store import StreamTaken, upsert_value

        seen = self._offsets.get(stream)
        if seen is None:  # a caller that never read the offset (library use): plain upsert
            upsert_value(conn, progress_table, {"stream": stream}, "offset", end)
            return True
        moved = conn.execute(progress_table.update().where(progress_table.c.stream == stream,
                                                           progress_table.c.offset == seen).values(offset=end))
        if moved.rowcount == 1:
            return True
        current = conn.execute(sa.select(progress_table.c.offset).where(progress_table.c.stream == stream)).scalar()
        if current is None and seen == 0:
            conn.execute(progress_table.insert().values(stream=stream, offset=end))  # a second worker's insert fails
            return True
        if current == end:
            return False
        raise StreamTaken(f"{stream}: its stored offset is {current}, not {seen} as this worker read it: another "
                          "worker follows the same stream. Give each worker its own files (--partition K/N).")

    def _set_state(self, conn: sa.Connection, key: str, value: float) -> None:
        from fmkit.apps.monitor_store import upsert_value

        upsert_value(conn, state_table, {"key": key}, "value", value)

    def post_items(self, objects: list[dict[str, Any]], stream: str = "http") -> list[dict[str, Any]]:
        """HTTP ingestion: items get the next offsets of the `http` stream; stored before the reply."""
        with self.lock:
            return self._post_items(objects, stream)

    def _post_items(self, objects: list[dict[str, Any]], stream: str) -> list[dict[str, Any]]:
        items = []
        base = self.resume_offset(stream)
        for k, obj in enumerate(objects):
            try:
                items.append(parse_item(json.dumps(obj), base + k))
            except DataError as exc:
                raise DataError(f"item {k}: {exc.message}") from None
        rows = self.process(stream, items, base + len(items))
        self.evaluate_windows()
        return rows

    # windows and alerts -----------------------------------------------------------------------------
    def frame(self, since: float | None = None, until: float | None = None) -> Any:
        import pandas as pd

        query = sa.select(items_table.c.ts, items_table.c.ticker, items_table.c.sentiment, items_table.c.negative)
        if since is not None:
            query = query.where(items_table.c.ts >= since)
        if until is not None:
            query = query.where(items_table.c.ts < until)
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).fetchall(), columns=["ts", "ticker", "sentiment", "negative"])

    def window_series(self, scope: str = OVERALL, since: float | None = None, until: float | None = None) -> list[dict[str, Any]]:
        """count, mean sentiment and negative share per window for one scope, oldest first (empty windows included)."""
        w = self.settings.window_seconds
        df = self.frame(since, until)
        if scope != OVERALL:
            df = df[df["ticker"] == scope]
        if df.empty:
            return []
        start = int(since // w) if since is not None else int(df["ts"].min() // w)
        stop = int((until - 1e-9) // w) if until is not None else int(df["ts"].max() // w)
        df = df.assign(win=(df["ts"] // w).astype(int), negative=df["negative"].astype(float))
        grouped = df.groupby("win").agg(count=("ts", "size"), mean=("sentiment", "mean"), neg=("negative", "mean"))
        series: list[dict[str, Any]] = []
        for k in range(start, stop + 1):
            if k in grouped.index:
                g = grouped.loc[k]
                series.append({"start": k * w, "count": int(g["count"]), "mean_sentiment": round(float(g["mean"]), 4),
                               "negative_share": round(float(g["neg"]), 4)})
            else:
                series.append({"start": k * w, "count": 0, "mean_sentiment": None, "negative_share": None})
        return series

    def evaluate_windows(self) -> list[dict[str, Any]]:
        """Check every window that closed since the last call; returns the new alerts."""
        with self.lock:
            alerts: list[dict[str, Any]] = self._retrying("evaluating windows", self._evaluate_windows)
        for alert in alerts:
            self._emit(alert)
        return alerts

    def _evaluate_windows(self) -> list[dict[str, Any]]:
        with self.engine.begin() as conn:
            # Workers sharing the database take turns: this write locks the row (PostgreSQL) or the database
            # (SQLite) until commit, so a closed window is evaluated, and alerted, once.
            self._set_state(conn, "evaluation_turn", time.time())
            return self._evaluate_closed(conn)

    def _evaluate_closed(self, conn: sa.Connection) -> list[dict[str, Any]]:
        w = self.settings.window_seconds
        watermark = conn.execute(sa.select(state_table.c.value).where(state_table.c.key == "watermark")).scalar()
        done = conn.execute(sa.select(state_table.c.value).where(state_table.c.key == "evaluated_until")).scalar()
        first = conn.execute(sa.select(sa.func.min(items_table.c.ts))).scalar()
        if watermark is None or first is None:
            return []
        closed_until = math.floor(watermark / w) * w  # the window holding the watermark is still open
        begin = done if done is not None else math.floor(first / w) * w
        if closed_until <= begin:
            return []
        n_base = self.settings.baseline_windows
        df = self.frame(begin - n_base * w, closed_until)
        alerts: list[dict[str, Any]] = []
        scopes = [OVERALL, *sorted({t for t in df["ticker"].dropna().unique() if t})]
        for scope in scopes:
            part = df if scope == OVERALL else df[df["ticker"] == scope]
            alerts.extend(self._scope_alerts(scope, part, begin, closed_until, int(first // w)))
        if alerts:
            conn.execute(alerts_table.insert(), alerts)
        self._set_state(conn, "evaluated_until", float(closed_until))
        return alerts

    def _scope_alerts(self, scope: str, df: Any, begin: float, end: float, first_k: int) -> list[dict[str, Any]]:
        s, w = self.settings, self.settings.window_seconds
        counts: dict[int, int] = {}
        negs: dict[int, float] = {}
        if not df.empty:
            win = (df["ts"] // w).astype(int)
            for k, group in df.groupby(win):
                counts[int(k)] = len(group)
                negs[int(k)] = float(group["negative"].astype(float).mean())
        out = []
        for k in range(int(begin // w), int(end // w)):
            count = counts.get(k, 0)
            if count < s.min_count:
                continue
            # Only windows since the stream began: empty windows before it would fake a volume jump.
            base = list(range(max(k - s.baseline_windows, first_k), k))
            base_counts = np.array([counts.get(j, 0) for j in base], dtype=float)
            base_negs = np.array([negs[j] for j in base if counts.get(j, 0) >= max(1, s.min_count // 2)])
            if len(base_negs) >= s.min_baseline_windows:
                mean, std = float(base_negs.mean()), float(base_negs.std())
                z = (negs[k] - mean) / max(std, 0.05)  # a floor: a calm baseline must not make tiny moves "5 sigma"
                if negs[k] - mean >= s.neg_share_jump or z >= s.neg_share_z:
                    out.append(self._alert(k, scope, "negative_share", negs[k], mean, z, count,
                                           f"{scope}: negative share {negs[k]:.0%} vs {mean:.0%} baseline "
                                           f"(z={z:.1f}, n={count})"))
            if len(base) >= s.min_baseline_windows:
                mean_c = float(base_counts.mean())
                z_c = (count - mean_c) / max(float(base_counts.std()), math.sqrt(max(mean_c, 1.0)))
                if z_c >= s.volume_z or count >= s.volume_ratio * max(mean_c, 1.0):
                    out.append(self._alert(k, scope, "volume", float(count), mean_c, z_c, count,
                                           f"{scope}: {count} items vs {mean_c:.1f} baseline (z={z_c:.1f})"))
        return out

    def _alert(self, k: int, scope: str, kind: str, value: float, baseline: float, z: float, count: int,
               message: str) -> dict[str, Any]:
        w = self.settings.window_seconds
        return {"window_start": float(k * w), "window_end": float((k + 1) * w), "scope": scope, "kind": kind,
                "value": round(value, 4), "baseline": round(baseline, 4), "z": round(z, 2), "count": count,
                "message": message}

    def _emit(self, alert: dict[str, Any]) -> None:
        record = {**alert, "window_start_iso": datetime.fromtimestamp(alert["window_start"]).isoformat()}
        with open(self.alerts_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
        print(f"ALERT {record['window_start_iso']} {alert['message']}", file=self.log)
        if self.settings.webhook:
            try:
                req = urllib.request.Request(self.settings.webhook, data=json.dumps(record).encode(),
                                             headers={"Content-Type": "application/json"}, method="POST")
                urllib.request.urlopen(req, timeout=5).close()
            except Exception as exc:  # a dead webhook must not stop the monitor; the alert is stored anyway
                print(f"warning: webhook {self.settings.webhook} failed: {exc}", file=self.log)

    def alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(alerts_table).order_by(alerts_table.c.window_start.desc(), alerts_table.c.id.desc())
                                .limit(limit)).mappings().all()
        return [dict(r) for r in rows]

    def stats(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            n = conn.execute(sa.select(sa.func.count()).select_from(items_table)).scalar()
            n_alerts = conn.execute(sa.select(sa.func.count()).select_from(alerts_table)).scalar()
        return {"items": int(n or 0), "alerts": int(n_alerts or 0)}


# --- stream readers -------------------------------------------------------------------------------------

def read_batches(fh: BinaryIO, offset: int, batch_size: int, follow: bool, poll: float = 0.2,
                 max_wait: float = 0.5, log: Any = sys.stderr) -> Iterator[tuple[list[Item], int]]:
    """(items, offset after them) from a byte stream, starting at `offset`; complete lines only.

    With `follow`, waits for more data like `tail -f` (a batch is flushed once it is full or no new line
    came for `max_wait` seconds); without it, stops at the end. Bad lines are reported and skipped.
    """
    pos = offset
    items: list[Item] = []
    last_new = time.monotonic()
    pending = b""
    is_pipe = not follow and _is_pipe(fh)
    while True:
        if is_pipe and items and not _readable(fh, max_wait):
            yield items, pos  # a live pipe went quiet: score what came so far instead of waiting for a full batch
            items = []
        chunk = fh.readline()
        if chunk:
            pending += chunk
            if not pending.endswith(b"\n"):
                continue  # a writer is mid-line: wait for the rest
            line, start = pending, pos
            pos += len(pending)
            pending = b""
            last_new = time.monotonic()
            if line.strip():
                try:
                    items.append(parse_item(line, start))
                except DataError as exc:
                    print(f"warning: skipped the line at byte {start}: {exc.message}", file=log)
            if len(items) >= batch_size:
                yield items, pos
                items = []
            continue
        if items and (not follow or time.monotonic() - last_new >= max_wait):
            yield items, pos
            items = []
        elif not items and not follow:
            if pos != offset:
                yield [], pos  # only skipped lines: still move the offset past them
            return
        if follow:
            time.sleep(poll)


def _is_pipe(fh: Any) -> bool:
    import os
    import stat

    try:
        return not stat.S_ISREG(os.fstat(fh.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):
        return False


def _readable(fh: Any, timeout: float) -> bool:
    import select

    try:
        return bool(select.select([fh], [], [], timeout)[0])
    except (OSError, ValueError):
        return True


def run_stream(monitor: Monitor, source: str, follow: bool = True, log: Any = sys.stderr,
               max_items: int | None = None) -> dict[str, Any]:
    """Consume a file (or '-' for stdin) from its stored offset; returns counts and time split."""
    stream = "stdin" if source == "-" else f"file:{Path(source).resolve()}"
    offset = monitor.resume_offset(stream)
    done = 0
    started = time.perf_counter()
    if source == "-":
        fh = sys.stdin.buffer
        skipped = 0
        while skipped < offset:  # a replayed stdin: skip what is already stored
            line = fh.readline()
            if not line:
                break
            skipped += len(line)
    else:
        path = Path(source)
        if not path.is_file():
            raise DataError(f"{path}: file not found.")
        if path.stat().st_size < offset:
            raise DataError(f"{path} is shorter than the stored offset {offset}: it was truncated or replaced. "
                            "Point the monitor at the new file under another name.")
        fh = open(path, "rb")  # noqa: SIM115 - closed in the finally below
        fh.seek(offset)
    try:
        read_batch = max(monitor.settings.read_batch or 0, monitor.settings.batch_size)
        for items, end in read_batches(fh, offset, read_batch, follow and source != "-", log=log):
            monitor.process(stream, items, end)
            monitor.evaluate_windows()
            done += len(items)
            if max_items is not None and done >= max_items:
                break
    finally:
        if source != "-":
            fh.close()
    seconds = time.perf_counter() - started
    return {"items": done, "seconds": round(seconds, 2), "items_per_second": round(done / seconds, 1) if seconds else None,
            "scoring_seconds": round(monitor.scoring_seconds, 2), "storing_seconds": round(monitor.storing_seconds, 2)}
