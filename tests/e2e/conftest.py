"""Browser tests: Debian's /usr/bin/chromium driven by Playwright (never `playwright install`).

Tests start and stop `fmkit ui` themselves; a failing test leaves a screenshot in
$FMKIT_E2E_ARTIFACTS (default: /tmp/fmkit-e2e-artifacts).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("FMKIT_E2E_ARTIFACTS", "/tmp/fmkit-e2e-artifacts"))
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class UiServer:
    """`python -m fmkit ui` in a subprocess, on a free port."""

    def __init__(self, runs: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = open(ARTIFACTS / f"ui-{self.port}.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "fmkit", "ui", "--runs", str(runs), "--port", str(self.port),
                                      *extra], stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO,
                                     env={**os.environ, "HF_HUB_OFFLINE": "1"})
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(self.url + "static/style.css", timeout=2).read()
                return
            except urllib.error.HTTPError:
                return  # it answers (401 when a token is required): it is up
            except OSError as exc:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.stop()
                    log = (ARTIFACTS / f"ui-{self.port}.log").read_text()
                    raise RuntimeError(f"fmkit ui did not start: {log}") from exc
                time.sleep(0.3)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed (apt-get install chromium chromium-driver)")
    playwright = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.js_errors = errors
    yield page
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" and report.failed:
        page = getattr(item, "funcargs", {}).get("page")
        if page is not None:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            path = ARTIFACTS / f"{item.name}.png"
            try:
                page.screenshot(path=str(path), full_page=True)
                report.sections.append(("screenshot", str(path)))
            except Exception as exc:  # a crashed page cannot be photographed; the failure still stands
                report.sections.append(("screenshot", f"failed: {exc}"))
