"""The HTTP server: a FastAPI app factory around one loaded predictor.

    app = create_app(predictor, ServeConfig(), api_key="secret")   # then: uvicorn.run(app)

Routes every model gets: GET /health (liveness, never needs the key), GET /ready (503 until warmed up
and again while shutting down), GET /metrics (Prometheus text), /docs and /openapi.json.
Task routes come from the task registry (fmkit/config/tasks.py, `TaskSpec.routes`), keyed by the model's
task (fmkit.json "task"); an app that is not a task adds its own to ROUTE_PROVIDERS:

    ROUTE_PROVIDERS["support"] = "fmkit.apps.support_http:routes"

A provider is a function `routes(ctx: ServeContext) -> fastapi.APIRouter`. It registers its batched
operations with `ctx.batcher.register(op, fn)` (fn: list[str] -> list[result], run in the single
inference thread, so it may use the model freely) and in its handlers calls `await ctx.run(op, texts)`,
which applies the limits, batching, timeout and backpressure; `ctx.clean_texts(texts)` applies the
per-text limits alone. Classification provides POST /v1/predict and POST /v1/embed (below).

Limits (ServeConfig): max texts per request and request body size (413), characters per text
(truncate, or 413 when overlong_text=reject), request timeout (504), queue full (503 + Retry-After).
Bad JSON or wrong types get 422 with a readable message; an exception inside a forward pass answers
500 for that batch only. The API key (header `Authorization: Bearer KEY` or `X-API-Key: KEY`) guards
every route but /health. Shutdown stops accepting, answers what is queued, then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from fmkit.config.schema import ServeConfig
from fmkit.data.text_checks import InvalidText, check_texts, field_location
from fmkit.errors import ModelError
from fmkit.inference.batching import DynamicBatcher, QueueFull
from fmkit.inference.server_metrics import ServerMetrics

# Routes of what is not a task in the task registry (fmkit/config/tasks.py), such as an app: name -> "module:fn".
ROUTE_PROVIDERS: dict[str, str] = {}
PUBLIC_PATHS = {"/health"}
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]]


@dataclass
class ServeContext:
    """What a route provider needs: the predictor, the limits, the batcher, the metrics."""

    predictor: Any
    settings: ServeConfig
    batcher: DynamicBatcher
    metrics: ServerMetrics
    task: str
    model_name: str
    backend: str
    ready: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def clean_texts(self, texts: list[str], field: str = "texts", indexed: bool = True) -> list[str]:
        """The per-request checks, before any text joins a shared batch: count (413), texts a tokenizer
        cannot take (422, naming `field[index]`), length (truncate, or 413). `indexed=False`: `field` is
        one text (a prompt), named without an index."""
        s = self.settings
        if len(texts) > s.max_texts_per_request:
            raise HTTPException(413, f"{len(texts)} texts in one request; the limit is {s.max_texts_per_request} "
                                     "(serve.max_texts_per_request). Split the request.")
        try:
            check_texts(texts, field, indexed)
        except InvalidText as exc:
            raise HTTPException(422, str(exc)) from None
        limit = s.max_chars_per_text
        if s.overlong_text == "reject":
            for i, text in enumerate(texts):
                if len(text) > limit:
                    raise HTTPException(413, f"{field_location(field, i if indexed else None)} has {len(text)} "
                                             f"characters; the limit is {limit} (serve.max_chars_per_text). Shorten it.")
            return texts
        return [t[:limit] for t in texts]

    async def run(self, op: str, texts: list[str], field: str = "texts", indexed: bool = True) -> list[Any]:
        """Per-request checks -> batcher -> results, mapping overload to 503 and slowness to 504.

        Every batched route goes through here, so no route can let a text that would fail the shared
        forward pass into a batch; `field` names the request field in the 422/413 messages."""
        return await self.submit_checked(op, self.clean_texts(texts, field, indexed))

    async def submit_checked(self, op: str, items: list[Any]) -> list[Any]:
        """Items that already passed `clean_texts` (text pairs: each side) -> batcher -> results."""
        try:
            return await asyncio.wait_for(self.batcher.submit(op, items), self.settings.request_timeout_s)
        except QueueFull:
            raise HTTPException(503, f"server busy: {self.batcher.depth} requests queued (serve.max_queue). Retry shortly.",
                                headers={"Retry-After": "1"}) from None
        except TimeoutError:
            raise HTTPException(504, f"not answered within {self.settings.request_timeout_s:g}s "
                                     "(serve.request_timeout_s).") from None
        except Exception as exc:  # the forward pass failed on this request's own texts (the batcher isolates it)
            raise HTTPException(500, f"inference failed: {type(exc).__name__}: {exc}") from None


class TextsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"texts": ["Shares jump after earnings beat"]}]})

    texts: list[StrictStr] = Field(min_length=1, description="Texts to process, in order.")


def classification_routes(ctx: ServeContext) -> APIRouter:
    predictor = ctx.predictor
    ctx.batcher.register("embed", lambda texts: list(predictor.embed(texts)))
    router = prediction_routes(ctx, "Label and class probabilities for each text (or text pair)")

    @router.post("/embed", summary="L2-normalised text vectors from the fine-tuned encoder")
    async def embed(body: TextsIn) -> dict[str, Any]:
        vectors = await ctx.run("embed", body.texts)
        return {"model": ctx.model_name, "dim": len(vectors[0]) if vectors else 0,
                "embeddings": [[round(float(x), 6) for x in v] for v in vectors]}

    return router


class PairsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"pairs": [["A man plays a flute.", "A man plays music."]]}]})

    pairs: list[tuple[StrictStr, StrictStr]] = Field(
        min_length=1, description="Text pairs [first, second], in order (the model was trained on two text columns).")


def prediction_routes(ctx: ServeContext,
                      summary: str = "The model's prediction for each text (or text pair)") -> APIRouter:
    """POST /v1/predict for any task whose predictor has `predict(texts) -> list[dict]` (NER, regression...).
    A model trained on text pairs takes {"pairs": [[a, b], ...]} instead of {"texts": [...]}: the body schema
    (and /docs) is the one the loaded model reads, so a wrong shape is a 422 that says which field it wants."""
    predictor = ctx.predictor
    router = APIRouter(prefix="/v1", tags=[ctx.task])
    if not getattr(predictor, "pair_input", False):
        ctx.batcher.register("predict", predictor.predict)

        @router.post("/predict", summary=summary)
        async def predict(body: TextsIn) -> dict[str, Any]:
            return {"model": ctx.model_name, "predictions": await ctx.run("predict", body.texts)}

        return router
    ctx.batcher.register("predict_pairs", predictor.predict_pairs)

    @router.post("/predict", summary=summary)
    async def predict_pairs(body: PairsIn) -> dict[str, Any]:
        limit = ctx.settings.max_texts_per_request
        if len(body.pairs) > limit:
            raise HTTPException(413, f"{len(body.pairs)} pairs in one request; the limit is {limit} "
                                     "(serve.max_texts_per_request). Split the request.")
        # Each pair checked on its own, so a message names the text: `pairs[3][1]` is pair 3's second text.
        pairs = [tuple(ctx.clean_texts(list(pair), f"pairs[{i}]")) for i, pair in enumerate(body.pairs)]
        return {"model": ctx.model_name, "predictions": await ctx.submit_checked("predict_pairs", pairs)}

    return router


def route_provider(task: str) -> Callable[[ServeContext], APIRouter]:
    """A task's routes come from the task registry; ROUTE_PROVIDERS adds what is not a task (the support app)."""
    from fmkit.config.tasks import TASKS, resolve

    spec = TASKS.get(task)
    target = ROUTE_PROVIDERS.get(task) or (spec.routes if spec is not None else None)
    if target is None:
        served = sorted({*ROUTE_PROVIDERS, *(name for name, s in TASKS.items() if s.routes)})
        raise ModelError(f"no server routes for task '{task}' in this version of fmkit (served tasks: "
                         f"{', '.join(served)}).")
    provider: Callable[[ServeContext], APIRouter] = resolve(target)
    return provider


def create_app(predictor: Any, settings: ServeConfig | None = None, api_key: str | None = None,
               task: str | None = None) -> FastAPI:
    settings = settings or ServeConfig()
    path = Path(getattr(predictor, "path", None) or ".")
    task = task or _task_of(path)
    batcher = DynamicBatcher({}, settings.max_batch_size, settings.max_wait_ms, settings.max_queue, settings.batching)
    metrics = ServerMetrics(lambda: batcher.depth)
    batcher.observer = metrics
    backend = getattr(getattr(predictor, "backend", None), "name", "torch")
    ctx = ServeContext(predictor, settings, batcher, metrics, task, path.parent.name if path.name == "model" else path.name,
                       backend)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await batcher.start()
        await _warm_up(ctx)
        ctx.ready = True
        yield
        ctx.ready = False  # load balancers stop sending; uvicorn has already let in-flight requests finish
        await batcher.stop()

    app = FastAPI(title="fmkit model server", version="1", lifespan=lifespan,
                  description=f"Serving a '{task}' model. Send the API key as `Authorization: Bearer KEY` or `X-API-Key`.")
    app.state.ctx = ctx
    router = route_provider(task)(ctx)
    app.include_router(router)

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"])
    async def ready() -> JSONResponse:
        body = {"ready": ctx.ready, "task": task, "model": ctx.model_name, "backend": ctx.backend}
        return JSONResponse(body, status_code=200 if ctx.ready else 503)

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error_response(422, {"error": _explain(exc), "detail": exc.errors()})

    # Starlette's class, not FastAPI's subclass: FastAPI raises Starlette's for an unreadable body (and 404/405),
    # and those answers should look like every other error too.
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        unreadable = _unreadable_body(exc)
        if unreadable is not None:
            return _error_response(422, {"error": unreadable})
        return _error_response(exc.status_code, {"error": exc.detail}, exc.headers)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        return _error_response(500, {"error": f"internal error: {type(exc).__name__}: {exc}"})

    # Metrics label requests by route; unknown paths share one label so scanners cannot blow up the series.
    known = {getattr(r, "path", "") for r in (*app.routes, *router.routes)} - {""}
    app.add_middleware(_Guard, api_key=api_key, max_bytes=settings.max_request_bytes, metrics=metrics, known=known)
    return app


async def _warm_up(ctx: ServeContext) -> None:
    # The first forward pass allocates and (for ORT) finalises kernels: pay it before /ready says yes.
    # A broken model shows on the first real request instead, with its message.
    if "predict" in ctx.batcher.ops:
        with contextlib.suppress(Exception):
            await ctx.batcher.submit("predict", ["warm up"])


def _task_of(path: Path) -> str:
    try:
        meta = json.loads((path / "fmkit.json").read_text(encoding="utf-8"))
        return str(meta.get("task", "classification"))
    except (OSError, ValueError):
        return "classification"


def _explain(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        if err.get("type") == "json_invalid":
            parts.append(f"the body is not valid JSON ({err.get('ctx', {}).get('error', 'parse error')}); "
                         'send {"texts": ["..."]}')
        elif err.get("type") == "missing" and where == "body":
            parts.append('the body is empty; send {"texts": ["..."]}')
        else:
            parts.append(f"{where}: {err.get('msg')}")
    return "; ".join(parts)


def _unreadable_body(exc: StarletteHTTPException) -> str | None:
    """FastAPI answers a JSON body it cannot even decode with a bare 400 ('There was an error parsing the
    body'); say what is wrong and how to send it instead, as for any other malformed body."""
    cause = exc.__cause__
    if exc.status_code != 400 or cause is None:
        return None
    if isinstance(cause, UnicodeDecodeError):
        return (f"the body is not valid UTF-8 (byte 0x{cause.object[cause.start]:02X} at byte {cause.start}); "
                'send JSON encoded as UTF-8, e.g. {"texts": ["..."]}, with any character as itself or as a '
                "\\uXXXX escape")
    if isinstance(cause, RecursionError):
        return 'the body nests JSON too deeply to read; send {"texts": ["..."]}'
    return None  # json.loads raises nothing else; a route's own 400 keeps its message


def _error_response(status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(_jsonable(body), status_code=status, headers=headers)


def _jsonable(value: Any) -> Any:
    """What an error answer may echo of the request, made renderable: a lone surrogate (from a JSON
    "\\ud800" escape, in a text or a key) cannot be encoded as UTF-8 and NaN/Infinity are not JSON, and
    either would turn a 422 into a 500. They are written out as escapes/words instead."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {_jsonable(str(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return _jsonable(str(value))


class _Guard:
    """ASGI middleware: API key, body-size limit (also for chunked bodies), request metrics."""

    def __init__(self, app: ASGIApp, api_key: str | None, max_bytes: int, metrics: ServerMetrics, known: set[str]) -> None:
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.max_bytes = max_bytes
        self.metrics = metrics
        self.known = known

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        route = path if path in self.known else "other"
        start = time.perf_counter()
        status = 500
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.inflight += 1
        try:
            if self.api_key is not None and path not in PUBLIC_PATHS and not self._authorised(headers):
                await _send_json(send_wrapper, 401, {"error": "missing or wrong API key: send 'Authorization: Bearer KEY' "
                                                              "or 'X-API-Key: KEY'."}, {"WWW-Authenticate": "Bearer"})
                return
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                await _send_json(send_wrapper, 413, {"error": f"request body of {int(length)} bytes; the limit is "
                                                              f"{self.max_bytes} (serve.max_request_bytes)."})
                return
            await self.app(scope, self._counting(receive), send_wrapper)
        finally:
            self.metrics.inflight -= 1
            self.metrics.request_done(route, status, time.perf_counter() - start)

    def _authorised(self, headers: dict[str, bytes]) -> bool:
        assert self.api_key is not None
        given = headers.get("x-api-key", b"")
        auth = headers.get("authorization", b"")
        if auth[:7].lower() == b"bearer ":
            given = auth[7:].strip()
        return hmac.compare_digest(given, self.api_key)

    def _counting(self, receive: Callable[[], Awaitable[Message]]) -> Callable[[], Awaitable[Message]]:
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, f"request body over {self.max_bytes} bytes (serve.max_request_bytes).")
            return message

        return wrapped


async def _send_json(send: Callable[[Message], Awaitable[None]], status: int, body: dict[str, Any],
                     headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(body).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    head += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": raw})


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --workers N` (each worker process loads its own model copy)."""
    from fmkit.inference import load_predictor

    settings = ServeConfig.model_validate_json(os.environ.get("FMKIT_SERVE_SETTINGS", "{}"))
    predictor = load_predictor(os.environ["FMKIT_SERVE_MODEL"], batch_size=settings.max_batch_size,
                               backend=settings.backend, precision=settings.precision)
    return create_app(predictor, settings, api_key=os.environ.get("FMKIT_API_KEY") or None)
