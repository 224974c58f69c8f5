"""The monitor's dashboard page: time and value axes, the zero line, alert markers, ticker links, escaping."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fmkit.apps.monitor import OVERALL, Monitor, MonitorSettings
from fmkit.apps.monitor_page import render_dashboard, time_ticks
from tests.unit.apps_fakes import KeywordSentiment

HOUR = 3600
T0 = int(datetime(2024, 5, 1, tzinfo=UTC).timestamp())  # a midnight: ticks fall on whole hours
SVG = "{http://www.w3.org/2000/svg}"


def series(n: int = 6) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for k in range(n):
        empty = k == 2  # an empty window: no sentiment, a gap in the line
        rows.append({"start": T0 + k * HOUR, "count": 0 if empty else 10 + k,
                     "mean_sentiment": None if empty else round(-0.5 + k * 0.2, 4),
                     "negative_share": None if empty else round(0.1 * k, 4)})
    return rows


def alert(scope: str, k: int, kind: str, message: str) -> dict[str, Any]:
    return {"window_start": float(T0 + k * HOUR), "window_end": float(T0 + (k + 1) * HOUR), "scope": scope,
            "kind": kind, "value": 1.0, "baseline": 0.0, "z": 5.0, "count": 12, "message": message}


ALERTS = [alert(OVERALL, 4, "negative_share", "*: negative share 100% vs 0% baseline"),
          alert(OVERALL, 5, "volume", "*: 40 items vs 10.0 baseline (z=6.0)"),
          alert("AAA", 4, "negative_share", "AAA: negative share 90% vs 10% baseline"),
          alert(OVERALL, -30, "volume", "*: long before the windows shown")]
STATS = {"items": 60, "alerts": len(ALERTS)}


def charts(page: str) -> dict[str, ET.Element]:
    """The page's SVG charts by title (each <svg> is well-formed XML on its own)."""
    found = {}
    for text in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        svg = ET.fromstring(text)
        found[svg.get("aria-label", "")] = svg
    return found


def chart(page: str, starting: str) -> ET.Element:
    (svg,) = [svg for title, svg in charts(page).items() if title.startswith(starting)]
    return svg


def texts(svg: ET.Element, group_class: str) -> list[str]:
    return [" ".join(t.strip() for t in g.itertext() if t.strip()) for g in svg.iter(f"{SVG}g")
            if g.get("class") == group_class]


def test_every_chart_has_a_utc_time_axis_and_a_value_axis() -> None:
    page = render_dashboard(OVERALL, series(), ALERTS, STATS, HOUR)
    assert len(charts(page)) == 3
    for svg in charts(page).values():
        x_labels = texts(svg, "x-tick")
        assert x_labels[0] == "00:00 2024-05-01"  # the first tick names the day, later ones only the hour
        assert "03:00" in x_labels and len(x_labels) >= 4
    assert texts(chart(page, "items"), "y-tick") == ["0", "5", "10", "15"]
    assert texts(chart(page, "share"), "y-tick") == ["0%", "25%", "50%", "75%", "100%"]
    assert texts(chart(page, "mean sentiment"), "y-tick") == ["-1.0", "-0.5", "0", "+0.5", "+1.0"]


def test_time_ticks_are_round_instants_and_few() -> None:
    ticks, step = time_ticks(T0 + 10, T0 + 96 * HOUR)  # four days of hourly windows: a tick every 12 hours
    assert step == 12 * HOUR and ticks[0] == T0 + 12 * HOUR and len(ticks) <= 8
    assert all(t % step == 0 for t in ticks)


def test_the_sentiment_chart_has_a_zero_line_and_only_it() -> None:
    page = render_dashboard(OVERALL, series(), [], STATS, HOUR)
    sentiment = chart(page, "mean sentiment")
    (zero,) = [e for e in sentiment.iter(f"{SVG}line") if e.get("class") == "zero-line"]
    ticks = {g.findtext(f"{SVG}text"): float(g.find(f"{SVG}line").get("y1", "nan"))  # type: ignore[union-attr]
             for g in sentiment.iter(f"{SVG}g") if g.get("class") == "y-tick"}
    assert float(zero.get("y1", "nan")) == ticks["0"] == (ticks["-1.0"] + ticks["+1.0"]) / 2
    for title in ("items", "share"):
        assert not [e for e in chart(page, title).iter(f"{SVG}line") if e.get("class") == "zero-line"]


def test_one_marker_per_alert_of_the_scope_with_its_title() -> None:
    overall = render_dashboard(OVERALL, series(), ALERTS, STATS, HOUR)
    for svg in charts(overall).values():
        titles = [g.findtext(f"{SVG}title") for g in svg.iter(f"{SVG}g") if g.get("class") == "alert-marker"]
        assert titles == ["negative_share alert, 2024-05-01 04:00–05:00 UTC: *: negative share 100% vs 0% baseline",
                          "volume alert, 2024-05-01 05:00–06:00 UTC: *: 40 items vs 10.0 baseline (z=6.0)"]
    one_ticker = render_dashboard("AAA", series(), ALERTS, STATS, HOUR)
    for svg in charts(one_ticker).values():
        titles = [g.findtext(f"{SVG}title") for g in svg.iter(f"{SVG}g") if g.get("class") == "alert-marker"]
        assert len(titles) == 1 and "AAA: negative share 90%" in str(titles[0])


def test_a_lone_window_is_drawn_as_a_marker() -> None:
    page = render_dashboard(OVERALL, series(1), [], STATS, HOUR)
    points = [c for c in chart(page, "share").iter(f"{SVG}circle") if c.get("class") == "point"]
    assert len(points) == 1


def test_ticker_links_with_the_current_one_highlighted() -> None:
    page = render_dashboard("AAA", series(), ALERTS, STATS, HOUR, tickers=[("AAA", 40), ("BBB", 20)])
    nav = re.search(r'<nav class="scopes".*?</nav>', page, flags=re.S)
    assert nav is not None
    links = re.findall(r'<a href="([^"]*)"( class="active" aria-current="page")?>([^<]*)<span', nav.group(0))
    assert links == [("?scope=%2A", "", "all"), ("?scope=AAA", ' class="active" aria-current="page"', "AAA"),
                     ("?scope=BBB", "", "BBB")]
    assert "<title>fmkit monitor: AAA</title>" in page


def test_hostile_and_unicode_text_is_escaped_and_kept() -> None:
    hostile = '<script>alert("x")</script>'
    headline = "腾讯股价下跌 <img src=x onerror=alert(1)>"
    alerts = [alert(hostile, 4, "volume", headline)]
    page = render_dashboard(hostile, series(), alerts, STATS, HOUR, tickers=[(hostile, 3), ("腾讯", 2)])
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "腾讯股价下跌 &lt;img src=x onerror=alert(1)&gt;" in page  # in the table and in the markers' titles
    assert 'href="?scope=%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E"' in page
    assert 'href="?scope=%E8%85%BE%E8%AE%AF">腾讯' in page
    assert len(charts(page)) == 3  # the charts still parse: the titles inside them are escaped too


def test_an_empty_monitor_says_no_data_yet_and_draws_no_chart() -> None:
    page = render_dashboard(OVERALL, [], [], {"items": 0, "alerts": 0}, HOUR)
    assert "No data yet" in page and "No alerts yet" in page
    assert "<svg" not in page  # no empty frames pretending to be charts


def test_served_page_lists_the_tickers_seen_and_its_links_work_with_a_token(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from fmkit.apps.monitor_web import create_monitor_app

    settings = MonitorSettings(model="fake", db=f"sqlite:///{tmp_path / 'm.db'}", negative_label="Bearish",
                               positive_label="Bullish", window_seconds=60)
    monitor = Monitor(tmp_path, settings, KeywordSentiment(), log=io.StringIO())
    monitor.post_items([{"text": "shares fall", "time": T0 + i, "ticker": "aaa" if i % 3 else "BBB"} for i in range(9)])
    client = TestClient(create_monitor_app(monitor, api_key="k3y"))
    page = client.get("/", params={"token": "k3y"})
    assert page.status_code == 200
    links = re.findall(r'<a href="(\?scope=[^"]*)"[^>]*>([^<]*)<span class="n">(\d+)', page.text)
    assert links == [("?scope=%2A", "all", "9"), ("?scope=AAA", "AAA", "6"), ("?scope=BBB", "BBB", "3")]
    followed = client.get("/" + links[1][0])  # no ?token= in the link: the cookie set above carries the key
    assert followed.status_code == 200 and "News sentiment: AAA" in followed.text
