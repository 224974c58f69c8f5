"""Property-based HTTP tests: schemathesis generates requests from each server's own /openapi.json, valid
ones and deliberately invalid ones (wrong types, missing fields, odd strings), and no answer may be a 5xx.

Servers: the classification model server (`fmkit serve`), the generation server, the dashboard
(`fmkit ui`, over a runs folder with one run holding a real tiny model), the support app server and the
news monitor. The fast variant sends ~100 generated requests per server; the slow one at least 1,000,
counted. A failure prints the request as a curl command, so it can be replayed by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode

from tests.run_helpers import fake_run
from tests.serve_apps import classification_app, classification_model, generation_app, support_app

FAST_REQUESTS = 100
SLOW_REQUESTS = 1_000
# The dashboard and the monitor check the Host header; schemathesis's client sends this one.
TEST_HOST = "testserver"


def dashboard_app(directory: Path) -> Any:
    from fmkit.inference.http_guard import AllowedHosts
    from fmkit.ui.app import create_app

    runs = directory / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    classification_model(fake_run(runs, "tiny"))  # a finished run whose model/ really predicts
    return create_app(runs, allowed_hosts=AllowedHosts.for_bind("127.0.0.1", [TEST_HOST]), openapi=True)


def monitor_app(directory: Path) -> Any:
    from fmkit.apps.monitor_web import create_monitor_app
    from fmkit.inference.http_guard import AllowedHosts
    from tests.unit.test_apps_monitor import make_monitor

    directory.mkdir(parents=True, exist_ok=True)
    return create_monitor_app(make_monitor(directory), allowed_hosts=AllowedHosts.for_bind("127.0.0.1", [TEST_HOST]))


SERVERS: dict[str, Callable[[Path], Any]] = {
    "classification": lambda d: classification_app(d)[0],
    "generation": lambda d: generation_app(d)[0],
    "dashboard": dashboard_app,
    "support": support_app,
    "monitor": monitor_app,
}


@pytest.fixture(scope="module", params=sorted(SERVERS))
def server_schema(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    app = SERVERS[request.param](tmp_path_factory.mktemp(request.param))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def assert_no_server_errors(schema: Any, requests: int, derandomize: bool) -> int:
    """Send `requests` generated requests (valid and invalid, over every operation); return how many were sent."""
    strategy = st.one_of(schema.as_strategy(GenerationMode.POSITIVE), schema.as_strategy(GenerationMode.NEGATIVE))
    sent = 0

    @settings(max_examples=requests, deadline=None, database=None, derandomize=derandomize, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case: Any) -> None:
        nonlocal sent
        response = case.call()
        sent += 1
        assert response.status_code < 500, (f"{response.status_code} {response.text[:300]}\n"
                                            f"{case.as_curl_command()}")

    check()
    return sent


def test_generated_requests_never_get_a_5xx(server_schema: Any) -> None:
    sent = assert_no_server_errors(server_schema, FAST_REQUESTS, derandomize=True)
    assert sent >= FAST_REQUESTS // 2  # hypothesis stops early only when it has run out of distinct requests


@pytest.mark.slow
def test_a_thousand_generated_requests_never_get_a_5xx(server_schema: Any) -> None:
    # A little over the target: hypothesis counts a request it rejects as invalid against max_examples.
    sent = assert_no_server_errors(server_schema, SLOW_REQUESTS + SLOW_REQUESTS // 10, derandomize=False)
    assert sent >= SLOW_REQUESTS, sent
