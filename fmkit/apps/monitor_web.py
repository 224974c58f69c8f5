"""The monitor's web side: a dashboard page (HTML + inline SVG, no JavaScript framework), a JSON API,
and HTTP ingestion (POST /v1/items), in one small FastAPI app.

    GET  /                      time series (count, negative share, mean sentiment) + recent alerts;
                                ?scope=TICKER for one ticker, ?windows=N for how many windows
    GET  /api/windows?scope=    the same series as JSON
    GET  /api/alerts            recent alerts as JSON
    POST /v1/items              one item or a list of items: scored and stored before the reply
    GET  /health                (never needs the key)

Bound beyond localhost every other route needs the key (fmkit.inference.http_guard): a browser brings it
once as ?token=KEY, programs send `Authorization: Bearer KEY`.
"""

from __future__ import annotations

import html
import math
import threading
from datetime import UTC, datetime
from typing import Any

from fastapi import Body, FastAPI, HTTPException
from fastapi.responses import HTMLResponse

from fmkit.apps.monitor import OVERALL, Monitor, parse_time
from fmkit.data.text_checks import text_problem
from fmkit.errors import FmkitError
from fmkit.inference.http_guard import (
    AllowedHosts,
    SafeJSONResponse,
    install_error_handlers,
    install_host_guard,
    install_key_guard,
)

ITEMS_BODY = Body(..., examples=[{"text": "$XYZ shares fall after guidance cut", "time": "2024-05-01T14:30:00Z",
                                  "ticker": "XYZ"}])
ITEM_EXAMPLE = '{"text": "...", "time": "2024-05-01T14:30:00Z", "ticker": "XYZ"} or a list of them'
ITEM_STRING_FIELDS = ("text", "time", "ticker", "source")
LATEST_TIME = 4_102_444_800.0  # 2100-01-01: later (or before 1970) is a unit mistake, and would break the windows


def item_problem(obj: dict[str, Any]) -> str | None:
    """Why an HTTP item cannot be stored, checked before scoring so a bad item never reaches the model."""
    for name in ITEM_STRING_FIELDS:
        value = obj.get(name)
        reason = text_problem(value) if isinstance(value, str) else None
        if reason is not None:
            return f'"{name}" {reason}'
    try:
        ts = parse_time(obj.get("time"))
    except FmkitError as exc:
        return exc.message
    except (TypeError, ValueError, OverflowError):
        return f'"time" {obj.get("time")!r} is neither ISO 8601 nor epoch seconds'
    if not (math.isfinite(ts) and 0 <= ts < LATEST_TIME):
        return f'"time" {obj.get("time")!r} is not between 1970 and 2100 (epoch seconds or milliseconds, or ISO 8601)'
    return None


def create_monitor_app(monitor: Monitor, api_key: str | None = None, allowed_hosts: AllowedHosts | None = None) -> FastAPI:
    """`api_key`: required on every route but /health; `allowed_hosts`: the Host names answered (None: any)."""
    app = FastAPI(title="fmkit news sentiment monitor", version="1", default_response_class=SafeJSONResponse)
    install_error_handlers(app, example=ITEM_EXAMPLE)
    install_key_guard(app, api_key, public_paths={"/health"})
    if allowed_hosts is not None:
        install_host_guard(app, allowed_hosts)  # added last: checked first
    lock = threading.Lock()  # HTTP offsets are allocated read-then-write: one ingesting request at a time

    def recent_series(scope: str, windows: int) -> list[dict[str, Any]]:
        series = monitor.window_series(scope)
        return series[-windows:]

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", **monitor.stats()}

    @app.post("/v1/items", summary="Score and store news items (JSON object or list)")
    def post_items(body: Any = ITEMS_BODY) -> dict[str, Any]:
        objects = body if isinstance(body, list) else [body]
        if not all(isinstance(o, dict) for o in objects):
            raise HTTPException(422, 'send an item {"text": ..., "time": ..., "ticker": ...} or a list of them')
        for k, obj in enumerate(objects):  # all items are checked before any is scored: a request is stored whole or not at all
            problem = item_problem(obj)
            if problem is not None:
                raise HTTPException(422, f"item {k}: {problem}")
        try:
            with lock:
                rows = monitor.post_items(objects)
        except FmkitError as exc:
            raise HTTPException(422, exc.message) from None
        return {"stored": len(rows), "items": [{k: r[k] for k in ("offset", "label", "sentiment", "negative", "topic")}
                                               for r in rows]}

    @app.get("/api/windows")
    def api_windows(scope: str = OVERALL, windows: int = 200) -> dict[str, Any]:
        return {"scope": scope, "window_seconds": monitor.settings.window_seconds, "series": recent_series(scope, windows)}

    @app.get("/api/alerts")
    def api_alerts(limit: int = 100) -> dict[str, Any]:
        return {"alerts": monitor.alerts(limit)}

    @app.get("/", response_class=HTMLResponse)
    def dashboard(scope: str = OVERALL, windows: int = 96) -> HTMLResponse:
        return HTMLResponse(render_dashboard(scope, recent_series(scope, windows), monitor.alerts(50), monitor.stats(),
                                             monitor.settings.window_seconds))

    return app


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def svg_chart(values: list[float | None], title: str, lo: float, hi: float, color: str, bars: bool = False,
              marks: set[int] | None = None, width: int = 900, height: int = 140) -> str:
    """One small chart as inline SVG: a polyline (or bars) scaled to [lo, hi]; red ticks mark alert windows."""
    n = max(len(values), 1)
    step = width / n
    span = (hi - lo) or 1.0

    def y(v: float) -> float:
        return height - 4 - (height - 8) * (v - lo) / span

    parts = [f'<svg viewBox="0 0 {width} {height + 18}" width="100%" role="img" aria-label="{html.escape(title)}">',
             f'<text x="4" y="12" font-size="12">{html.escape(title)} (max {hi:.2f})</text>',
             f'<line x1="0" y1="{height}" x2="{width}" y2="{height}" stroke="#bbb"/>']
    for i in sorted(marks or ()):
        parts.append(f'<rect x="{i * step:.1f}" y="14" width="{max(step, 2):.1f}" height="{height - 14}" fill="#fdd"/>')
    if bars:
        for i, v in enumerate(values):
            if v:
                parts.append(f'<rect x="{i * step:.1f}" y="{y(v):.1f}" width="{max(step - 1, 1):.1f}" '
                             f'height="{height - y(v):.1f}" fill="{color}"/>')
    else:
        points = " ".join(f"{(i + 0.5) * step:.1f},{y(v):.1f}" for i, v in enumerate(values) if v is not None)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>')
    parts.append("</svg>")
    return "".join(parts)


def render_dashboard(scope: str, series: list[dict[str, Any]], alerts: list[dict[str, Any]], stats: dict[str, Any],
                     window_seconds: int) -> str:
    starts = {int(s["start"]): i for i, s in enumerate(series)}
    marks = {starts[int(a["window_start"])] for a in alerts
             if int(a["window_start"]) in starts and a["scope"] == scope}
    counts: list[float | None] = [float(s["count"]) for s in series]
    top = max([c for c in counts if c is not None] or [1.0])
    neg = [s["negative_share"] for s in series]
    mean = [s["mean_sentiment"] for s in series]
    span = f"{_when(series[0]['start'])} to {_when(series[-1]['start'] + window_seconds)} UTC" if series else "no data yet"
    rows = "".join(
        f"<tr><td>{_when(a['window_start'])}</td><td>{html.escape(a['scope'])}</td><td>{html.escape(a['kind'])}</td>"
        f"<td>{html.escape(a['message'])}</td></tr>" for a in alerts)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>fmkit monitor: {html.escape(scope)}</title>
<meta http-equiv="refresh" content="30">
<style>body{{font-family:system-ui,sans-serif;margin:1.5em;max-width:960px}}table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;font-size:13px}}</style></head><body>
<h1>News sentiment: {"all tickers" if scope == OVERALL else html.escape(scope)}</h1>
<p>{stats["items"]} items stored, {stats["alerts"]} alerts. Windows of {window_seconds}s, {span}.
<form method="get">Ticker: <input name="scope" value="{html.escape(scope)}" size="8"> <button>show</button></form></p>
{svg_chart(counts, "items per window", 0.0, top, "#4a7bd0", bars=True, marks=marks)}
{svg_chart(neg, "share negative", 0.0, 1.0, "#c0392b", marks=marks)}
{svg_chart(mean, "mean sentiment (P(pos) - P(neg))", -1.0, 1.0, "#27ae60", marks=marks)}
<h2>Recent alerts</h2><table><tr><th>window</th><th>scope</th><th>kind</th><th>message</th></tr>{rows}</table>
</body></html>"""
