"""Every page a user sees, photographed (`shot`) and checked in a real Chromium: the runs list, run pages,
compare, the playground, a report and the news monitor. Look at the PNGs in $FMKIT_E2E_ARTIFACTS."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.e2e.conftest import FmkitServer, UiServer, shot

DURATION = re.compile(r"^(\d+ ms|\d+(\.\d)? s|\d+m \d\ds|\d+h \d\dm|-)$")
MONITOR_KEY = "e2e-key"
HOUR = 3600


def test_runs_list_shows_the_strategy_that_ran_and_durations(page: Any, dashboard: UiServer) -> None:
    page.goto(dashboard.url)
    page.wait_for_selector("#runs-table tbody tr[data-id='gamma']")
    shot(page, "runs-list")
    assert page.inner_text("tr[data-id='gamma'] td.strategy") == "auto → full"
    assert page.inner_text("tr[data-id='alpha'] td.strategy") == "full"
    durations = page.eval_on_selector_all("#runs-table td.duration", "tds => tds.map(t => t.textContent)")
    assert len(durations) == 3 and all(DURATION.match(d) for d in durations), durations
    assert page.inner_text("tr[data-id='gamma'] td.duration") == "1h 04m"
    assert page.js_errors == []


def test_run_pages_have_curves_and_survive_a_reload(page: Any, dashboard: UiServer) -> None:
    page.goto(dashboard.url + "#/runs?run=alpha")
    page.wait_for_selector("#run-detail .chart svg")
    assert page.locator("#run-detail .chart svg").count() >= 2
    shot(page, "run-alpha")
    page.reload()
    page.wait_for_selector("#run-detail h2")
    assert "alpha" in page.inner_text("#run-detail h2")  # the URL names the run: reload-safe

    page.goto(dashboard.url + "#/runs?run=beta")  # one epoch: one eval point, drawn as a labelled marker
    page.wait_for_function("document.querySelector('#run-detail h2')?.textContent.includes('beta')")
    page.wait_for_selector("#run-detail .point-label")
    assert page.locator("#run-detail circle[r='4.5']").count() >= 1
    shot(page, "run-beta")

    page.goto(dashboard.url + "#/runs?run=gamma")
    page.wait_for_function("document.querySelector('#run-detail h2')?.textContent.includes('gamma')")
    assert page.inner_text("#detail-strategy") == "auto → full"
    assert page.inner_text("#detail-duration") == "1h 04m"
    metrics = page.inner_text("#run-detail table.metrics")
    assert "3m 23s" in metrics and "850 ms" in metrics and "202.6900" not in metrics
    assert page.locator("#run-detail .chart-subtitle", has_text="head warm-up").count() >= 1
    shot(page, "run-gamma")
    assert page.js_errors == []


def test_compare_url_is_reload_safe(page: Any, dashboard: UiServer) -> None:
    page.goto(dashboard.url + "#/compare?ids=alpha,beta,gamma")
    page.wait_for_selector("#compare-metrics")
    page.reload()
    page.wait_for_selector("#compare-metrics")
    header = page.eval_on_selector_all("#compare-metrics thead th", "ths => ths.map(t => t.textContent)")
    assert header == ["metric", "alpha", "beta", "gamma"]
    strategy = page.locator("#compare-metrics tr", has_text="strategy").first.inner_text().split("\t")
    assert strategy[1:] == ["full", "full", "auto → full"]
    assert page.locator("#compare-charts svg").count() >= 2
    shot(page, "compare")
    assert page.js_errors == []


def test_playground_keeps_model_and_texts_over_a_reload(page: Any, dashboard: UiServer) -> None:
    page.goto(dashboard.url + "#/playground?run=beta")
    page.wait_for_selector("#model-select option[value='beta']", state="attached")
    assert page.input_value("#model-select") == "beta"
    page.fill("#texts", "great superb movie\nawful terrible plot")
    page.click("#predict")
    page.wait_for_selector(".pred")
    shot(page, "playground")
    page.reload()
    page.wait_for_selector("#model-select option[value='beta']", state="attached")
    assert page.input_value("#model-select") == "beta" and "playground?run=beta" in page.url
    assert page.input_value("#texts") == "great superb movie\nawful terrible plot"
    shot(page, "playground-reloaded")
    assert page.js_errors == []


def test_report_page(page: Any, dashboard: UiServer) -> None:
    page.goto(dashboard.url + "report?id=alpha")
    assert page.title() == "fmkit report: alpha"
    assert page.locator("svg").count() >= 2
    text = page.inner_text("body")
    assert re.search(r"train time\s+(\d+ ms|\d+(\.\d)? s|\d+m \d\ds)", text), text[:2000]  # a duration, not 202.6900
    shot(page, "report-alpha")


# --- the news monitor -------------------------------------------------------------------------------

def news_lines(t0: int) -> list[dict[str, Any]]:
    """Eight calm hours over three tickers (one Chinese), then a burst of bad news on AAA, then an item that
    closes the burst's window: volume alerts (overall and AAA) whatever the tiny model predicts."""
    calm = ["great results for the film", "a good and happy story", "the plot was boring", "best movie really"]
    tickers = ["AAA", "BBB", "腾讯"]
    lines: list[dict[str, Any]] = [{"text": f"{calm[j % 4]} 新闻 {j}", "time": t0 + h * HOUR + j * 300,
                                    "ticker": tickers[j % 3]} for h in range(8) for j in range(6)]
    lines += [{"text": "awful terrible worst loss", "time": t0 + 8 * HOUR + j * 60, "ticker": "AAA"} for j in range(40)]
    lines.append({"text": "the day ends", "time": t0 + 10 * HOUR, "ticker": "BBB"})
    return lines


@pytest.fixture(scope="module")
def monitor(dashboard_runs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FmkitServer]:
    app = tmp_path_factory.mktemp("monitor") / "app"
    init = run_cli("app", "monitor", "init", str(app), "--model", str(dashboard_runs / "alpha" / "model"),
                   "--min-count", "5")
    assert init.returncode == 0, init.stderr
    news = app.parent / "news.jsonl"
    news.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in news_lines(1_714_521_600)),
                    encoding="utf-8")  # 2024-05-01 00:00 UTC
    done = run_cli("app", "monitor", "run", str(app), str(news), "--once")
    assert done.returncode == 0, done.stderr
    server = FmkitServer("app", "monitor", "serve", str(app), "--api-key", MONITOR_KEY)
    yield server
    server.stop()


def svg_facts(page: Any) -> list[dict[str, Any]]:
    return page.eval_on_selector_all("svg.chart", """svgs => svgs.map(s => ({
        title: s.getAttribute('aria-label'),
        x: [...s.querySelectorAll('g.x-tick text')].map(t => t.textContent),
        y: [...s.querySelectorAll('g.y-tick text')].map(t => t.textContent),
        zero: s.querySelectorAll('line.zero-line').length,
        alerts: [...s.querySelectorAll('g.alert-marker title')].map(t => t.textContent)}))""")


def test_monitor_page_has_axes_zero_line_and_alert_markers(page: Any, monitor: FmkitServer) -> None:
    assert page.goto(monitor.url).status == 401
    assert page.goto(monitor.url + f"?token={MONITOR_KEY}").status == 200
    alerts = page.request.get(monitor.url + "api/alerts").json()["alerts"]  # the cookie carries the key
    overall = [a for a in alerts if a["scope"] == "*"]
    assert {a["kind"] for a in overall} >= {"volume"}
    charts = svg_facts(page)
    assert len(charts) == 3
    for chart in charts:
        assert chart["x"][0] == "00:002024-05-01" and "06:00" in chart["x"]
        assert len(chart["y"]) >= 3
        assert len(chart["alerts"]) == len(overall) and all("alert, 2024-05-01 08:00" in t for t in chart["alerts"])
    assert [c["zero"] for c in charts] == [0, 0, 1]
    assert page.inner_text(".scopes a.active").startswith("all")
    shot(page, "monitor-all")

    page.click(".scopes a:has-text('AAA')")  # no token in the link: the cookie is enough
    page.wait_for_selector("h2:has-text('News sentiment: AAA')")
    assert page.url.endswith("?scope=AAA") and page.inner_text(".scopes a.active").startswith("AAA")
    aaa = [a for a in alerts if a["scope"] == "AAA"]
    assert aaa and all(len(c["alerts"]) == len(aaa) for c in svg_facts(page))
    shot(page, "monitor-AAA")

    page.click(".scopes a:has-text('腾讯')")
    page.wait_for_selector("h2:has-text('News sentiment: 腾讯')")
    assert page.locator(".scopes a.active", has_text="腾讯").count() == 1
    shot(page, "monitor-cjk")
    assert page.js_errors == []
