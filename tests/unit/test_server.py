"""The HTTP server: routes, API key, every limit and error status, batching, disconnects, shutdown."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from fmkit.config.schema import ServeConfig
from fmkit.errors import ModelError
from fmkit.inference.predictor import Predictor
from fmkit.inference.server import create_app, route_provider

KEY = "s3cret"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def predictor(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    import torch

    from fmkit.models.backbone import load_tokenizer
    from fmkit.models.classifier import TextClassifier

    torch.manual_seed(2)
    model = TextClassifier.from_backbone(tiny_model, ["neg", "pos"], max_length=32)
    out = tmp_path_factory.mktemp("srv") / "model"
    model.save_pretrained(out, load_tokenizer(tiny_model))
    return Predictor.load(out, backend="torch")


def client(predictor: Predictor, api_key: str | None = KEY, **settings: Any) -> TestClient:
    return TestClient(create_app(predictor, ServeConfig(**settings), api_key=api_key))


class Gate:
    """Replaces a batched operation: records each call and blocks until released."""

    def __init__(self, inner: Callable[[list[str]], list[Any]]) -> None:
        self.inner = inner
        self.calls: list[int] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, texts: list[str]) -> list[Any]:
        self.calls.append(len(texts))
        self.entered.set()
        assert self.release.wait(10)
        return self.inner(texts)


def gate(c: TestClient, op: str = "predict") -> Gate:
    ctx = c.app.state.ctx  # type: ignore[attr-defined]
    g = Gate(ctx.batcher.ops[op])
    ctx.batcher.ops[op] = g
    return g


def wait_for(cond: Callable[[], bool], timeout: float = 10) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.005)


def test_predict_and_embed_match_the_predictor(predictor: Predictor) -> None:
    texts = ["good movie", "bad plot", "the story was not great"]
    with client(predictor) as c:
        r = c.post("/v1/predict", json={"texts": texts}, headers=AUTH)
        assert r.status_code == 200
        assert r.json()["predictions"] == predictor.predict(texts)
        r = c.post("/v1/embed", json={"texts": texts}, headers={"X-API-Key": KEY})
        body = r.json()
        assert r.status_code == 200 and body["dim"] == 32
        vectors = np.asarray(body["embeddings"])
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
        assert np.abs(vectors - predictor.embed(texts)).max() < 1e-5


def test_api_key_guards_every_route_but_health(predictor: Predictor) -> None:
    with client(predictor) as c:
        assert c.get("/health").status_code == 200
        for method, path in [("get", "/ready"), ("get", "/metrics"), ("get", "/openapi.json"), ("get", "/docs"),
                             ("post", "/v1/predict"), ("post", "/v1/embed")]:
            assert getattr(c, method)(path).status_code == 401, path
            assert getattr(c, method)(path, headers={"Authorization": "Bearer wrong"}).status_code == 401, path
        r = c.post("/v1/predict", json={"texts": ["x"]}, headers={"X-API-Key": "nope"})
        assert r.status_code == 401 and "API key" in r.json()["error"]
        assert c.get("/ready", headers=AUTH).json()["ready"] is True
        assert c.get("/openapi.json", headers=AUTH).json()["paths"].keys() >= {"/v1/predict", "/v1/embed", "/health"}
    with client(predictor, api_key=None) as c:  # no key configured: open
        assert c.post("/v1/predict", json={"texts": ["x"]}).status_code == 200


@pytest.mark.parametrize(("body", "needle"), [
    (b"{not json", "not valid JSON"),
    (b"", "body is empty"),
    (b'{"texts": "just one string"}', "texts"),
    (b'{"texts": [1, 2]}', "texts.0"),
    (b'{"texts": []}', "at least 1"),
    (b'{"text": ["a"]}', "texts"),
    (b'["a", "b"]', "valid dictionary"),
    (b'{"texts": ["a"], "extra": 1}', "extra"),
])
def test_malformed_input_is_422_with_a_message(predictor: Predictor, body: bytes, needle: str) -> None:
    with client(predictor, api_key=None) as c:
        r = c.post("/v1/predict", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 422
        assert needle in r.json()["error"]
        assert c.post("/v1/predict", json={"texts": ["still alive"]}).status_code == 200


def test_size_limits(predictor: Predictor) -> None:
    with client(predictor, api_key=None, max_texts_per_request=3, max_chars_per_text=20, overlong_text="reject",
                max_request_bytes=2048) as c:
        r = c.post("/v1/predict", json={"texts": ["a"] * 4})
        assert r.status_code == 413 and "limit is 3" in r.json()["error"]
        r = c.post("/v1/predict", json={"texts": ["ok", "x" * 21]})
        assert r.status_code == 413 and "texts[1]" in r.json()["error"]
        r = c.post("/v1/predict", json={"texts": ["y" * 3000]})  # over max_request_bytes
        assert r.status_code == 413 and "bytes" in r.json()["error"]
        assert c.post("/v1/predict", json={"texts": ["x" * 20]}).status_code == 200
    with client(predictor, api_key=None, max_chars_per_text=5) as c:  # truncate (the default mode)
        ctx = c.app.state.ctx  # type: ignore[attr-defined]
        assert ctx.clean_texts(["abcdefgh", "ab"]) == ["abcde", "ab"]
        r = c.post("/v1/predict", json={"texts": ["good movie really"]})
        assert r.status_code == 200 and r.json()["predictions"] == predictor.predict(["good "])


def test_chunked_body_over_the_limit_is_413(predictor: Predictor) -> None:
    with client(predictor, api_key=None, max_request_bytes=1024) as c:
        def chunks() -> Iterator[bytes]:
            yield b'{"texts": ["'
            for _ in range(10):
                yield b"z" * 200
            yield b'"]}'

        r = c.post("/v1/predict", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413


def test_queue_full_is_503_with_retry_after(predictor: Predictor) -> None:
    with client(predictor, api_key=None, max_queue=1) as c, ThreadPoolExecutor(2) as pool:
        g = gate(c)
        first = pool.submit(c.post, "/v1/predict", json={"texts": ["a"]})
        assert g.entered.wait(10)  # in the forward pass: the queue is empty again
        second = pool.submit(c.post, "/v1/predict", json={"texts": ["b"]})
        ctx = c.app.state.ctx  # type: ignore[attr-defined]
        wait_for(lambda: ctx.batcher.depth == 1)
        r = c.post("/v1/predict", json={"texts": ["c"]})
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "busy" in r.json()["error"]
        g.release.set()
        assert first.result().status_code == 200 and second.result().status_code == 200


def test_request_timeout_is_504_and_the_server_recovers(predictor: Predictor) -> None:
    with client(predictor, api_key=None, request_timeout_s=0.2) as c:
        g = gate(c)
        r = c.post("/v1/predict", json={"texts": ["slow"]})
        assert r.status_code == 504 and "request_timeout_s" in r.json()["error"]
        g.release.set()
        assert c.post("/v1/predict", json={"texts": ["fast"]}).status_code == 200


def test_a_failing_forward_pass_is_500_and_the_server_keeps_serving(predictor: Predictor) -> None:
    with client(predictor, api_key=None) as c:
        ctx = c.app.state.ctx  # type: ignore[attr-defined]
        good = ctx.batcher.ops["predict"]
        ctx.batcher.ops["predict"] = lambda texts: 1 / 0
        r = c.post("/v1/predict", json={"texts": ["boom"]})
        assert r.status_code == 500 and "ZeroDivisionError" in r.json()["error"]
        ctx.batcher.ops["predict"] = good
        assert c.post("/v1/predict", json={"texts": ["fine"]}).status_code == 200


@pytest.mark.parametrize(("batching", "passes"), [(True, 2), (False, 6)])
def test_requests_that_arrive_together_share_a_forward_pass(predictor: Predictor, batching: bool, passes: int) -> None:
    with client(predictor, api_key=None, batching=batching, max_batch_size=64) as c, ThreadPoolExecutor(6) as pool:
        g = gate(c)
        ctx = c.app.state.ctx  # type: ignore[attr-defined]
        first = pool.submit(c.post, "/v1/predict", json={"texts": ["first"]})
        assert g.entered.wait(10)
        texts = [["good"], ["bad movie"], ["the plot", "was great"], ["awful"], ["fine"]]
        rest = [pool.submit(c.post, "/v1/predict", json={"texts": t}) for t in texts]
        wait_for(lambda: ctx.batcher.depth == 5)  # all five wait while the first pass runs
        g.release.set()
        assert first.result().status_code == 200
        for t, fut in zip(texts, rest, strict=True):
            r = fut.result()
            assert r.status_code == 200 and r.json()["predictions"] == predictor.predict(t)  # each gets its own part
        assert len(g.calls) == passes
        if batching:
            assert g.calls == [1, 6]  # the five waiting requests (6 texts) went through in one pass
        metrics = c.get("/metrics").text
        assert "fmkit_batch_size_bucket" in metrics and "fmkit_queue_depth 0" in metrics


def test_metrics_count_requests_by_status(predictor: Predictor) -> None:
    with client(predictor, api_key=None) as c:
        c.post("/v1/predict", json={"texts": ["a"]})
        c.post("/v1/predict", content=b"{", headers={"content-type": "application/json"})
        c.get("/no/such/path")
        text = c.get("/metrics").text
        assert 'fmkit_requests_total{route="/v1/predict",status="200"} 1' in text
        assert 'fmkit_requests_total{route="/v1/predict",status="422"} 1' in text
        assert 'fmkit_requests_total{route="other",status="404"} 1' in text
        assert 'fmkit_request_seconds_bucket{route="/v1/predict",le="+Inf"} 2' in text
        assert "# TYPE fmkit_queue_depth gauge" in text


def test_unknown_task_has_no_routes() -> None:
    with pytest.raises(ModelError, match="no server routes for task 'telepathy'"):
        route_provider("telepathy")


# --- a real server on loopback: disconnects and graceful shutdown ---------------------------------

class LiveServer:
    def __init__(self, app: Any) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical",
                                                    timeout_graceful_shutdown=10))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_for(lambda: self.server.started)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(20)

    def post(self, texts: list[str]) -> Any:
        import httpx

        return httpx.post(f"http://127.0.0.1:{self.port}/v1/predict", json={"texts": texts}, timeout=20)


def test_clients_that_disconnect_mid_request_do_not_hurt_the_server(predictor: Predictor) -> None:
    app = create_app(predictor, ServeConfig(), api_key=None)
    ctx = app.state.ctx
    with LiveServer(app) as live:
        wait_for(lambda: ctx.ready)
        g = Gate(ctx.batcher.ops["predict"])
        ctx.batcher.ops["predict"] = g
        body = json.dumps({"texts": ["good movie"] * 3}).encode()
        # 1) half a body, then gone
        with socket.create_connection(("127.0.0.1", live.port)) as s:
            s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 500\r\n\r\n" + body[:10])
        # 2) whole requests, gone while their forward pass is still running
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", live.port)) as s:
                s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                assert g.entered.wait(10)
        g.release.set()
        # 3) garbage that is not HTTP
        with socket.create_connection(("127.0.0.1", live.port)) as s:
            s.sendall(b"\x00\x01 not http at all\r\n\r\n")
        r = live.post(["still serving"])
        assert r.status_code == 200 and r.json()["predictions"] == predictor.predict(["still serving"])


def test_graceful_shutdown_finishes_in_flight_requests(predictor: Predictor) -> None:
    app = create_app(predictor, ServeConfig(), api_key=None)
    ctx = app.state.ctx
    with LiveServer(app) as live, ThreadPoolExecutor(1) as pool:
        wait_for(lambda: ctx.ready)
        g = Gate(ctx.batcher.ops["predict"])
        ctx.batcher.ops["predict"] = g
        pending = pool.submit(live.post, ["in flight"])
        assert g.entered.wait(10)
        live.server.should_exit = True  # what SIGTERM does
        time.sleep(0.2)
        g.release.set()
        r = pending.result()
        assert r.status_code == 200 and r.json()["predictions"] == predictor.predict(["in flight"])
        live.thread.join(20)
        assert not live.thread.is_alive() and ctx.ready is False
