"""The monitor's web side: a dashboard page (HTML + inline SVG, no JavaScript framework), a JSON API,
and HTTP ingestion (POST /v1/items), in one small FastAPI app.

    GET  /                      time series (count, negative share, mean sentiment) + recent alerts;
                                ?scope=TICKER for one ticker, ?windows=N for how many windows
    GET  /api/windows?scope=    the same series as JSON
    GET  /api/alerts            recent alerts as JSON
    POST /v1/items              one item or a list of items: scored and stored before the reply
    GET  /health
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import Body, FastAPI, HTTPException
from fastapi.responses import HTMLResponse

from fmkit.apps.monitor import OVERALL, Monitor
from fmkit.apps.monitor_page import render_dashboard
from fmkit.errors import FmkitError

ITEMS_BODY = Body(..., examples=[{"text": "$XYZ shares fall after guidance cut", "time": "2024-05-01T14:30:00Z",
                                  "ticker": "XYZ"}])


def create_monitor_app(monitor: Monitor) -> FastAPI:
    app = FastAPI(title="fmkit news sentiment monitor", version="1")
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
