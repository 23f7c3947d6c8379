"""Session fixtures for the UI tests: the demo store (one real tiny TFX run + MLMD records for
failed, killed and live runs, labels, monitoring and a trigger), a `beamline ui` process serving
it on 127.0.0.1, and headless Chromium with every name but 127.0.0.1 unresolvable."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.beamline.lineage.test_report_browser import FLAGS
from tests.beamline.ui import demo as demo_store

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
BEAMLINE = Path(sys.executable).with_name("beamline")
URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+/\S*)")


@dataclass
class UiProcess:
    process: subprocess.Popen
    url: str  # http://127.0.0.1:PORT/ (+ ?token=... when one is required)

    @property
    def base(self) -> str:
        return self.url.split("?", 1)[0].rstrip("/")


def start_ui(*args: str, env: dict | None = None) -> UiProcess:
    """`beamline ui ... --port 0` as a subprocess; returns once it printed its URL."""
    process = subprocess.Popen(
        [str(BEAMLINE), "ui", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines = []
    for line in process.stdout:  # bounded: the process prints the URL or exits
        lines.append(line)
        match = URL_LINE.search(line)
        if match:
            return UiProcess(process, match.group(1))
    process.wait()
    raise AssertionError("beamline ui did not start:\n" + "".join(lines))


def stop_ui(ui: UiProcess) -> None:
    ui.process.terminate()
    try:
        ui.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        ui.process.kill()
        ui.process.wait()


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> demo_store.Demo:
    return demo_store.build(tmp_path_factory.mktemp("ui-demo"))


@pytest.fixture(scope="session")
def ui(demo) -> UiProcess:
    server = start_ui("--root", str(demo.root))
    yield server
    stop_ui(server)


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        pytest.fail(
            "Chromium and chromedriver are needed: `make services` (apt-get install -y chromium "
            "chromium-driver)."
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        *FLAGS,
        # The network is blocked: no name but 127.0.0.1 resolves, so any outside fetch fails.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()
