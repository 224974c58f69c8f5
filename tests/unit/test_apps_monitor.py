"""News monitor: parsing, tail reading, exactly-once storage across a kill, windows, alerts, dashboard."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest

from fmkit.apps.monitor import Monitor, MonitorSettings, parse_item, parse_time, polarity_labels, read_batches
from fmkit.errors import ConfigError, DataError
from tests.unit.apps_fakes import KeywordSentiment

T0 = 1_700_000_000.0


def make_monitor(tmp_path: Path, **options: object) -> Monitor:
    settings = MonitorSettings(model="fake", db=f"sqlite:///{tmp_path / 'm.db'}", negative_label="Bearish",
                               positive_label="Bullish", window_seconds=60, min_count=5, **options)  # type: ignore[arg-type]
    return Monitor(tmp_path, settings, KeywordSentiment(), log=io.StringIO())


def stream_lines(windows: int = 8, burst: bool = True) -> list[dict[str, object]]:
    lines: list[dict[str, object]] = []
    start = (T0 // 60) * 60
    for w in range(windows):
        for j in range(10):
            text = "shares rise on profit" if j % 3 else "market news report"
            lines.append({"text": text, "time": start + w * 60 + j, "ticker": "aaa" if j % 2 else "BBB"})
    if burst:
        for j in range(12):
            lines.append({"text": "shares fall after loss", "time": start + windows * 60 + j, "ticker": "AAA"})
    lines.append({"text": "market news", "time": start + (windows + 2) * 60})  # closes the burst window
    return lines


def test_parse_item_and_time() -> None:
    item = parse_item('{"text": "x", "time": "2024-01-01T00:00:00Z", "ticker": "abc"}', 7)
    assert (item.offset, item.ts, item.ticker) == (7, 1704067200.0, "ABC")
    assert parse_time(1704067200000) == 1704067200.0 and parse_time("1704067200") == 1704067200.0
    with pytest.raises(DataError, match="text"):
        parse_item('{"time": 1}', 0)
    with pytest.raises(DataError, match="not JSON"):
        parse_item("{oops", 0)


def test_polarity_labels_recognised_or_asked_for() -> None:
    assert polarity_labels(["Bearish", "Bullish", "Neutral"], None, None) == ("Bearish", "Bullish")
    with pytest.raises(ConfigError, match="--negative-label"):
        polarity_labels(["0", "1", "2"], None, None)
    assert polarity_labels(["0", "1", "2"], "0", "1") == ("0", "1")


def test_read_batches_waits_for_whole_lines_and_skips_bad_ones() -> None:
    data = b'{"text": "a"}\nnot json\n{"text": "b"}\n{"text": "partial'
    log = io.StringIO()
    batches = list(read_batches(io.BytesIO(data), 0, batch_size=10, follow=False, log=log))
    items = [it for batch, _ in batches for it in batch]
    assert [it.text for it in items] == ["a", "b"] and [it.offset for it in items] == [0, 23]
    assert batches[-1][1] == 37  # the offset stops before the unfinished line
    assert "byte 14" in log.getvalue()


def test_stores_each_item_once_and_raises_a_burst_alert(tmp_path: Path) -> None:
    monitor = make_monitor(tmp_path)
    path = tmp_path / "news.jsonl"
    lines = stream_lines()
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    from fmkit.apps.monitor import run_stream

    first = run_stream(monitor, str(path), follow=False)
    again = run_stream(monitor, str(path), follow=False)
    assert first["items"] == len(lines) and again["items"] == 0
    assert monitor.stats()["items"] == len(lines)
    alerts = monitor.alerts()
    assert {(a["scope"], a["kind"]) for a in alerts} == {("*", "negative_share"), ("AAA", "negative_share")}
    assert all(a["value"] == 1.0 and a["baseline"] == 0.0 for a in alerts)
    written = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    assert len(written) == 2
    series = monitor.window_series("AAA")
    assert series[-1]["count"] == 12 and series[-1]["negative_share"] == 1.0  # AAA's last window is the burst
    assert series[0]["count"] == 5 and series[0]["negative_share"] == 0.0


def test_no_alert_without_a_burst(tmp_path: Path) -> None:
    monitor = make_monitor(tmp_path)
    from fmkit.apps.monitor import run_stream

    path = tmp_path / "calm.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in stream_lines(burst=False)))
    run_stream(monitor, str(path), follow=False)
    assert monitor.alerts() == []


def test_http_ingestion_and_dashboard(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from fmkit.apps.monitor_web import create_monitor_app

    monitor = make_monitor(tmp_path)
    client = TestClient(create_monitor_app(monitor))
    lines = stream_lines()
    response = client.post("/v1/items", json=lines[:40])
    assert response.status_code == 200 and response.json()["stored"] == 40
    for line in lines[40:]:
        assert client.post("/v1/items", json=line).status_code == 200
    assert client.post("/v1/items", json={"time": 1}).status_code == 422
    # A request is stored whole or not at all: a bad item (lone surrogate, far-future time) stores nothing.
    bad_batch = b'[{"text": "fine", "time": 1}, {"text": "x \\ud800", "time": 1}]'
    answer = client.post("/v1/items", content=bad_batch, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and answer.json()["detail"].startswith("item 1:")
    assert client.post("/v1/items", json={"text": "far", "time": 10**30}).status_code == 422
    assert client.post("/v1/items", content=b'{"text": "caf\xe9", "time": 1}',
                       headers={"content-type": "application/json"}).status_code == 422
    assert monitor.stats() == {"items": len(lines), "alerts": 2}
    page = client.get("/").text
    assert "<svg" in page and "negative share 100%" in page
    assert client.get("/api/windows", params={"scope": "AAA"}).json()["series"][-1]["count"] == 12
    assert len(client.get("/api/alerts").json()["alerts"]) == 2


def test_crash_mid_stream_then_restart_stores_everything_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process version of the kill test (tests/integration/test_apps_monitor_restart.py kills a real process)."""
    from fmkit.apps.monitor import run_stream

    path = tmp_path / "news.jsonl"
    lines = stream_lines()
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    monitor = make_monitor(tmp_path, batch_size=7)
    real = Monitor.process
    calls = {"n": 0}

    def crashing(self: Monitor, stream: str, items: list, end_offset: int | None = None) -> list:  # type: ignore[type-arg]
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # dies after scoring, before committing this batch
        return real(self, stream, items, end_offset)

    monkeypatch.setattr(Monitor, "process", crashing)
    with pytest.raises(KeyboardInterrupt):
        run_stream(monitor, str(path), follow=False)
    assert monitor.stats()["items"] == 21
    monkeypatch.setattr(Monitor, "process", real)
    restarted = make_monitor(tmp_path, batch_size=7)
    assert run_stream(restarted, str(path), follow=False)["items"] == len(lines) - 21
    with sqlite3.connect(tmp_path / "m.db") as conn:
        texts = [t for (t,) in conn.execute("SELECT text FROM items ORDER BY offset")]
    assert texts == [line["text"] for line in lines]


@pytest.fixture(scope="module")
def sentiment_run(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/x/model (a tiny 3-class classifier) and runs/x/int8 (its int8 export), as the README lays them out."""
    from fmkit.inference.export import export_onnx
    from fmkit.models.backbone import load_tokenizer
    from fmkit.models.classifier import TextClassifier

    run = tmp_path_factory.mktemp("run")
    TextClassifier.from_backbone(tiny_model, ["Bearish", "Bullish", "Neutral"], max_length=32).save_pretrained(
        run / "model", load_tokenizer(tiny_model))
    export_onnx(run / "model", run / "int8", quantize="int8")
    return run


def test_monitor_scores_with_the_int8_export_when_the_model_has_one(sentiment_run: Path, tmp_path: Path) -> None:
    import shutil

    from fmkit.apps.monitor import init_monitor
    from fmkit.apps.monitor_scoring import scoring_model

    model, int8 = sentiment_run / "model", (sentiment_run / "int8").resolve()
    assert scoring_model(model) == (int8, "int8")
    assert scoring_model(sentiment_run) == (int8, "int8")  # the run directory works too
    assert scoring_model(model, "torch") == (model, "torch")
    assert scoring_model(int8, "torch") == (int8, "int8")  # an export given directly is what it is
    assert init_monitor(tmp_path / "app", str(model), window_seconds=60).read_batch == 8 * 64  # 8 passes a transaction
    monitor = Monitor.load(tmp_path / "app", log=io.StringIO())
    assert monitor.scoring_backend == "int8" and monitor.predictor.backend.name == "onnx"
    rows = monitor.process("s", [parse_item('{"text": "shares fall", "time": 1}', 0)], 20)
    assert len(rows) == 1 and rows[0]["label"] in ("Bearish", "Bullish", "Neutral")

    # A model with no export of its own: torch, even with another model's int8 export beside it.
    other = tmp_path / "other"
    shutil.copytree(model, other / "model")
    shutil.copytree(sentiment_run / "int8", other / "int8-of-someone-else")
    assert scoring_model(other / "model") == (other / "model", "torch")
    with pytest.raises(ConfigError, match="no int8 export"):
        scoring_model(other / "model", "int8")
    with pytest.raises(ConfigError, match="no int8 export"):
        init_monitor(tmp_path / "app2", str(other / "model"), backend="int8")
    assert not (tmp_path / "app2").exists()
    init_monitor(tmp_path / "app3", str(model), backend="torch")
    assert Monitor.load(tmp_path / "app3", log=io.StringIO()).scoring_backend == "torch"
