"""A real `observe serve` and a headless Chromium driven by Selenium, for the browser tests and
the UI benchmark.

Chromium and chromedriver are Debian's (`apt-get install chromium chromium-driver`; `make test`
installs them when it runs as root). Selenium is given both paths, so it never tries to download
a browser or driver of its own.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path(os.environ.get("OBSERVE_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("OBSERVE_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
REQUIRE_BROWSER_ENV = "OBSERVE_REQUIRE_BROWSER"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1440,1000",
)
START_TIMEOUT_SECONDS = 60.0
ARTIFACTS = REPO_ROOT / "tests" / "artifacts" / "ui"


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if not missing:
        return None
    return (
        f"{' and '.join(missing)} not found: install Debian's chromium and chromium-driver "
        "(`make test` does so when run as root)"
    )


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def observe_server(database_url: str, data_dir: Path, **settings: str) -> Iterator[Server]:
    """`observe serve` on a free loopback port; stopped (SIGTERM, then SIGKILL) at the end."""
    port = free_loopback_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OBSERVE_")},
        "OBSERVE_DATABASE_URL": database_url,
        "OBSERVE_DATA_DIR": str(data_dir),
        "OBSERVE_HOST": "127.0.0.1",
        "OBSERVE_PORT": str(port),
        "OBSERVE_WORKERS": "1",
        "OBSERVE_LOG_LEVEL": "warning",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        **{f"OBSERVE_{name.upper()}": value for name, value in settings.items()},
    }
    log_path = data_dir / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", "from observe.cli import main; main()", "serve"],
            env=env,
            cwd=data_dir,  # no stray .env file is read
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = Server(f"http://127.0.0.1:{port}", process, log_path)
        try:
            _wait_until_healthy(server, log)
            yield server
        finally:
            _stop(process)


def _wait_until_healthy(server: Server, log: IO[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log.flush()
            raise RuntimeError(f"observe serve exited while starting:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    log.flush()
    raise RuntimeError(f"observe serve was not healthy in time:\n{server.output()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium with a fresh profile, as a Selenium WebDriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    with tempfile.TemporaryDirectory(prefix="observe-chromium-") as profile:
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            driver.set_page_load_timeout(30)
            yield driver
        finally:
            driver.quit()


def wait_for(driver: Any, condition: Any, timeout_seconds: float = 20.0) -> Any:
    """Poll `condition(driver)` until it returns something truthy; fail with the page's text."""
    from selenium.common.exceptions import WebDriverException

    deadline = time.monotonic() + timeout_seconds
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition(driver)
            if result:
                return result
        except WebDriverException as error:  # element not there yet, or replaced meanwhile
            last_error = error
        time.sleep(0.05)
    body = driver.find_element("tag name", "body").text[:2000]
    raise AssertionError(
        f"timed out on {driver.current_url} (last error: {last_error})\npage text:\n{body}"
    )


def is_idle(driver: Any) -> bool:
    """No Dash callback is running: nothing is marked loading and the renderer has settled."""
    return bool(
        driver.execute_script(
            "return document.querySelector('[data-dash-is-loading=\"true\"]') === null"
            " && document.querySelector('._dash-loading') === null"
        )
    )


def text_of(driver: Any, css: str) -> str:
    return str(driver.find_element("css selector", css).text)


def screenshot(driver: Any, name: str) -> Path:
    """The whole page, not only the window, as tests/artifacts/ui/<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], max(size["height"], min(int(height) + 120, 6000)))
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(size["width"], size["height"])
    return path
