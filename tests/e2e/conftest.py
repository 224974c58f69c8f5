"""Browser tests: Debian's /usr/bin/chromium driven by Playwright (never `playwright install`).

Tests start and stop `fmkit ui` themselves. Every test leaves a full-page screenshot of its `page`
(passed or failed) in $FMKIT_E2E_ARTIFACTS (default: /tmp/fmkit-e2e-artifacts), and tests take named
screenshots of the states worth looking at (`shot`): a person can check what a user sees.
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

from tests.run_helpers import fake_run

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("FMKIT_E2E_ARTIFACTS", "/tmp/fmkit-e2e-artifacts"))
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FmkitServer:
    """`python -m fmkit ARGS --port P` in a subprocess, on a free port; up once `ready` (a path) answers."""

    def __init__(self, *args: str, ready: str = "health") -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = ARTIFACTS / f"{args[0]}-{self.port}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, "-m", "fmkit", *args, "--port", str(self.port)], stdout=self.log,
                                     stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(self.url + ready, timeout=2).read()
                return
            except urllib.error.HTTPError:
                return  # it answers (401 when a token is required): it is up
            except OSError as exc:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.stop()
                    raise RuntimeError(f"fmkit {' '.join(args)} did not start: {self.log_path.read_text()}") from exc
                time.sleep(0.3)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


class UiServer(FmkitServer):
    """`python -m fmkit ui` on the runs in `runs`."""

    def __init__(self, runs: Path, *extra: str) -> None:
        super().__init__("ui", "--runs", str(runs), *extra, ready="static/style.css")


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


def shot(page: Any, name: str) -> Path:
    """A named full-page screenshot kept in ARTIFACTS (what the page looked like at this point of the test)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":  # passed or failed: the last state of every test's page is kept
        page = getattr(item, "funcargs", {}).get("page")
        if page is not None:
            suffix = "-FAILED" if report.failed else ""
            try:
                report.sections.append(("screenshot", str(shot(page, f"{item.name}{suffix}"))))
            except Exception as exc:  # a crashed page cannot be photographed; the failure still stands
                report.sections.append(("screenshot", f"failed: {exc}"))


# --- run folders for the dashboard ----------------------------------------------------------------

@pytest.fixture(scope="session")
def dashboard_runs(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """alpha (2 epochs) and beta (1 epoch: one loss point, one eval) trained for real, gamma faked (auto -> full)."""
    from fmkit.cli import main
    from tests.conftest import write_sentiment_csv

    root = tmp_path_factory.mktemp("dash") / "runs"
    data = write_sentiment_csv(root.parent / "train.csv", n=80)
    common = ["train", "--data", str(data), "--model", str(tiny_model), "--quiet", "--batch-size", "16",
              "--set", "strategy.name=full", "--set", "strategy.probe.init=false"]
    assert main([*common, "--output", str(root / "alpha"), "--epochs", "2"]) == 0
    assert main([*common, "--output", str(root / "beta"), "--epochs", "1", "--learning-rate", "0.001"]) == 0
    fake_run(root, "gamma")
    return root


@pytest.fixture(scope="session")
def dashboard(dashboard_runs: Path) -> Iterator[UiServer]:
    """`fmkit ui` on dashboard_runs, shared by the browser tests that only read."""
    server = UiServer(dashboard_runs)
    yield server
    server.stop()
