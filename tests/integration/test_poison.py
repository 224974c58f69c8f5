"""Concurrent poison: bad requests mixed into a stream of good ones never change a good one's answer.

Every server route that runs a model is sent 320 requests at concurrency 32, one in ten of them bad (a
lone surrogate, invalid UTF-8, truncated JSON, wrong types, an empty list). Each good request must be
answered 200 with the result it gets when sent alone; each bad one 4xx. The servers batch requests that
arrive together into one forward pass, so a bad text that reached the batch would fail its neighbours:
this is the test of "validate before batching, isolate a failing batch" (issue 17, target: 100% of good
requests unchanged).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.test_http_properties import dashboard_app, monitor_app
from tests.serve_apps import classification_app, generation_app, support_app

REQUESTS = 320
CONCURRENCY = 32
BAD_SHARE = 0.10
DISTINCT_GOOD = 40  # good bodies repeat, so each one's answer alone is known before the storm
JSON = {"content-type": "application/json"}

WORDS = ["great", "awful", "plot", "acting", "slow", "password", "account", "open", "shares", "profit", "loss", "music"]


def good_texts(i: int, n: int) -> list[str]:
    rng = random.Random(i)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))) for _ in range(n)]


def bad_list_bodies(field: str, extra: dict[str, Any]) -> list[bytes]:
    """Bodies a route taking `field: list[str]` must refuse with a 4xx (json.dumps writes "\\ud800" as ASCII)."""
    head = json.dumps(extra)[1:-1] + ", " if extra else ""
    return [
        json.dumps({**extra, field: ["fine", "\ud800"]}).encode(),
        json.dumps({**extra, field: ["\udfff at the start", "ok"]}).encode(),
        ("{" + head + f'"{field}": ["caf').encode() + b"\xe9\xff" + b'"]}',  # invalid UTF-8
        ("{" + head + f'"{field}": ["unterminated"').encode(),
        json.dumps({**extra, field: "one string, not a list"}).encode(),
        json.dumps({**extra, field: [1, 2.5, None]}).encode(),
        json.dumps({**extra, field: []}).encode(),
        b"\x00\x01 not json at all",
    ]


@dataclass
class Route:
    client: TestClient
    path: str
    good: Callable[[int], dict[str, Any]]  # the i-th distinct good body
    bad: list[bytes]
    answer: Callable[[dict[str, Any]], Any]  # the part of a 200 answer that must not change


def predictions(r: dict[str, Any]) -> Any:
    return r["predictions"]


def monitor_scores(r: dict[str, Any]) -> Any:
    return [{k: item[k] for k in ("label", "sentiment", "negative", "topic")} for item in r["items"]]


def make_route(name: str, directory: Path) -> tuple[Any, Callable[[TestClient], Route]]:
    if name in ("predict", "embed"):
        app, _ = classification_app(directory, max_wait_ms=5)
        answer = predictions if name == "predict" else (lambda r: r["embeddings"])
        return app, lambda c: Route(c, f"/v1/{name}", lambda i: {"texts": good_texts(i, 1 + i % 3)},
                                    bad_list_bodies("texts", {}), answer)
    if name == "generate":
        app, _ = generation_app(directory, max_wait_ms=5)
        bad = [json.dumps({"prompt": "hi \ud800", "temperature": 0}).encode(),
               b'{"prompt": "caf\xe9\xff", "temperature": 0}', b'{"prompt": "unterminated',
               json.dumps({"prompt": ["a", "list"]}).encode(), json.dumps({"prompt": 7}).encode(),
               json.dumps({"temperature": 0}).encode(), b"\x00\x01 not json at all"]
        return app, lambda c: Route(c, "/v1/generate",
                                    lambda i: {"prompt": good_texts(i, 1)[0], "temperature": 0}, bad,
                                    lambda r: r["generated"])
    if name == "support":
        app = support_app(directory, max_wait_ms=5)
        return app, lambda c: Route(c, "/v1/support/answer", lambda i: {"queries": good_texts(i, 1 + i % 2)},
                                    bad_list_bodies("queries", {}), lambda r: r["replies"])
    if name == "dashboard":
        app = dashboard_app(directory)
        run = {"run": "tiny"}
        return app, lambda c: Route(c, "/api/predict", lambda i: {**run, "texts": good_texts(i, 1 + i % 3)},
                                    bad_list_bodies("texts", run), predictions)
    assert name == "monitor"
    app = monitor_app(directory)
    t0 = 1_767_225_600  # 2026-01-01

    def item(i: int) -> dict[str, Any]:
        return {"text": good_texts(i, 1)[0], "time": t0 + i, "ticker": "ACME"}

    bad = [json.dumps({"text": "fine \ud800", "time": t0}).encode(),
           json.dumps([item(1), {"text": "shares fall", "time": "yesterday-ish"}]).encode(),
           json.dumps({"text": "far future", "time": 10**30}).encode(), b'{"text": "caf\xe9\xff", "time": 1}',
           b'{"text": "unterminated', json.dumps([1, 2]).encode(), b"\x00\x01 not json at all"]
    return app, lambda c: Route(c, "/v1/items", item, bad, monitor_scores)


def close(a: Any, b: Any) -> bool:
    """Equal, floats within 1e-5: a text batched with others may differ from it alone in the last bits."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-5)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


ROUTES = ["predict", "embed", "generate", "support", "dashboard", "monitor"]


@pytest.fixture(params=ROUTES)
def route(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Route]:
    app, build = make_route(request.param, tmp_path)
    with TestClient(app) as c:
        yield build(c)


def test_bad_requests_mixed_into_good_ones_change_no_good_answer(route: Route) -> None:
    def send(body: bytes) -> Any:
        return route.client.post(route.path, content=body, headers=JSON)

    goods = [json.dumps(route.good(i)).encode() for i in range(DISTINCT_GOOD)]
    alone = {}
    for body in goods:
        r = send(body)
        assert r.status_code == 200, r.text
        alone[body] = route.answer(r.json())

    rng = random.Random(17)
    n_bad = int(REQUESTS * BAD_SHARE)
    stream = [rng.choice(goods) for _ in range(REQUESTS - n_bad)] + [route.bad[k % len(route.bad)] for k in range(n_bad)]
    rng.shuffle(stream)
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        answers = list(pool.map(send, stream))

    wrong = []
    for body, r in zip(stream, answers, strict=True):
        if body in alone:
            if r.status_code != 200 or not close(route.answer(r.json()), alone[body]):
                wrong.append(f"good {body[:60]!r}: {r.status_code} {r.text[:200]}")
        elif not 400 <= r.status_code < 500:
            wrong.append(f"bad {body[:60]!r}: {r.status_code} {r.text[:200]}")
    good_count = REQUESTS - n_bad
    assert not wrong, f"{len(wrong)} of {REQUESTS} wrong ({good_count} good, {n_bad} bad):\n" + "\n".join(wrong[:10])
