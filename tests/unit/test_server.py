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
    (b'{"texts": ["caf\xe9"]}', "not valid UTF-8 (byte 0xE9 at byte 15)"),  # Latin-1, not UTF-8: was a bare 400
    (b'{"texts": [NaN]}', "texts.0"),  # echoing NaN back used to crash the 422 into a 500
    (b'{"texts": ["a"], "\\ud800": 1}', "unicode string"),  # ... and so did echoing a lone-surrogate key
    (b'{"texts": "\\udfff"}', "texts"),
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


def post_json(c: TestClient, path: str, body: dict[str, Any]) -> Any:
    """POST `body` as ASCII JSON, so a lone surrogate goes over the wire as the escape "\ud800" (valid JSON)."""
    return c.post(path, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


@pytest.mark.parametrize("route", ["/v1/predict", "/v1/embed"])
def test_an_untokenizable_text_is_422_naming_its_index(predictor: Predictor, route: str) -> None:
    with client(predictor, api_key=None) as c:
        r = post_json(c, route, {"texts": ["good", "bad", "\ud800 lone"]})
        assert r.status_code == 422
        assert r.json()["error"].startswith("texts[2] holds an unpaired surrogate U+D800 at character 0")
        assert post_json(c, route, {"texts": ["an emoji pair is fine \U0001f600"]}).status_code == 200


def test_lone_surrogates_sent_together_with_good_requests_do_not_fail_them(predictor: Predictor) -> None:
    # The reported defect: the bad texts joined the good requests' batch and the tokenizer failed them all (500).
    good = [{"texts": [f"good movie {i}"]} for i in range(30)]
    bad = [{"texts": ["fine", "\ud800"]}] * 3
    bodies = good[:10] + bad[:1] + good[10:20] + bad[1:] + good[20:]
    with client(predictor, api_key=KEY, max_wait_ms=20) as c, ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda b: c.post("/v1/predict", content=json.dumps(b).encode(),
                                                 headers={**AUTH, "content-type": "application/json"}), bodies))
    for body, r in zip(bodies, answers, strict=True):
        if body in bad:
            assert r.status_code == 422 and r.json()["error"].startswith("texts[1] holds an unpaired surrogate")
        else:
            assert r.status_code == 200 and r.json()["predictions"] == predictor.predict(body["texts"])


def test_a_request_failing_a_shared_forward_pass_fails_alone_and_is_counted(predictor: Predictor) -> None:
    with client(predictor, api_key=None) as c, ThreadPoolExecutor(6) as pool:
        ctx = c.app.state.ctx  # type: ignore[attr-defined]
        real = ctx.batcher.ops["predict"]

        def fails_on_marker(texts: list[str]) -> list[Any]:
            if "marker" in texts:
                raise RuntimeError("this text breaks the model")
            return list(real(texts))

        g = Gate(fails_on_marker)
        ctx.batcher.ops["predict"] = g
        first = pool.submit(c.post, "/v1/predict", json={"texts": ["first"]})
        assert g.entered.wait(10)
        texts = [["good"], ["bad movie", "marker"], ["the plot"], ["awful", "film"]]
        rest = [pool.submit(c.post, "/v1/predict", json={"texts": t}) for t in texts]
        wait_for(lambda: ctx.batcher.depth == 4)  # the four coalesce behind the first
        g.release.set()
        assert first.result().status_code == 200
        for t, fut in zip(texts, rest, strict=True):
            r = fut.result()
            if "marker" in t:
                assert r.status_code == 500 and "RuntimeError: this text breaks the model" in r.json()["error"]
            else:
                assert r.status_code == 200 and r.json()["predictions"] == predictor.predict(t)
        assert g.calls[:2] == [1, 6]  # the first, then the four requests' shared pass ...
        assert sorted(g.calls[2:]) == [1, 1, 2, 2]  # ... then each of them alone (in their arrival order)
        metrics = c.get("/metrics").text
        assert 'fmkit_batch_isolations_total{op="predict"} 1' in metrics
        assert 'fmkit_isolated_failures_total{op="predict"} 1' in metrics


@pytest.fixture(scope="module")
def generation_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from tests.serve_apps import generation_app

    app, _ = generation_app(tmp_path_factory.mktemp("gen"))
    with TestClient(app) as c:
        yield c


def test_generate_rejects_an_untokenizable_prompt(generation_client: TestClient) -> None:
    for stream in (False, True):
        r = post_json(generation_client, "/v1/generate", {"prompt": "hi \ud800", "stream": stream})
        assert r.status_code == 422 and "prompt" in r.json()["error"]


@pytest.mark.parametrize("stream", [False, True])
def test_generate_with_a_vanishing_temperature_is_greedy_not_a_500(generation_client: TestClient, stream: bool) -> None:
    body = {"prompt": "what colour is the sky ?", "max_new_tokens": 2, "stream": stream}
    greedy = generation_client.post("/v1/generate", json={**body, "temperature": 0.0})
    tiny = generation_client.post("/v1/generate", json={**body, "temperature": 1e-300})  # logits / 1e-300 = inf
    assert greedy.status_code == tiny.status_code == 200 and tiny.text == greedy.text


def test_support_answer_rejects_an_untokenizable_query_or_session(tmp_path: Path) -> None:
    from tests.serve_apps import support_app

    with TestClient(support_app(tmp_path)) as c:
        r = post_json(c, "/v1/support/answer", {"queries": ["reset password", "\udc00"]})
        assert r.status_code == 422 and r.json()["error"].startswith("queries[1] holds an unpaired surrogate U+DC00")
        r = post_json(c, "/v1/support/answer", {"queries": ["reset password"], "session": "\ud800"})
        assert r.status_code == 422 and r.json()["error"].startswith("session: ")
        assert post_json(c, "/v1/support/answer", {"queries": ["reset password"]}).status_code == 200
    assert len((tmp_path / "transcript.jsonl").read_text(encoding="utf-8").splitlines()) == 1  # only the good one


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
