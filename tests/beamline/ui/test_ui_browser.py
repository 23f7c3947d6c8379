"""`beamline ui` in headless Chromium (network blocked: no name but 127.0.0.1 resolves) over the
demo store: one real tiny TFX run plus failed, killed and live runs, labels, monitoring windows
and a trigger written with the MLMD API (tests/beamline/ui/demo.py)."""

from __future__ import annotations

import hashlib
import json

import pytest

from beamline.metadata import run_context as rc
from tests.beamline.ui import writer

INTERNAL = ("chrome://", "chrome-untrusted://", "devtools://", "about:", "data:")


def _drain(browser) -> None:
    browser.get_log("performance")
    browser.get_log("browser")


def load(browser, url: str) -> dict:
    """Opens `url`; returns what the page requested, what failed and what the console said."""
    browser.get("about:blank")
    _drain(browser)
    browser.get(url)
    writer.wait_for(
        lambda: browser.execute_script("return document.readyState") == "complete",
        what=f"{url} to load",
    )
    requested, failed, statuses = [], [], {}
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            requested.append(params["request"]["url"])
        elif method == "Network.loadingFailed":
            failed.append(params)
        elif method == "Network.responseReceived":
            statuses[params["response"]["url"]] = params["response"]["status"]
    console = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    return {"requested": requested, "failed": failed, "statuses": statuses, "console": console}


def attribute(browser, selector: str, name: str) -> str:
    """An attribute read in one step (the live script may swap the element in between)."""
    return browser.execute_script(
        "var el = document.querySelector(arguments[0]);"
        "return el ? el.getAttribute(arguments[1]) || '' : '';",
        selector,
        name,
    )


@pytest.fixture(scope="module")
def pages(demo, ui) -> dict[str, str]:
    return {
        "runs": "/",
        "runs filtered": "/?pipeline=tiny&state=killed",
        "finished run": f"/runs/{demo.finished}",
        "failed run": f"/runs/{demo.failed}",
        "killed run": f"/runs/{demo.killed}",
        "live run": f"/runs/{demo.live}",
        "compare": f"/compare?a={demo.finished}&b={demo.failed}",
        "compare picker": "/compare",
        "model version": f"/models/tiny/{demo.pushed_version}",
        "data version": f"/data/tiny/{demo.data_version}",
        "pipelines": "/pipelines",
        "models and loop": "/pipelines/tiny",
        "experiments index": "/experiments",
        "experiments": "/experiments/tiny",
    }


def test_every_page_loads_offline_with_no_failed_request_or_console_error(browser, ui, pages):
    for name, path in pages.items():
        seen = load(browser, ui.base + path)
        assert seen["requested"], name
        outside = [u for u in seen["requested"] if not u.startswith((ui.base, *INTERNAL))]
        assert not outside, (name, outside)
        assert not seen["failed"], (name, seen["failed"])
        bad = {u: s for u, s in seen["statuses"].items() if s >= 400}
        assert not bad, (name, bad)
        assert not seen["console"], (name, seen["console"])
        assert "/static/style.css" in " ".join(seen["requested"]), name
        assert "Traceback" not in browser.page_source


def test_runs_page_shows_each_state_and_the_trigger(browser, ui, demo):
    from selenium.webdriver.common.by import By

    load(browser, ui.base + "/")
    # Read in one step: the live script may swap the table body at any poll.
    rows = browser.execute_script(
        "var out = {};"
        "document.querySelectorAll('#runs-body tr[data-run]').forEach(function (r) {"
        "  out[r.getAttribute('data-run')] = [r.getAttribute('data-state'), r.innerText]; });"
        "return out;"
    )
    states = {run: state for run, (state, _) in rows.items()}
    assert states[demo.finished] == "complete"
    assert states[demo.failed] == "failed"
    assert states[demo.killed] == "killed"
    assert states[demo.live] in ("running", "complete")  # the live test may have finished it
    assert "drift" in rows[demo.live][1]  # the trigger that started it
    assert demo.pushed_version in rows[demo.finished][1]
    load(browser, ui.base + f"/runs/{demo.killed}")
    assert "killed: runner pid" in browser.find_element(By.ID, "run-reason").text


def test_gantt_bars_match_mlmd_execution_times(browser, ui, demo):
    from selenium.webdriver.common.by import By

    load(browser, ui.base + f"/runs/{demo.finished}")
    svg = browser.find_element(By.ID, "gantt-svg")
    plot_w = float(svg.get_attribute("data-plot-w"))
    plot_x = float(svg.get_attribute("data-plot-x"))
    bars = svg.find_elements(By.CSS_SELECTOR, "g.bar")
    ids = [int(b.get_attribute("data-bar")) for b in bars]
    executions = demo.writer_store().get_executions_by_id(ids)
    times = {e.id: (e.create_time_since_epoch, e.last_update_time_since_epoch) for e in executions}
    assert len(times) == 6
    assert ids == sorted(ids, key=lambda i: (times[i][0], i))  # start order, as MLMD has it
    t0 = min(s for s, _ in times.values())
    span = max(e for _, e in times.values()) - t0
    for bar, eid in zip(bars, ids, strict=True):
        rect = bar.find_element(By.TAG_NAME, "rect")
        start, end = times[eid]
        want_x = plot_x + plot_w * (start - t0) / span
        want_w = max(plot_w * (end - start) / span, 1.0)
        assert float(rect.get_attribute("x")) == pytest.approx(want_x, abs=0.05)
        assert float(rect.get_attribute("width")) == pytest.approx(want_w, abs=0.05)
        assert int(bar.get_attribute("data-start-ms")) == start
    critical = [b.get_attribute("data-bar") for b in bars if "critical" in b.get_attribute("class")]
    last = max(times, key=lambda i: times[i][1])
    assert str(last) in critical and len(critical) >= 2
    assert browser.find_element(By.ID, "critical-path").text.startswith("Critical path:")


def test_pushed_version_lineage_reaches_its_span_files(browser, ui, demo):
    from selenium.webdriver.common.by import By

    load(browser, ui.base + f"/models/tiny/{demo.pushed_version}")
    sources = browser.find_elements(By.CSS_SELECTOR, "#model-lineage-svg g.source")
    assert [s.get_attribute("data-node") for s in sources] == [f"f{demo.data_file}"]
    titles = [
        t.text for t in browser.find_elements(By.CSS_SELECTOR, "#model-lineage-svg g.node text.t")
    ]
    assert {"data.csv", "CsvExampleGen", "Examples", "Trainer", "Model", "Pusher"} <= set(titles)
    digest = hashlib.sha256(demo.data_file.read_bytes()).hexdigest()[:16]
    table = browser.find_element(By.ID, "sources-table").text
    assert str(demo.data_file) in table and digest in table
    # Edges lead from the file to the pushed model: a path through the drawn graph.
    edges = browser.find_elements(By.CSS_SELECTOR, "#model-lineage-svg path.edge")
    assert len(edges) >= len(titles) - 2
    labels = browser.find_element(By.ID, "labels-table").text
    assert "stable" in labels and "canary" in labels
    assert len(browser.find_elements(By.CSS_SELECTOR, "#labels-svg g.bar")) == 2


def test_the_model_page_links_its_data_version_page(browser, ui, demo):
    from selenium.webdriver.common.by import By

    load(browser, ui.base + f"/models/tiny/{demo.pushed_version}")
    links = browser.find_elements(By.CSS_SELECTOR, "a.data-version-link")
    assert links and {link.get_attribute("href") for link in links} == {
        f"{ui.base}/data/tiny/{demo.data_version}"}
    links[0].click()
    writer.wait_for(lambda: "/data/tiny/" in browser.current_url, what="the data version page")
    assert browser.find_element(By.ID, "data-version-key").text == demo.data_version
    facts = {c.get_attribute("data-fact"): c.find_element(By.TAG_NAME, "b").text
             for c in browser.find_elements(By.CSS_SELECTOR, "#cards .card")}
    data = demo.data_file.read_bytes()
    # Rows as the real run's StatisticsGen counted them: every data row of the CSV.
    assert facts == {"files": "1", "bytes": f"{len(data):,}", "rows": str(
        len(data.decode().strip().splitlines()) - 1), "span": "-", "runs": "1"}, facts
    files = browser.find_element(By.ID, "files-table").text
    assert "data.csv" in files and hashlib.sha256(data).hexdigest() in files
    assert demo.finished in browser.find_element(By.ID, "runs-table").text
    models = browser.find_element(By.ID, "models-table").text
    assert demo.pushed_version in models and "stable" in models
    command = browser.find_element(By.ID, "checkout-command").text
    assert command.startswith(f"beamline data checkout --run {demo.finished} --to DIR --root ")


def test_compare_draws_drift_per_feature(browser, ui, demo):
    from selenium.webdriver.common.by import By

    load(browser, ui.base + f"/compare?a={demo.finished}&b={demo.failed}")
    charts = browser.find_elements(By.CSS_SELECTOR, "figure.drift-chart")
    assert charts
    features = {
        r.get_attribute("data-label").split(" ")[0]
        for r in browser.find_elements(By.CSS_SELECTOR, "figure.drift-chart g.row")
    }
    assert features == {"x", "color", "label"}
    assert "Trainer" in browser.find_element(By.ID, "diff-text").text


def test_models_and_loop_page_draws_windows_triggers_and_labels(browser, ui, demo):
    from selenium.webdriver.common.by import By

    load(browser, ui.base + "/pipelines/tiny")
    x = browser.find_element(By.CSS_SELECTOR, "figure.monitor-chart[data-feature='x']")
    assert x.find_elements(By.CSS_SELECTOR, "line.threshold")
    points = x.find_elements(By.CSS_SELECTOR, "circle.pt")
    assert len(points) == 4  # skew and drift of two windows
    assert len(x.find_elements(By.CSS_SELECTOR, "circle.trigger")) == 2  # the second window's
    triggers = browser.find_element(By.ID, "triggers-table").text
    assert demo.live in triggers and "retrain" in triggers
    # Started without --requests: the canary section says how to get the comparison.
    assert "--requests DIR" in browser.find_element(By.ID, "canary-off").text
    [review] = browser.find_elements(By.CSS_SELECTOR, "#triggers-table .canary-review")
    assert review.text == ("canary: canary version 3 is worse than stable version 2 in this "
                           "window (error_rate_increase 0.05 > 0.01)")
    history = browser.find_elements(By.CSS_SELECTOR, "#label-history tbody tr")
    assert len(history) == 3
    versions = browser.find_element(By.ID, "versions-table").text
    assert demo.pushed_version in versions and "stable" in versions
    # The metric over runs: one point per evaluated run, oldest first, the blessed one marked.
    # Both runs recorded AUC and accuracy: AUC is the headline a reader sees first.
    dots = browser.find_elements(By.CSS_SELECTOR, "#metric-svg circle.pt")
    assert [float(d.get_attribute("data-y")) for d in dots] == pytest.approx([0.66, 0.78])
    assert ["blessed" in d.get_attribute("class") for d in dots] == [False, True]
    # The picker switches the chart to another recorded metric.
    load(browser, ui.base + "/pipelines/tiny?metric=accuracy")
    dots = browser.find_elements(By.CSS_SELECTOR, "#metric-svg circle.pt")
    assert [float(d.get_attribute("data-y")) for d in dots] == pytest.approx([0.71, 0.83])


def test_run_page_draws_tfma_metrics_per_slice(browser, ui, demo):
    from selenium.webdriver.common.by import By

    load(browser, ui.base + f"/runs/{demo.evaluated[1]}")
    chart = browser.find_element(By.CSS_SELECTOR, "figure.slice-chart[data-metric='accuracy']")
    rows = {
        r.get_attribute("data-label"): float(r.get_attribute("data-value"))
        for r in chart.find_elements(By.CSS_SELECTOR, "g.row")
    }
    assert rows == pytest.approx({"Overall": 0.83, "color=blue": 0.88, "color=red": 0.73})
    assert "0.83" in browser.find_element(By.ID, "metrics-table").text


def test_live_run_changes_state_without_a_reload(browser, ui, demo):

    store = demo.writer_store()
    # The run page: the running Trainer turns complete in the DAG.
    load(browser, ui.base + f"/runs/{demo.live}")
    node = "#dag-svg g.node[data-node='Trainer']"
    assert "state-RUNNING" in attribute(browser, node, "class")
    browser.execute_script("window.__notReloaded = true;")
    writer.set_execution_state(store, demo.live_execution, "COMPLETE")
    writer.wait_for(
        lambda: "state-COMPLETE" in attribute(browser, node, "class"),
        what="the Trainer node to turn complete",
    )
    assert browser.execute_script("return window.__notReloaded === true;")

    # The runs page: the run's row turns complete when the runner records its end.
    load(browser, ui.base + "/")
    row = f"#runs-body tr[data-run='{demo.live}']"
    assert attribute(browser, row, "data-state") == "running"
    browser.execute_script("window.__notReloaded = true;")
    writer.finish_run(store, demo.live, demo.live_execution)
    writer.wait_for(
        lambda: attribute(browser, row, "data-state") == rc.RunState.COMPLETE,
        what="the live run's row to turn complete",
    )
    assert browser.execute_script("return window.__notReloaded === true;")
    assert "complete" in browser.execute_script(
        "return document.querySelector(arguments[0]).innerText;", f"{row} td.state"
    )


def test_with_requests_the_pipeline_page_compares_stable_and_canary(browser, demo, tmp_path):
    """A copy of the demo store with a canary on a second version, outcome files as `beamline
    serve` writes them (the canary fails 5 of its 50 requests), and a UI started with
    --requests: the page shows both sides, the crossed error-rate check and the verdict."""
    import shutil
    import time

    from selenium.webdriver.common.by import By

    from beamline.lineage.access import open_graph
    from beamline.metadata import records
    from beamline.monitor.trained import pushed_versions, served_name
    from beamline_serving.request_log.outcomes import outcome_line
    from tests.beamline.ui import demo as demo_store
    from tests.beamline.ui.conftest import start_ui, stop_ui

    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(demo.db_path, root / "metadata.sqlite")
    stable = int(demo.pushed_version)
    canary = stable + 1
    copy = demo_store.Demo(root, demo.data_file, demo.finished)
    writer.label_change(copy.writer_store(), "tiny", records.CANARY_LABEL, records.NO_VERSION,
                        canary, records.LabelAction.PROMOTE, None, at_ms=writer.now_ms())
    model = served_name(pushed_versions(open_graph(root, None))[stable])
    now = int(time.time() * 1000)
    lines = [outcome_line(now, model, stable, "predict", "OK", 1_000) for _ in range(100)]
    lines += [outcome_line(now, model, canary, "predict", "INVALID_ARGUMENT" if i < 5 else "OK",
                           1_100) for i in range(50)]
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / f"{model}-20261202T000000-1-0.outcomes.tsv").write_bytes(b"".join(lines))
    server = start_ui("--root", str(root), "--requests", str(logs))
    try:
        seen = load(browser, server.base + "/pipelines/tiny")
        assert not seen["console"], seen["console"]
        rows = {
            r.find_element(By.CSS_SELECTOR, "td").text: [
                c.text for c in r.find_elements(By.CSS_SELECTOR, "td")[1:]
            ]
            for r in browser.find_elements(By.CSS_SELECTOR, "#canary-table tbody tr")
        }
        assert rows["requests"] == ["100", "50"]
        assert rows["errors"] == ["0 (0.00%)", "5 (10.00%)"]
        assert rows["p99 latency"] == ["1.00 ms", "1.10 ms"]
        checks = {
            r.find_elements(By.CSS_SELECTOR, "td")[0].text: r.text
            for r in browser.find_elements(By.CSS_SELECTOR, "#canary-checks tbody tr")
        }
        assert "crossed" in checks["error_rate_increase"]
        assert checks["p99_ratio"].endswith("ok")
        verdict = browser.find_element(By.ID, "canary-verdict").text
        assert verdict == (f"canary (v{canary}) is worse than stable (v{stable}): "
                           "error_rate_increase")
    finally:
        stop_ui(server)


# ---------------------------------------------------------------- the experiments page


@pytest.fixture(scope="module")
def experiments_ui(tmp_path_factory):
    """`beamline ui` over the experiments store (a 2x2 sweep, a tuned run with trials, epoch
    histories; written with the MLMD API, no TFX run: tests/beamline/ui/experiments_demo.py)."""
    from tests.beamline.ui import experiments_demo
    from tests.beamline.ui.conftest import start_ui, stop_ui

    built = experiments_demo.build(tmp_path_factory.mktemp("experiments-browser"))
    server = start_ui("--root", str(built.root))
    yield server
    stop_ui(server)


def _experiment_rows(browser) -> list[list[str]]:
    """[run, auc] of each run row, in order."""
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('#experiments-body tr.run')).map("
        "function (r) { var auc = r.querySelector('td[data-column=auc]');"
        "  return [r.getAttribute('data-run'), auc ? auc.innerText : '']; });"
    )


def _offline(seen: dict, base: str) -> None:
    outside = [u for u in seen["requested"] if not u.startswith((base, *INTERNAL))]
    assert not outside, outside
    assert not seen["failed"], seen["failed"]
    assert not seen["console"], seen["console"]


def _click_and_wait(browser, element, before: str) -> None:
    element.click()
    writer.wait_for(
        lambda: browser.current_url != before
        and browser.execute_script("return document.readyState") == "complete",
        what="the page after the click",
    )


def test_experiments_page_draws_table_plot_and_curves_offline_and_sorts_and_filters(
    browser, experiments_ui
):
    from selenium.webdriver.common.by import By

    from tests.beamline.ui import experiments_demo as ed

    base = experiments_ui.base
    seen = load(browser, base + f"/experiments/{ed.PIPELINE}")
    _offline(seen, base)
    assert [run for run, _ in _experiment_rows(browser)] == [
        ed.TUNED, "sweep-4", "sweep-3", "sweep-2", "sweep-1"
    ]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#experiments-body tr.trial")) == 3

    # The plot and the curves are drawn: lines with a size on screen.
    def drawn(selector: str) -> int:
        return browser.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0])).filter(function (p) {"
            "  var box = p.getBBox(); return box.width > 0 || box.height > 0; }).length;",
            selector,
        )

    assert drawn("#parallel-plot path.run-line") == 5
    assert drawn("#parallel-plot path.trial-line") == 3
    assert drawn("#parallel-plot g.axis line") == 4
    assert drawn("#curve-loss path.curve") == 6  # the first three runs, loss and val_loss
    assert drawn("#curve-metric path.curve") == 6
    # The tuned run's trials, each its own curve: two completed trials, loss and val_loss.
    assert drawn("#trial-curve-loss path.curve") == 4
    assert drawn("#trial-curve-metric path.curve") == 4

    # A click on a header sorts by it; a second click reverses.
    before = browser.current_url
    _click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, 'a.sort[data-column="auc"]'),
                    before)
    ascending = _experiment_rows(browser)
    assert [float(auc) for _, auc in ascending] == sorted(
        [auc for _, _, auc in ed.GRID.values()] + [ed.TUNED_AUC]
    )
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    _click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, 'a.sort[data-column="auc"]'),
                    browser.current_url)
    assert _experiment_rows(browser) == list(reversed(ascending))

    # A filter narrows the rows (and keeps the order); checked runs get their curves.
    box = browser.find_element(By.ID, "where")
    box.clear()
    box.send_keys("auc > 0.92 and blessed")
    _click_and_wait(browser, browser.find_element(By.ID, "apply"), browser.current_url)
    assert [run for run, _ in _experiment_rows(browser)] == ["sweep-4", "sweep-2", ed.TUNED]
    assert drawn("#parallel-plot path.run-line") == 3
    for run in ("sweep-2", ed.TUNED):
        browser.find_element(By.CSS_SELECTOR, f'input.curve-pick[value="{run}"]').click()
    _click_and_wait(browser, browser.find_element(By.ID, "draw-curves"), browser.current_url)
    curves = browser.execute_script(
        "return Array.from(document.querySelectorAll('#curve-loss path.curve')).map("
        "function (p) { return p.getAttribute('data-run'); });"
    )
    assert sorted(set(curves)) == sorted({"sweep-2", ed.TUNED})
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]

    def trial_curves() -> list[str]:
        return sorted(set(browser.execute_script(
            "return Array.from(document.querySelectorAll('#trial-curve-loss path.curve')).map("
            "function (p) { return p.getAttribute('data-trial'); });"
        )))

    assert trial_curves() == ["0", "1"]  # the checked tuned run's completed trials
    # One trial checked alone (the runs unchecked): its curve only.
    for run in ("sweep-2", ed.TUNED):
        browser.find_element(By.CSS_SELECTOR, f'input.curve-pick[value="{run}"]').click()
    browser.find_element(By.CSS_SELECTOR, f'input.trial-pick[value="{ed.TUNED}/1"]').click()
    _click_and_wait(browser, browser.find_element(By.ID, "draw-curves"), browser.current_url)
    assert trial_curves() == ["1"] and drawn("#trial-curve-loss path.curve") == 2
    assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]

    # A filter that does not parse: where.py's message beside the box, no rows.
    box = browser.find_element(By.ID, "where")
    box.clear()
    box.send_keys("auc >")
    _click_and_wait(browser, browser.find_element(By.ID, "apply"), browser.current_url)
    assert "does not parse at character 6" in browser.find_element(By.ID, "where-error").text
    assert _experiment_rows(browser) == []
