"""The news monitor against a real PostgreSQL server (tests/pg_helpers.py; skipped when it is not installed):
alerts once per window, workers sharing a database, a backend killed mid-transaction, the server down at start,
down for a moment and down for good, and kill -9 of one of two worker processes."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from fmkit.apps.monitor import Monitor, MonitorSettings, items_table, run_stream
from fmkit.apps.monitor_store import StreamTaken
from fmkit.apps.monitor_workers import partition_of, select_inputs
from fmkit.errors import ConfigError, DataError, FmkitError
from tests.conftest import run_cli
from tests.pg_helpers import PASSWORD, ThrowawayPostgres, free_port
from tests.unit.apps_fakes import KeywordSentiment
from tests.unit.test_apps_monitor import stream_lines

T0 = 1_700_000_000.0


def new_db(postgres: ThrowawayPostgres) -> str:
    return postgres.fresh_database(f"t_{uuid.uuid4().hex[:10]}")


def make_monitor(app_dir: Path, url: str, predictor: Any = None, retry_s: float = 30.0) -> Monitor:
    settings = MonitorSettings(model="fake", db=url, negative_label="Bearish", positive_label="Bullish",
                               window_seconds=60, min_count=5, batch_size=4, db_retry_seconds=retry_s)
    return Monitor(app_dir, settings, predictor or KeywordSentiment(), log=io.StringIO())


def stored(url: str) -> list[tuple[str, int, str]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.select(items_table.c.stream, items_table.c.offset, items_table.c.text)
                                                  .order_by(items_table.c.stream, items_table.c.offset))]
    except sa.exc.ProgrammingError:
        return []  # no worker has created the tables yet
    finally:
        engine.dispose()


def write_lines(path: Path, lines: list[dict[str, Any]], mode: str = "w") -> None:
    with open(path, mode, encoding="utf-8") as fh:
        fh.write("".join(json.dumps(line) + "\n" for line in lines))


class StopsServerAt:
    """KeywordSentiment that runs `action` when batch number `at` (1-based) is scored: an outage mid-stream."""

    def __init__(self, at: int, action: Any) -> None:
        self.inner, self.at, self.action, self.calls = KeywordSentiment(), at, action, 0
        self.labels = self.inner.labels

    def predict_proba(self, texts: Any) -> Any:
        self.calls += 1
        if self.calls == self.at:
            self.action()
        return self.inner.predict_proba(texts)


def test_alerts_and_windows_on_postgres_match_sqlite(postgres: ThrowawayPostgres, tmp_path: Path) -> None:
    lines = stream_lines()
    write_lines(tmp_path / "news.jsonl", lines)
    results = {}
    for name, url in (("pg", new_db(postgres)), ("sqlite", f"sqlite:///{tmp_path / 'm.db'}")):
        monitor = make_monitor(tmp_path / name, url)
        (tmp_path / name).mkdir()
        run_stream(monitor, str(tmp_path / "news.jsonl"), follow=False)
        monitor.evaluate_windows()  # a second evaluation finds nothing new
        results[name] = ([(a["scope"], a["kind"], a["window_start"]) for a in monitor.alerts()], monitor.stats(),
                         monitor.window_series("AAA"))
    assert results["pg"] == results["sqlite"]
    assert results["pg"][1]["items"] == len(lines)
    assert ("AAA", "negative_share", (T0 // 60) * 60 + 8 * 60) in results["pg"][0]


def test_two_workers_on_one_stream_stop_instead_of_storing_twice(postgres: ThrowawayPostgres, tmp_path: Path) -> None:
    url = new_db(postgres)
    write_lines(tmp_path / "a.jsonl", [{"text": f"shares rise {i}", "time": T0 + i} for i in range(8)])
    first, second = make_monitor(tmp_path, url), make_monitor(tmp_path, url)
    stream = f"file:{(tmp_path / 'a.jsonl').resolve()}"
    first.resume_offset(stream)
    second.resume_offset(stream)
    run_stream(first, str(tmp_path / "a.jsonl"), follow=False)
    with pytest.raises(StreamTaken, match="another worker follows the same stream"):
        second.process(stream, [], 10)
    assert len(stored(url)) == 8


def test_a_commit_that_landed_before_the_connection_dropped_is_not_stored_again(postgres: ThrowawayPostgres,
                                                                                 tmp_path: Path) -> None:
    url = new_db(postgres)
    monitor = make_monitor(tmp_path, url)
    monitor.resume_offset("s")
    from fmkit.apps.monitor import Item

    items = [Item(k, f"news {k}", T0 + k, None, None) for k in range(3)]
    monitor.process("s", items, 3)
    monitor._offsets["s"] = 0  # as if the commit's reply was lost: this worker still believes the offset is 0
    monitor.process("s", items, 3)  # the retry: finds its own commit, stores nothing
    assert [r[1] for r in stored(url)] == [0, 1, 2]


def test_backend_terminated_mid_transaction_is_retried_and_nothing_lost(postgres: ThrowawayPostgres,
                                                                       tmp_path: Path) -> None:
    url = new_db(postgres)
    lines = [{"text": f"shares fall {i}", "time": T0 + i} for i in range(20)]
    write_lines(tmp_path / "news.jsonl", lines)
    monitor = make_monitor(tmp_path, url)
    killed: list[int] = []

    @sa.event.listens_for(monitor.engine, "before_cursor_execute")
    def kill_own_backend(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The third batch's INSERT: its transaction has begun (the offset moved), then the server drops it.
        if statement.lstrip().upper().startswith("INSERT INTO ITEMS") and len(killed) == 0 and monitor.stats()["items"] == 8:
            pid = cursor.connection.info.backend_pid
            killed.append(pid)
            postgres.sql(f"SELECT pg_terminate_backend({pid})")

    result = run_stream(monitor, str(tmp_path / "news.jsonl"), follow=False)
    assert killed, "the backend was never terminated: the test did not exercise the retry"
    assert "retrying" in monitor.log.getvalue()  # type: ignore[attr-defined]
    assert result["items"] == 20
    assert [r[2] for r in stored(url)] == [line["text"] for line in lines]


def test_server_down_for_a_moment_is_waited_for(postgres: ThrowawayPostgres, tmp_path: Path) -> None:
    url = new_db(postgres)
    lines = [{"text": f"shares rise {i}", "time": T0 + i} for i in range(24)]
    write_lines(tmp_path / "news.jsonl", lines)

    restart = threading.Timer(1.5, postgres.start)

    def outage() -> None:
        postgres.stop()
        restart.start()

    monitor = make_monitor(tmp_path, url, StopsServerAt(3, outage))
    try:
        result = run_stream(monitor, str(tmp_path / "news.jsonl"), follow=False)
    finally:
        restart.join()  # the server is up again for the next test, whatever happened here
    assert result["items"] == 24
    assert "retrying" in monitor.log.getvalue()  # type: ignore[attr-defined]
    assert [r[2] for r in stored(url)] == [line["text"] for line in lines]


def test_server_down_too_long_stops_with_exit_2_and_a_restart_loses_nothing(postgres: ThrowawayPostgres,
                                                                             tmp_path: Path) -> None:
    url = new_db(postgres)
    lines = [{"text": f"market news {i}", "time": T0 + i} for i in range(24)]
    write_lines(tmp_path / "news.jsonl", lines)
    monitor = make_monitor(tmp_path, url, StopsServerAt(3, postgres.stop), retry_s=1.0)
    try:
        with pytest.raises(FmkitError) as caught:
            run_stream(monitor, str(tmp_path / "news.jsonl"), follow=False)
    finally:
        postgres.start()
    message = caught.value.message
    assert caught.value.exit_code == 2 and "did not come back within 1s" in message and "Nothing is lost" in message
    assert PASSWORD not in message and "fmkit:***@127.0.0.1" in message
    assert [r[2] for r in stored(url)] == [line["text"] for line in lines[:8]]  # two whole batches, not the third
    restarted = make_monitor(tmp_path, url)
    run_stream(restarted, str(tmp_path / "news.jsonl"), follow=False)
    assert [r[2] for r in stored(url)] == [line["text"] for line in lines]


def test_server_down_at_start_names_the_url_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://fmkit:{PASSWORD}@127.0.0.1:{free_port()}/fmkit"
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        make_monitor(tmp_path, url)
    assert time.monotonic() - started < 15
    assert f"postgresql+psycopg://fmkit:***@127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}/fmkit" in caught.value.message
    assert PASSWORD not in caught.value.message


def test_init_with_an_unreachable_database_exits_2_before_writing_anything(tmp_path: Path) -> None:
    port = free_port()
    done = run_cli("app", "monitor", "init", str(tmp_path / "app"), "--model", str(tmp_path / "any"), "--db",
                   f"postgresql+psycopg://fmkit:{PASSWORD}@127.0.0.1:{port}/fmkit")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"postgresql+psycopg://fmkit:***@127.0.0.1:{port}/fmkit" in done.stderr and PASSWORD not in done.stderr
    assert not (tmp_path / "app").exists()


def test_the_same_items_stored_twice_is_a_clear_error(postgres: ThrowawayPostgres, tmp_path: Path) -> None:
    from fmkit.apps.monitor import Item

    url = new_db(postgres)
    items = [Item(k, f"news {k}", T0 + k, None, None) for k in range(3)]
    make_monitor(tmp_path, url).process("s", items, 3)  # library use: no offset read first
    with pytest.raises(StreamTaken, match="another worker stores the same stream"):
        make_monitor(tmp_path, url).process("s", items, 3)
    assert len(stored(url)) == 3


def test_partitions_split_files_by_name_and_cover_each_once(tmp_path: Path) -> None:
    for k in range(12):
        (tmp_path / f"source{k}.jsonl").write_text("")
    pattern = str(tmp_path / "source*.jsonl")
    everything = select_inputs([pattern], None)
    shares = [select_inputs([pattern], (k, 3)) for k in range(3)]
    assert sorted(p for share in shares for p in share) == sorted(everything) and len(everything) == 12
    assert all(partition_of(p, 3) == k for k, share in enumerate(shares) for p in share)


def test_bad_partitions_and_inputs_are_refused(tmp_path: Path) -> None:
    from fmkit.apps.monitor_workers import parse_partition

    assert parse_partition("1/2") == (1, 2) and parse_partition(None) is None
    for bad in ("2/2", "x", "1/0", "-1/2"):
        with pytest.raises(ConfigError, match="--partition"):
            parse_partition(bad)
    with pytest.raises(ConfigError, match="standard input"):
        select_inputs(["-", str(tmp_path / "a.jsonl")], None)
    with pytest.raises(DataError, match="no file matches"):
        select_inputs([str(tmp_path / "*.jsonl")], None)


@pytest.mark.slow
def test_kill_one_of_two_workers_then_restart_stores_every_item_once(postgres: ThrowawayPostgres, tiny_model: Path,
                                                                     tmp_path: Path) -> None:
    from fmkit.apps.monitor import init_monitor
    from fmkit.models.backbone import load_tokenizer
    from fmkit.models.classifier import TextClassifier

    TextClassifier.from_backbone(tiny_model, ["Bearish", "Bullish", "Neutral"], max_length=32).save_pretrained(
        tmp_path / "clf", load_tokenizer(tiny_model))
    url = new_db(postgres)
    init_monitor(tmp_path / "app", str(tmp_path / "clf"), db=url, window_seconds=60, batch_size=4)
    files = {name: [{"text": f"{name} shares {'rise' if i % 2 else 'fall'} report {i}", "time": T0 + i}
                    for i in range(300)] for name in ("a.jsonl", "b.jsonl", "c.jsonl", "d.jsonl")}
    for name, lines in files.items():
        write_lines(tmp_path / name, lines[:150])
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "fmkit", "app", "monitor", "run", str(tmp_path / "app"), str(tmp_path / "*.jsonl")]
    workers = [subprocess.Popen([*cmd, "--partition", f"{k}/2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for k in range(2)]
    victim_files = select_inputs([str(tmp_path / "*.jsonl")], (0, 2))
    assert victim_files and len(victim_files) < 4  # both workers have files: the split is not degenerate

    def victim_stored() -> int:
        return sum(1 for stream, _, _ in stored(url) if stream.removeprefix("file:") in victim_files)

    deadline = time.time() + 120
    while victim_stored() == 0 and time.time() < deadline:
        time.sleep(0.05)
    workers[0].send_signal(signal.SIGKILL)  # mid-stream, no clean shutdown
    workers[0].wait()
    assert 0 < victim_stored() < 150 * len(victim_files)
    for name, lines in files.items():  # the streams keep growing while worker 0 is down
        write_lines(tmp_path / name, lines[150:], mode="a")
    workers[1].send_signal(signal.SIGTERM)
    workers[1].wait()
    for k in range(2):
        done = subprocess.run([*cmd, "--partition", f"{k}/2", "--once"], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
    rows = stored(url)
    for name, lines in files.items():
        stream = f"file:{(tmp_path / name).resolve()}"
        assert [text for s, _, text in rows if s == stream] == [line["text"] for line in lines]
    assert len({(s, offset) for s, offset, _ in rows}) == len(rows) == 1200
