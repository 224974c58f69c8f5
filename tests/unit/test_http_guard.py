"""Access rules of every fmkit server (fmkit/inference/http_guard.py) and how each CLI server applies them.

The CLI tests run `fmkit ... serve` in-process with uvicorn.run replaced, then drive the app it would have
served with httpx (Starlette's TestClient), so they see exactly the key and Host rules a user gets.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fmkit.errors import ConfigError
from fmkit.inference.http_guard import (
    AllowedHosts,
    host_of,
    install_error_handlers,
    install_host_guard,
    install_key_guard,
    keys_match,
    parse_host_list,
    resolve_key,
    server_url,
)

KEY = "k3y-for-tests"


def test_host_of_strips_ports_brackets_case_and_the_root_dot() -> None:
    assert host_of("Example.COM.:8000") == "example.com"
    assert host_of("[::1]:8765") == "::1" and host_of("[::1]") == "::1" and host_of("::1") == "::1"
    assert host_of("127.0.0.1:80") == "127.0.0.1" and host_of("localhost") == "localhost"
    assert parse_host_list(" a.example, B.example ,,") == ["a.example", "b.example"]


def test_allowed_hosts_for_a_specific_bind() -> None:
    allowed = AllowedHosts.for_bind("10.1.2.3", ["ui.example"])
    for header in ("10.1.2.3:8765", "localhost:8765", "127.0.0.1", "[::1]:1", "UI.example:443", None):
        assert allowed.allows(header), header
    for header in ("evil.example", "evil.example:8765", "10.1.2.4", "localhost.evil.example", ""):
        assert not allowed.allows(header), header
    assert AllowedHosts.for_bind("127.0.0.1", ["*"]).allows("anything.example")


def test_a_wildcard_bind_accepts_ip_literals_and_the_machine_names_only() -> None:
    import socket

    allowed = AllowedHosts.for_bind("0.0.0.0")
    assert allowed.allows("192.168.1.20:8765") and allowed.allows("[fe80::1]:8765")
    assert allowed.allows(socket.gethostname())
    assert not allowed.allows("rebind.evil.example")


def test_resolve_key_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FMKIT_API_KEY", raising=False)
    assert resolve_key("127.0.0.1", None, "api") is None and resolve_key("localhost", None, "browser") is None
    with pytest.raises(ConfigError, match=r"--api-key KEY or FMKIT_API_KEY=KEY"):
        resolve_key("0.0.0.0", None, "api")
    generated = resolve_key("0.0.0.0", None, "browser")
    assert generated and len(generated) >= 16 and generated != resolve_key("0.0.0.0", None, "browser")
    assert resolve_key("0.0.0.0", "given", "api") == "given"
    monkeypatch.setenv("FMKIT_API_KEY", "from-env")
    assert resolve_key("0.0.0.0", None, "api") == "from-env" and resolve_key("0.0.0.0", "flag", "api") == "flag"
    assert resolve_key("127.0.0.1", None, "browser", env=None) is None  # the dashboard does not read the API key
    assert keys_match("a", "a") and not keys_match("a", "b") and not keys_match("\ud800", "b")
    assert server_url("::1", 80, "t") == "http://[::1]:80/?token=t" and server_url("h", 1) == "http://h:1/"


def guarded_app(key: str | None = KEY, hosts: AllowedHosts | None = None) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/data")
    def data() -> dict[str, str]:
        return {"secret": "runs"}

    install_error_handlers(app, example="{}")
    install_key_guard(app, key, public_paths={"/health"})
    if hosts is not None:
        install_host_guard(app, hosts)
    return app


def test_key_guard_takes_headers_or_a_token_that_becomes_a_strict_httponly_cookie() -> None:
    client = TestClient(guarded_app(), base_url="http://127.0.0.1:8765")
    assert client.get("/health").status_code == 200
    refused = client.get("/data")
    assert refused.status_code == 401 and "token" in refused.json()["detail"]
    assert client.get("/data", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/data", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert client.get("/data", headers={"X-API-Key": KEY}).status_code == 200
    assert client.get("/data", params={"token": "wrong"}).status_code == 401
    opened = client.get("/data", params={"token": KEY})
    assert opened.status_code == 200
    cookie = opened.headers["set-cookie"]
    assert cookie.startswith(f"fmkit_token_8765={KEY};") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/data").status_code == 200  # the cookie carries the key from now on
    assert client.get("/data", headers={"Cookie": "fmkit_token_8765=\"bad"}).status_code == 401  # junk cookie: no 500


def test_host_guard_answers_421_to_other_names() -> None:
    client = TestClient(guarded_app(key=None, hosts=AllowedHosts.for_bind("127.0.0.1")), base_url="http://127.0.0.1:8765")
    assert client.get("/data").status_code == 200
    assert client.get("/data", headers={"Host": "localhost:8765"}).status_code == 200
    rebound = client.get("/data", headers={"Host": "rebind.evil.example:8765"})
    assert rebound.status_code == 421 and "--allowed-hosts" in rebound.json()["detail"]


# --- the CLI servers -----------------------------------------------------------------------------------

@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What the command handed to uvicorn.run (the app and where it would listen)."""
    monkeypatch.delenv("FMKIT_API_KEY", raising=False)
    seen: dict[str, Any] = {}

    def fake_run(app: Any, **kwargs: Any) -> None:
        seen.update(kwargs, app=app)

    monkeypatch.setattr("uvicorn.run", fake_run)
    return seen


def printed_token(stderr: str) -> str:
    match = re.search(r"\?token=([\w-]+)", stderr)
    assert match, stderr
    return match.group(1)


def test_dashboard_answers_only_its_host_names(tmp_path: Path, served: dict[str, Any],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from fmkit.cli import main

    (tmp_path / "runs").mkdir()
    assert main(["ui", "--runs", str(tmp_path / "runs")]) == 0
    client = TestClient(served["app"], base_url="http://127.0.0.1:8765")
    assert client.get("/api/runs").status_code == 200
    assert client.get("/api/runs", headers={"Host": "rebind.evil.example:8765"}).status_code == 421
    assert main(["ui", "--runs", str(tmp_path / "runs"), "--allowed-hosts", "dash.example"]) == 0
    client = TestClient(served["app"], base_url="http://dash.example:8765")
    assert client.get("/api/runs").status_code == 200


def test_dashboard_off_localhost_generates_and_prints_a_token(tmp_path: Path, served: dict[str, Any],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from fmkit.cli import main

    (tmp_path / "runs").mkdir()
    assert main(["ui", "--runs", str(tmp_path / "runs"), "--host", "0.0.0.0"]) == 0
    token = printed_token(capsys.readouterr().err)
    client = TestClient(served["app"], base_url="http://192.168.1.20:8765")
    assert client.get("/api/runs").status_code == 401
    assert client.get("/", params={"token": token}).status_code == 200
    assert client.get("/api/runs").status_code == 200  # by the cookie


def test_model_server_off_localhost_without_a_key_refuses_to_start(tmp_path: Path, served: dict[str, Any],
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from fmkit.cli import main

    # Refused before the model is read: the folder need not even exist.
    assert main(["serve", str(tmp_path / "model"), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "--api-key" in err and "FMKIT_API_KEY" in err
    assert "app" not in served


def test_support_server_needs_a_key_off_localhost_and_checks_the_host(tmp_path: Path, served: dict[str, Any],
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from fmkit.cli import main

    assert main(["app", "support", "serve", str(tmp_path / "app"), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "--api-key" in err and "FMKIT_API_KEY" in err and "app" not in served

    def fake_support_app(app_dir: Any, settings: Any, api_key: str | None = None) -> FastAPI:
        seen_key.append(api_key)
        return guarded_app(key=None)

    seen_key: list[str | None] = []
    monkeypatch.setattr("fmkit.apps.support_http.create_support_app", fake_support_app)
    assert main(["app", "support", "serve", str(tmp_path / "app"), "--host", "10.1.2.3", "--api-key", KEY]) == 0
    assert seen_key == [KEY]
    client = TestClient(served["app"], base_url="http://10.1.2.3:8000")
    assert client.get("/data").status_code == 200
    assert client.get("/data", headers={"Host": "rebind.evil.example"}).status_code == 421


def test_monitor_server_off_localhost_requires_the_key_for_items_and_alerts(tmp_path: Path, served: dict[str, Any],
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from fmkit.apps.monitor import Monitor
    from fmkit.cli import main
    from tests.unit.test_apps_monitor import make_monitor

    monitor = make_monitor(tmp_path)
    monkeypatch.setattr(Monitor, "load", classmethod(lambda cls, app_dir, log=None: monitor))
    assert main(["app", "monitor", "serve", str(tmp_path), "--host", "0.0.0.0"]) == 0
    token = printed_token(capsys.readouterr().err)
    client = TestClient(served["app"], base_url="http://192.168.1.20:8050")
    item = {"text": "shares fall after loss", "time": 1_700_000_000, "ticker": "AAA"}
    assert client.post("/v1/items", json=item).status_code == 401
    assert client.get("/api/alerts").status_code == 401 and client.get("/").status_code == 401
    assert monitor.stats()["items"] == 0
    assert client.get("/health").status_code == 200
    stored = client.post("/v1/items", json=item, headers={"Authorization": f"Bearer {token}"})
    assert stored.status_code == 200 and monitor.stats()["items"] == 1
    assert client.get("/", params={"token": token}).status_code == 200 and client.get("/api/alerts").status_code == 200
    assert client.get("/api/alerts", headers={"Host": "rebind.evil.example"}).status_code == 421
