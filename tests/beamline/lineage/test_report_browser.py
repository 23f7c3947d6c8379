"""The HTML report in a real browser: Debian's headless Chromium via selenium + chromedriver."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# Chromium's own UI resources (not network requests of the page).
INTERNAL = ("chrome://", "chrome-untrusted://", "devtools://", "about:")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1300,1800",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("BEAMLINE_SKIP_BROWSER") == "1":
            pytest.skip("Chromium not installed (BEAMLINE_SKIP_BROWSER=1)")
        pytest.fail(
            "Chromium and chromedriver are needed: apt-get install -y chromium chromium-driver "
            "(or set BEAMLINE_SKIP_BROWSER=1 to skip)."
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def requested_urls(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def render(store, run_id: str, out: Path) -> Path:
    from beamline.lineage.runs import resolve_run
    from beamline.report.html import render_report

    graph = store.graph()
    out.write_text(render_report(graph, resolve_run(graph, run_id)), encoding="utf-8")
    return out


def test_report_in_headless_chromium(browser, tiny_store, tmp_path):
    from selenium.webdriver.common.by import By

    path = render(tiny_store, tiny_store.run_ids[2], tmp_path / "run3.html")
    browser.get("about:blank")
    browser.get_log("performance")  # drop start-up requests (the browser's own new-tab page)
    url = path.as_uri()
    browser.get(url)

    assert tiny_store.run_ids[2] in browser.title
    nodes = browser.find_elements(By.CSS_SELECTOR, "#dag-svg g.node")
    assert sorted(n.get_attribute("data-node") for n in nodes) == sorted(
        [
            "CsvExampleGen",
            "StatisticsGen",
            "ImportSchemaGen",
            "ExampleValidator",
            "Trainer",
            "Pusher",
        ]
    )
    states = {n.get_attribute("data-node"): n.get_attribute("class") for n in nodes}
    assert "state-CACHED" in states["ImportSchemaGen"]  # run 3 reused the imported schema
    assert "state-COMPLETE" in states["CsvExampleGen"]
    dag = browser.find_element(By.ID, "dag-svg")
    assert dag.size["width"] > 300 and dag.size["height"] > 40
    assert len(browser.find_elements(By.CSS_SELECTOR, "#dag-svg path.edge")) >= 5
    rows = browser.find_elements(By.CSS_SELECTOR, "#nodes-table tbody tr")
    assert len(rows) == 6
    assert browser.find_elements(By.CSS_SELECTOR, "table.stats.numeric svg.hist")
    anomalies = browser.find_element(By.ID, "anomalies-table").text
    assert "color" in anomalies
    assert browser.find_elements(By.CSS_SELECTOR, "#lineage-svg g.source")
    assert "data.csv" in browser.find_element(By.ID, "sources-table").text
    assert "no model evaluation" in browser.find_element(By.ID, "metrics").text.lower()

    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000

    urls = [u for u in requested_urls(browser) if not u.startswith(INTERNAL)]
    assert urls == [url], urls  # the report itself, nothing else
    refused = [
        e for e in browser.get_log("browser") if "Content Security Policy" in e.get("message", "")
    ]
    assert not refused, refused


def test_cached_run_report(browser, tiny_store, tmp_path):
    from selenium.webdriver.common.by import By

    path = render(tiny_store, tiny_store.run_ids[1], tmp_path / "run2.html")
    browser.get(path.as_uri())
    classes = [
        n.get_attribute("class") for n in browser.find_elements(By.CSS_SELECTOR, "#dag-svg g.node")
    ]
    assert classes and all("state-CACHED" in c for c in classes)
    assert "Reused" in browser.find_element(By.ID, "nodes-table").text
    assert browser.find_element(By.ID, "no-anomalies").is_displayed()
