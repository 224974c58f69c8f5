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

import math
import threading
from typing import Any

import sqlalchemy as sa
from fastapi import Body, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse

from fmkit.apps.monitor import OVERALL, Monitor, items_table, parse_time
from fmkit.apps.monitor_page import render_dashboard
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
# Bounds on how much one read request may ask for: the store holds more, but one page never needs it
# (and an unbounded integer reaches SQLite as an overflow).
WINDOWS_QUERY = Query(96, ge=1, le=10_000, description="how many of the latest windows to show")
ALERTS_QUERY = Query(100, ge=1, le=10_000, description="how many of the latest alerts to return")
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


def tickers_seen(monitor: Monitor) -> list[tuple[str, int]]:
    """Every ticker stored, with its item count, A to Z: the dashboard's per-ticker links."""
    ticker = items_table.c.ticker
    query = sa.select(ticker, sa.func.count()).where(ticker.is_not(None), ticker != "").group_by(ticker).order_by(ticker)
    with monitor.engine.connect() as conn:
        return [(str(name), int(n)) for name, n in conn.execute(query)]


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
    def api_windows(scope: str = OVERALL, windows: int = WINDOWS_QUERY) -> dict[str, Any]:
        return {"scope": scope, "window_seconds": monitor.settings.window_seconds, "series": recent_series(scope, windows)}

    @app.get("/api/alerts")
    def api_alerts(limit: int = ALERTS_QUERY) -> dict[str, Any]:
        return {"alerts": monitor.alerts(limit)}

    @app.get("/", response_class=HTMLResponse)
    def dashboard(scope: str = OVERALL, windows: int = WINDOWS_QUERY) -> HTMLResponse:
        return HTMLResponse(render_dashboard(scope, recent_series(scope, windows), monitor.alerts(50), monitor.stats(),
                                             monitor.settings.window_seconds, tickers_seen(monitor)))

    return app
