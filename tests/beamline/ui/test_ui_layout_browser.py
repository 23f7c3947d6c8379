"""The UI's charts at 1400 px wide in headless Chromium (issue 31): the pipeline page's metric
over runs with one run, and with runs seconds apart, has time labels whose boxes never overlap
and an axis that ends at 1 for a fraction; a penguin-sized run DAG fits the page, its Pusher in
view without scrolling, drawn at a readable scale. Over a records-only store (no TFX run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.beamline.ui import writer
from tests.beamline.ui.conftest import start_ui, stop_ui
from tests.beamline.ui.test_ui_browser import load

WIDTH = 1400
# Penguin's nodes and what each reads: eight layers from CsvExampleGen to Pusher.
PENGUIN = (
    ("CsvExampleGen", ()),
    ("StatisticsGen", ("CsvExampleGen",)),
    ("SchemaGen", ("StatisticsGen",)),
    ("ExampleValidator", ("StatisticsGen", "SchemaGen")),
    ("Transform", ("CsvExampleGen", "SchemaGen")),
    ("Tuner", ("Transform",)),
    ("Trainer", ("Transform", "Tuner")),
    ("Evaluator", ("CsvExampleGen", "Trainer")),
    ("Pusher", ("Trainer", "Evaluator")),
)


def penguin_run(store, pipeline: str) -> str:
    """A finished run of penguin's nine nodes, each reading its upstream nodes' outputs."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    from beamline.metadata import run_context as rc
    from beamline.metadata.liveness import now_ms
    from beamline.metadata.run_claim import claim_run_id

    run_id = claim_run_id(store, pipeline)
    produced: dict[str, int] = {}
    for node, reads in PENGUIN:
        ex_id = writer.put_node_execution(
            store, pipeline, run_id, node, f"tfx.components.{node}", "COMPLETE",
            outputs={"out": ("Examples", f"/nowhere/{node}")},
            inputs=[produced[r] for r in reads],
        )
        [out] = [
            e.artifact_id for e in store.get_events_by_execution_ids([ex_id])
            if e.type == pb.Event.OUTPUT
        ]
        produced[node] = out
    writer.set_run_properties(
        store, run_id, **{rc.STATE: rc.RunState.COMPLETE, rc.END_MS: str(now_ms())}
    )
    return run_id


@pytest.fixture(scope="module")
def layout_ui(tmp_path_factory):
    """Pipeline `one`: one evaluated run (accuracy 0.99); `burst`: three evaluated runs
    milliseconds apart; `penguin`: a run of penguin's DAG."""
    from beamline.metadata.connection import open_store, sqlite_config

    root: Path = tmp_path_factory.mktemp("ui-layout")
    store = open_store(sqlite_config(root / "metadata.sqlite"))
    writer.evaluated_run(store, "one", root / "eval-one", 0.99, blessed=True)
    for i, accuracy in enumerate((0.97, 0.99, 0.98)):
        writer.evaluated_run(store, "burst", root / f"eval-burst-{i}", accuracy, blessed=True)
    run = penguin_run(store, "penguin")
    server = start_ui("--root", str(root))
    yield server, run
    stop_ui(server)


@pytest.fixture
def wide(browser):
    """The browser's viewport WIDTH px wide for one test (then back as it was). Set through
    DevTools' device metrics, which apply at once: a window resize reaches headless Chromium's
    page asynchronously (innerWidth read right after it was 1300 or 1500 now and then)."""
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": WIDTH, "height": 1000, "deviceScaleFactor": 1,
                             "mobile": False})
    try:
        assert browser.execute_script("return window.innerWidth") == WIDTH
        yield browser
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _boxes(browser, selector: str) -> list[dict]:
    return browser.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(function (el) {"
        "  var r = el.getBoundingClientRect();"
        "  return {text: el.textContent, left: r.left, right: r.right, top: r.top,"
        "          bottom: r.bottom}; });",
        selector,
    )


@pytest.mark.parametrize("pipeline", ["one", "burst"])
@pytest.mark.parametrize("metric", ["auc", "accuracy"])
def test_metric_over_runs_labels_do_not_overlap_and_a_fraction_ends_at_one(
    wide, layout_ui, pipeline, metric
):
    server, _ = layout_ui
    seen = load(wide, f"{server.base}/pipelines/{pipeline}?metric={metric}")
    assert not seen["console"], seen["console"]
    labels = _boxes(wide, "#metric-svg text.x-tick")
    assert labels and all(b["right"] > b["left"] for b in labels)
    texts = [b["text"] for b in labels]
    assert len(set(texts)) == len(texts), texts
    chart = _boxes(wide, "#metric-svg")[0]
    ordered = sorted(labels, key=lambda b: b["left"])
    for a, b in zip(ordered, ordered[1:], strict=False):
        assert a["right"] <= b["left"], (a, b)  # no two labels' boxes overlap
    assert chart["left"] <= ordered[0]["left"] and ordered[-1]["right"] <= chart["right"]
    ticks = [float(b["text"]) for b in _boxes(wide, "#metric-svg text.y-tick")]
    assert ticks[-1] == 1.0 and max(ticks) <= 1.0, ticks  # not 1.07: accuracy ends at 1
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1 and steps.pop() in (0.1, 0.2, 0.25, 0.5), ticks  # round ticks
    # Every run's point is drawn, inside the plot.
    points = _boxes(wide, "#metric-svg circle.pt")
    assert len(points) == (1 if pipeline == "one" else 3)
    assert all(chart["left"] < p["left"] and p["right"] < chart["right"] for p in points)


def test_run_dag_fits_the_page_with_its_pusher_in_view(wide, layout_ui):
    server, run = layout_ui
    seen = load(wide, f"{server.base}/runs/{run}")
    assert not seen["console"], seen["console"]
    fit = wide.execute_script(
        "var svg = document.getElementById('dag-svg');"
        "var box = svg.closest('.scroll');"
        "var pusher = svg.querySelector('[data-node=\"Pusher\"] rect').getBoundingClientRect();"
        "var drawn = svg.getBoundingClientRect();"
        "var title = svg.querySelector('text.t').getBoundingClientRect();"
        "return {pusherRight: pusher.right, boxRight: box.getBoundingClientRect().right,"
        "  scrollWidth: box.scrollWidth, clientWidth: box.clientWidth,"
        "  pageScroll: document.documentElement.scrollWidth, view: window.innerWidth,"
        "  scale: drawn.width / svg.viewBox.baseVal.width, titleHeight: title.height,"
        "  nodes: svg.querySelectorAll('g.node').length};"
    )
    assert fit["nodes"] == len(PENGUIN)
    assert fit["pusherRight"] <= fit["boxRight"] <= fit["view"], fit
    assert fit["scrollWidth"] <= fit["clientWidth"], fit  # no horizontal scroll bar
    assert fit["pageScroll"] <= fit["view"], fit
    assert fit["scale"] >= 0.8, fit  # scaled by its viewBox, not below a readable size
    assert fit["titleHeight"] >= 9, fit
