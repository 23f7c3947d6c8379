"""PNG screenshots of every `beamline ui` page, for docs/guides/ui.md.

    python scripts/ui_screenshots.py [--root DIR] [--out docs/images/ui]

Without --root it builds the demo store the UI tests use (one real run of the tiny TFX pipeline
plus failed, killed and live runs, labels, monitoring windows and a trigger written with the
MLMD API), starts `beamline ui` on a free port and shoots each page in headless Chromium.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from tests.beamline.lineage.test_report_browser import FLAGS  # noqa: E402
from tests.beamline.ui.conftest import CHROMEDRIVER, CHROMIUM, start_ui, stop_ui  # noqa: E402


def pages(root: Path) -> dict[str, str]:
    """name -> path, picked from the store's runs."""
    from beamline.lineage.access import open_graph
    from beamline.lineage.runs import summarize

    graph = open_graph(root, None)
    summaries = [summarize(graph, r) for r in graph.sorted_runs()]
    by_state: dict[str, str] = {}
    for s in summaries:
        by_state.setdefault(s.state, s.run_id)
    pushed = next((s for s in summaries if s.pushed_version), None)
    first = summaries[0]
    out = {"runs": "/", "pipelines": "/pipelines", "loop": f"/pipelines/{first.pipeline}"}
    out["run"] = f"/runs/{by_state.get('complete', first.run_id)}"
    for state in ("running", "killed", "failed"):
        if state in by_state:
            out[f"run-{state}"] = f"/runs/{by_state[state]}"
    evaluated = [s for s in summaries if s.blessed is not None]
    if evaluated:
        out["run-evaluated"] = f"/runs/{evaluated[-1].run_id}"
    if len(summaries) > 1:
        other = by_state.get("failed", summaries[-1].run_id)
        out["compare"] = f"/compare?a={first.run_id}&b={other}"
    if pushed:
        out["model"] = f"/models/{pushed.pipeline}/{pushed.pushed_version}"
    out["error"] = "/runs/no-such-run"
    return out


def shrink(path: Path) -> None:
    """A 128-colour palette PNG (a third of the size; screenshots have few colours)."""
    try:
        from PIL import Image
    except ImportError:  # Pillow comes with the stack (matplotlib); without it keep full colour
        return
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=128)
    small.save(path, optimize=True)


def shoot(base: str, paths: dict[str, str], out: Path) -> list[Path]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    options.add_argument("--window-size=1280,900")
    options.add_argument("--force-device-scale-factor=1")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    written = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, path in paths.items():
            driver.set_window_size(1280, 500)  # small first: scrollHeight is at least the window
            driver.get(base + path)
            height = driver.execute_script("return document.documentElement.scrollHeight")
            chrome = driver.execute_script("return window.outerHeight - window.innerHeight")
            driver.set_window_size(1280, min(max(int(height) + 24, 500), 2400) + int(chrome))
            target = out / f"{name}.png"
            driver.save_screenshot(str(target))
            shrink(target)
            written.append(target)
    finally:
        driver.quit()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="An existing run root.")
    parser.add_argument("--out", type=Path, default=PROJECT / "docs" / "images" / "ui")
    args = parser.parse_args()
    root = args.root
    if root is None:
        from tests.beamline.ui import demo

        root = demo.build(Path(tempfile.mkdtemp(prefix="beamline-ui-demo-"))).root
    ui = start_ui("--root", str(root))
    try:
        for path in shoot(ui.base, pages(root), args.out):
            print(f"{path} ({path.stat().st_size // 1024} KiB)")
    finally:
        stop_ui(ui)


if __name__ == "__main__":
    main()
