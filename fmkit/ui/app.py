"""`fmkit ui`: list, compare and watch runs, open reports, try finished models. Works offline.

The back end only reads the run registry and run directories; the playground loads models with
fmkit.inference.load_predictor and keeps the last few in memory. Bound to 127.0.0.1 by default;
on any other address every request needs the access token (query ?token=, then a cookie); whatever the
address, only the host names it is bound to are answered (fmkit.inference.http_guard).
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BaseModel, Field

from fmkit.config.tasks import TASKS
from fmkit.data.text_checks import InvalidText, check_texts
from fmkit.evaluation.display import format_duration, format_metric, strategies, strategy_text
from fmkit.inference.http_guard import (
    AllowedHosts,
    SafeJSONResponse,
    install_error_handlers,
    install_host_guard,
    install_key_guard,
    resolve_key,
    server_url,
)
from fmkit.tracking import Registry, RunRecord

STATIC = Path(__file__).parent / "static"
MAX_TEXTS = 64
MAX_CHARS = 20_000


class PredictRequest(BaseModel):
    run: str = Field(description="id of a finished run with a model/ folder")
    texts: list[str] = Field(min_length=1, max_length=MAX_TEXTS)


class PredictorCache:
    """The last `size` loaded models, so the playground answers at once after the first call."""

    def __init__(self, size: int = 3) -> None:
        self.size = size
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model_dir: Path) -> Any:
        key = str(Path(model_dir).resolve())
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            from fmkit.inference import load_predictor

            predictor = load_predictor(Path(key), batch_size=32)
            self._items[key] = predictor
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return predictor


# Metrics a run is ranked by when its config names none, best first; and the ones where lower is better.
HEADLINE_METRICS = ("macro_f1", "accuracy", "f1", "micro_f1", "spearman", "ndcg@10", "mrr@10", "perplexity")
LOWER_IS_BETTER = frozenset({"perplexity", "loss", "eval_loss"})


def _metrics_text(metrics: dict[str, Any] | None) -> dict[str, str]:
    """Every scalar metric as the page shows it (durations as `3m 22s`): the front end formats nothing itself."""
    return {k: format_metric(k, v) for k, v in (metrics or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _summary(record: RunRecord) -> dict[str, Any]:
    path = Path(record.path) if record.path else None
    cfg = record.config or {}
    requested, ran = strategies(record.strategy, record.final_metrics, path)
    metrics = record.headline()
    return {
        "id": record.id, "command": record.command, "status": record.status, "task": record.task,
        "model": record.model, "strategy": ran, "strategy_requested": requested,
        "strategy_text": strategy_text(requested, ran), "started": record.started, "ended": record.ended,
        "heartbeat": record.heartbeat, "duration": record.duration, "duration_text": format_duration(record.duration),
        "path": record.path, "parent": record.parent, "metrics": metrics,
        "metrics_text": _metrics_text(record.final_metrics),  # from the raw values: counts stay `8`, not `8.0000`
        "error": record.error,
        "epochs": (cfg.get("train") or {}).get("epochs"),
        "primary_metric": (cfg.get("eval") or {}).get("primary_metric"),
        "has_report": bool(path and (path / "report.html").is_file()),
        "has_model": bool(path and (path / "model" / "fmkit.json").is_file()),
    }


def _ranking_score(summary: dict[str, Any]) -> float | None:
    """A run's primary metric (the configured one, else the first headline metric), higher = better."""
    metrics = summary["metrics"]
    key = next((k for k in (summary.get("primary_metric"), *HEADLINE_METRICS) if k and k in metrics), None)
    if key is None:
        return None
    spec = TASKS.get(str(summary.get("task") or "classification"))
    lower = key in LOWER_IS_BETTER or (spec is not None and not spec.higher_is_better(key))  # rmse, hamming_loss
    return -metrics[key] if lower else metrics[key]


def best_model(models: list[dict[str, Any]]) -> str | None:
    """The id of the model with the highest primary metric (the playground's default), None when none has one."""
    scored = [(score, m["id"]) for m in models if (score := _ranking_score(m)) is not None]
    return max(scored, key=lambda pair: pair[0])[1] if scored else (models[0]["id"] if models else None)


def create_app(runs_root: Path, token: str | None = None, allowed_hosts: AllowedHosts | None = None,
               openapi: bool = False) -> FastAPI:
    """The dashboard app. `token`: required on every request; `allowed_hosts`: the Host names answered
    (None: any, for in-process use); `openapi`: serve /openapi.json (the property tests read it)."""
    registry = Registry(Path(runs_root))
    cache = PredictorCache()
    static_files = {p.name: p for p in STATIC.iterdir() if p.is_file()}  # the only names /static/ serves
    app = FastAPI(title="fmkit dashboard", docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json" if openapi else None, default_response_class=SafeJSONResponse)
    install_error_handlers(app, example='{"run": "RUN_ID", "texts": ["..."]}')
    install_key_guard(app, token)
    if allowed_hosts is not None:
        install_host_guard(app, allowed_hosts)  # added last: checked first

    def record_or_404(run_id: str) -> RunRecord:
        record = registry.get(run_id)
        if record is None:
            raise HTTPException(404, f"no run '{run_id}'")
        return record

    @app.get("/", response_class=HTMLResponse)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/static/{name}")
    def static(name: str) -> FileResponse:
        # A lookup, not a path join: no traversal, and no OS call on names holding NUL bytes (a 500 before).
        path = static_files.get(name)
        if path is None:
            raise HTTPException(404, f"no static file '{name}'")
        return FileResponse(path)

    @app.get("/api/runs")
    def runs(status: str | None = None, task: str | None = None, q: str | None = None) -> dict[str, Any]:
        return {"root": str(registry.root), "runs": [_summary(r) for r in registry.runs(status=status, task=task, search=q)]}

    @app.get("/api/run")
    def run(id: str) -> dict[str, Any]:
        record = record_or_404(id)
        return {**_summary(record), "config": record.config, "data": record.data, "env": record.env,
                "final_metrics": record.final_metrics, "final_metrics_text": _metrics_text(record.final_metrics),
                "artifacts": record.artifacts, "host": record.host,
                "pid": record.pid, "curves": registry.curves(record.id)}

    @app.get("/api/compare")
    def compare(ids: str) -> dict[str, Any]:
        records = [record_or_404(i) for i in ids.split(",") if i]
        return {"runs": [{**_summary(r), "curves": registry.curves(r.id)} for r in records]}

    @app.get("/report", response_class=HTMLResponse)
    def report(id: str) -> Response:
        record = record_or_404(id)
        path = Path(record.path or "") / "report.html"
        if not path.is_file() and record.path and record.status == "finished":
            from fmkit.evaluation.report import write_report

            write_report(Path(record.path))
        if not path.is_file():
            raise HTTPException(404, f"run '{id}' has no report.html (it is {record.status})")
        return FileResponse(path, media_type="text/html")

    @app.get("/api/models")
    def models() -> dict[str, Any]:
        # The playground takes typed text: image models are tried with `fmkit predict` instead.
        found = [_summary(r) for r in registry.runs(status="finished")
                 if r.path and r.task != "image" and (Path(r.path) / "model" / "fmkit.json").is_file()]
        return {"models": found, "best": best_model(found)}

    @app.post("/api/predict")
    def predict(body: PredictRequest) -> dict[str, Any]:
        try:
            check_texts(body.texts)  # before any model call: one bad text fails the tokenizer's whole batch
        except InvalidText as exc:
            raise HTTPException(422, str(exc)) from None
        record = record_or_404(body.run)
        model_dir = Path(record.path or "") / "model"
        if not (model_dir / "fmkit.json").is_file():
            raise HTTPException(400, f"run '{body.run}' has no saved model")
        texts = [t[:MAX_CHARS] for t in body.texts if t.strip()]
        if not texts:
            raise HTTPException(400, "type at least one text")
        predictor = cache.get(model_dir)
        return {"run": record.id, "predictions": [{"text": t, **p} for t, p in zip(texts, predictor.predict(texts),
                                                                                       strict=True)]}

    return app


def serve(runs_root: Path, host: str = "127.0.0.1", port: int = 8765, token: str | None = None,
          allowed_hosts: Iterable[str] = ()) -> None:
    import uvicorn

    from fmkit.errors import FmkitError

    if not Path(runs_root).is_dir():
        raise FmkitError(f"{runs_root}: no such folder. Pass --runs DIR, the folder your runs (and registry.db) are in.")
    # Off this machine anyone on the network could load models and read data: a key is generated if none is given.
    token = resolve_key(host, token, kind="browser", flag="--token", env=None)
    print(f"fmkit dashboard for {Path(runs_root).resolve()}: {server_url(host, port, token)}  (Ctrl+C stops it)",
          file=sys.stderr, flush=True)
    app = create_app(Path(runs_root), token, AllowedHosts.for_bind(host, allowed_hosts))
    uvicorn.run(app, host=host, port=port, log_level="warning")
