"""The UI's experiments page over a store written with the MLMD API (tests/beamline/ui/
experiments_demo.py: a 2x2 sweep, a tuned run with trials, histories, evaluations, a push):
the rows `beamline experiments` computes, sorted and filtered the same way, the parallel
coordinates, the training curves, the links, and clear 4xx answers to bad queries."""

from __future__ import annotations

import html
import json
import re
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from beamline.commands.experiments import experiments
from beamline.experiments import where as where_lang
from beamline.ui.experiments_page import Axis, plot_axes
from tests.beamline.ui import experiments_demo as ed
from tests.beamline.ui.test_ui_units import Served

PAGE = f"/experiments/{ed.PIPELINE}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> ed.ExperimentsDemo:
    return ed.build(tmp_path_factory.mktemp("experiments-ui"))


@pytest.fixture(scope="module")
def served(demo):
    server = Served(demo.root)
    yield server
    server.close()


def _get(served, path: str, status: int = 200) -> str:
    response = served.get(path)
    assert response.status_code == status, response.text[:2000]
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "Traceback" not in response.text
    return response.text


def _runs(text: str) -> list[str]:
    return re.findall(r'<tr class="run" data-run="([^"]+)"', text)


def _body_rows(text: str) -> list[tuple[str, str]]:
    """(kind, run or run/trial) of each table row, in order."""
    rows = []
    for kind, run, trial in re.findall(
        r'<tr class="(run|trial)" data-run="([^"]+)"(?: data-trial="([^"]+)")?', text
    ):
        rows.append((kind, f"{run}/{trial}" if trial else run))
    return rows


def _cli(demo, *args: str) -> list[str]:
    result = CliRunner().invoke(
        experiments, [ed.PIPELINE, "--root", str(demo.root), "--json", *args]
    )
    assert result.exit_code == 0, result.output
    return [row["run"] for row in json.loads(result.output)]


def test_the_table_is_the_cli_s_rows_with_trials_under_their_run(served, demo):
    text = _get(served, PAGE)
    assert _runs(text) == _cli(demo) == list(reversed(demo.runs))  # newest first
    rows = _body_rows(text)
    at = rows.index(("run", ed.TUNED))
    assert rows[at + 1: at + 4] == [("trial", f"{ed.TUNED}/{t}") for t in ed.TRIALS]
    assert "trial 0 (best)" in text
    assert 'id="experiments-count">5 of 5 runs, 3 trials<' in text
    # Every run links to its page; the pushed one to its version's page.
    for run_id in demo.runs:
        assert f'<a class="run-link" href="/runs/{run_id}">' in text
    assert re.findall(r'class="version-link" href="([^"]+)"', text) == [
        f"/models/{ed.PIPELINE}/{ed.PUSHED_VERSION}"
    ]
    assert "stable" in text and "lr-sweep" in text
    assert "headline metric <b>auc</b>" in text


@pytest.mark.parametrize(("where", "sort", "experiment"), [
    ("auc > 0.92 and blessed", "-auc", None),
    ("units = 8 or labels = stable", "learning_rate", None),
    (None, "auc", ed.EXPERIMENT),
    ("not blessed", None, None),
])
def test_sort_filter_and_experiment_give_the_cli_s_rows(served, demo, where, sort, experiment):
    params, args = [], []
    for name, value in (("where", where), ("sort", sort), ("experiment", experiment)):
        if value:
            params.append(f"{name}={quote(value)}")
            args += [f"--{name}", value]
    text = _get(served, PAGE + "?" + "&".join(params))
    assert _runs(text) == _cli(demo, *args)
    assert _runs(text), "each case selects some runs"


def test_a_header_links_to_its_sort_then_the_reverse(served):
    text = _get(served, PAGE)
    assert f'href="{PAGE}?sort=auc"' in text
    text = _get(served, PAGE + "?sort=auc")
    assert _runs(text) == ["sweep-3", "sweep-1", "tuned-1", "sweep-2", "sweep-4"]
    assert f'href="{PAGE}?sort=-auc"' in text and 'aria-sort="ascending"' in text
    text = _get(served, PAGE + "?sort=-auc&where=" + quote("units=16"))
    assert _runs(text) == ["sweep-4", "sweep-2", "tuned-1"]
    # The header keeps the filter and reverses the order.
    assert f'href="{PAGE}?where=units%3D16&amp;sort=auc"' in text


def test_a_bad_filter_shows_where_s_message_beside_the_box_with_a_400(served, demo):
    bad = "auc > and <script>alert(1)</script>"
    text = _get(served, PAGE + "?where=" + quote(bad), status=400)
    with pytest.raises(where_lang.WhereError) as expected:
        where_lang.parse(bad, ["auc"])
    found = re.search(r'<p class="anomaly" id="where-error" role="alert">(.*?)</p>', text)
    assert found and html.unescape(found.group(1)) == str(expected.value)
    assert "<script>alert" not in text and "&lt;script&gt;" in text
    assert 'id="where"' in text and 'id="no-experiment-rows"' in text
    assert "No rows until the filter above is fixed." in text and "No runs to plot." in text
    unknown = _get(served, PAGE + "?where=" + quote("acc > 0.9"), status=400)
    assert "--where names 'acc', which is no column of this table. Did you mean 'auc'?" in (
        html.unescape(unknown)
    )


@pytest.mark.parametrize(("query", "status", "phrase"), [
    ("sort=nope", 400, "--sort names 'nope', which is no column of the runs"),
    ("sort=" + quote("-<b>"), 400, "--sort names '<b>', which is no column of the runs"),
    ("sort=" + "x" * 400, 400, "sort names no column (it is 400 characters long)"),
    ("columns=run,nope", 400, "--columns names 'nope'"),
    ("curve=" + quote("../../etc/passwd"), 400, "is not valid here"),
    ("curve=no-such-run", 400, "No run 'no-such-run' of 'penguin'"),
    ("experiment=" + quote("<x>"), 400, "No experiment '<x>' in 'penguin'; experiments: lr-sweep"),
    ("where=" + "a" * 3000, 400, "longer than 2000 characters"),
    ("curve=" + "&curve=".join(f"r{i}" for i in range(21)), 400, "at most 20 runs"),
    ("trial=tuned-1/9", 400, "No trial 'tuned-1/9' of 'penguin' (RUN/TRIAL)"),
    ("trial=tuned-1", 400, "The trial 'tuned-1' is not RUN/TRIAL"),
    ("trial=" + quote("tuned-1/<x>"), 400, "is not valid here"),
    ("trial=" + "&trial=".join(f"r/{i}" for i in range(41)), 400, "at most 40 trials"),
    ("limit=0", 400, "limit must be a number from 1 to 10000"),
    ("limit=x", 400, "limit must be a number from 1 to 10000"),
])
def test_bad_queries_are_a_clear_4xx(served, query, status, phrase):
    text = html.unescape(_get(served, PAGE + "?" + query, status=status))
    assert phrase in text and 'id="error"' in text


def test_no_such_pipeline_is_a_404(served):
    assert "Nothing at" in html.unescape(_get(served, "/experiments/nope", status=404))


def test_the_parallel_plot_has_an_axis_per_setting_and_a_line_per_run_and_trial(served, demo):
    text = _get(served, PAGE)
    plot = re.search(r'<svg id="parallel-plot".*?</svg>', text, re.S).group()
    axes = re.findall(r'<g class="axis" data-column="([^"]+)"', plot)
    assert axes == ["hp.learning_rate", "hp.units", "auc", "score"]
    runs = re.findall(r'<path class="run-line" data-run="([^"]+)"', plot)
    assert sorted(runs) == sorted(demo.runs)
    trials = re.findall(r'<path class="trial-line" data-trial="([^"]+)" data-run="([^"]+)"', plot)
    assert sorted(trials) == [(t, ed.TUNED) for t in ed.TRIALS]
    # A filter draws only its rows.
    narrowed = _get(served, PAGE + "?experiment=lr-sweep")
    plot = re.search(r'<svg id="parallel-plot".*?</svg>', narrowed, re.S).group()
    assert len(re.findall(r'class="run-line"', plot)) == 4 and "trial-line" not in plot


def test_axes_read_numbers_by_value_and_other_values_as_categories(demo):
    from beamline.experiments import table
    from beamline.lineage.access import open_graph

    rows = table.build(open_graph(demo.root, None), ed.PIPELINE)
    by_column = {a.column: a for a in plot_axes(rows, "auc")}
    units = by_column["hp.units"]
    assert units.numbers == (4.0, 16.0) and units.position(16) == 1.0 and units.position(4) == 0
    assert units.position(None) is None
    words = Axis("hp.optimizer", "optimizer", categories=["adam", "sgd", "rmsprop"])
    assert [words.position(v) for v in ("adam", "sgd", "rmsprop", "other")] == [0, 0.5, 1, None]


def test_curves_of_the_checked_runs_loss_and_the_headline_metric(served):
    text = _get(served, PAGE + "?curve=sweep-1&curve=tuned-1")
    for chart, metric in (("curve-loss", "loss"), ("curve-metric", "auc")):
        svg = re.search(rf'<svg id="{chart}".*?</svg>', text, re.S).group()
        drawn = re.findall(r'data-run="([^"]+)" data-metric="([^"]+)" data-epochs="(\d+)"', svg)
        assert sorted(drawn) == sorted(
            (run, name, "3") for run in ("sweep-1", "tuned-1") for name in (metric,
                                                                           "val_" + metric)
        )
    assert re.findall(r'class="curve-pick" form="experiments-form" name="curve" '
                      r'value="([^"]+)" checked', text) == ["tuned-1", "sweep-1"]
    # None checked: the first runs of the table's order.
    default = _get(served, PAGE + "?sort=-auc")
    svg = re.search(r'<svg id="curve-loss".*?</svg>', default, re.S).group()
    assert list(dict.fromkeys(re.findall(r'data-run="([^"]+)"', svg))) == [
        "sweep-4", "sweep-2", "tuned-1"
    ]


def _trial_curves(text: str, chart: str) -> list[tuple[str, str, str, str]]:
    """(run, trial, metric, epochs) of each curve of a trial chart."""
    svg = re.search(rf'<svg id="{chart}".*?</svg>', text, re.S).group()
    return re.findall(r'data-run="([^"]+)" data-trial="([^"]+)" data-metric="([^"]+)" '
                      r'data-epochs="(\d+)"', svg)


def test_trial_curves_of_a_checked_run_s_trials_or_of_checked_trials(served):
    completed = [t for t, (_, status, _) in ed.TRIALS.items() if status == "COMPLETED"]
    # None checked: the trials of the first shown run whose Tuner recorded their epochs.
    default = _get(served, PAGE)
    for chart, metric in (("trial-curve-loss", "loss"), ("trial-curve-metric", "auc")):
        assert sorted(_trial_curves(default, chart)) == sorted(
            (ed.TUNED, t, name, "3") for t in completed for name in (metric, "val_" + metric))
    legend = re.search(r'<ul id="trial-curves-legend">.*?</ul>', default, re.S).group()
    assert "trial 0 (best)" in legend and "trial 1" in legend
    # A trial row's checkbox: the failed trial recorded no epoch, so it cannot be checked.
    boxes = dict(re.findall(r'name="trial" value="([^"]+)"([^>]*)>', default))
    assert set(boxes) == {f"{ed.TUNED}/{t}" for t in ed.TRIALS}
    assert "disabled" in boxes[f"{ed.TUNED}/2"] and "disabled" not in boxes[f"{ed.TUNED}/0"]
    # A checked run: its trials; a checked trial: that trial alone, its box checked.
    assert {c[1] for c in _trial_curves(_get(served, PAGE + f"?curve={ed.TUNED}"),
                                        "trial-curve-loss")} == set(completed)
    one = _get(served, PAGE + "?" + f"trial={quote(ed.TUNED + '/1')}")
    assert {c[1] for c in _trial_curves(one, "trial-curve-loss")} == {"1"}
    assert re.findall(r'name="trial" value="([^"]+)" checked', one) == [f"{ed.TUNED}/1"]
    assert f"trial={quote(ed.TUNED + '/1', safe='')}" in html.unescape(
        re.search(r'a class="sort" data-column="auc" href="([^"]+)"', one).group(1))
    # A checked run without trials: no trial drawn, and the page says why.
    assert 'id="no-trial-curves"' in _get(served, PAGE + "?curve=sweep-1")


def test_navigation_and_the_pipeline_page_link_the_page(served):
    index = _get(served, "/experiments")
    assert f'<a href="{PAGE}">penguin</a>' in index
    runs = _get(served, "/")
    assert '<a href="/experiments">Experiments</a>' in runs
    pipeline = _get(served, "/pipelines/penguin")
    assert f'id="experiments-link" href="{PAGE}"' in pipeline


def test_a_limit_shows_the_first_runs_and_links_to_all(served):
    text = _get(served, PAGE + "?sort=-auc&limit=2")
    assert _runs(text) == ["sweep-4", "sweep-2"]
    assert 'id="experiments-count">5 of 5 runs, 3 trials; the first 2 shown<' in text
    assert f'id="show-all" href="{PAGE}?sort=-auc&amp;limit=5"' in text
    assert '<input type="hidden" name="limit" value="2">' in text
    plot = re.search(r'<svg id="parallel-plot".*?</svg>', text, re.S).group()
    assert sorted(re.findall(r'class="run-line" data-run="([^"]+)"', plot)) == [
        "sweep-2", "sweep-4"
    ]


def test_the_reader_keeps_ended_runs_rows_until_the_labels_change(tmp_path):
    """A page reuses the rows of runs that ended (no file read again per request); a label
    moved since shows on the next page, like the command's rows."""
    from beamline.experiments import table
    from beamline.metadata import labels as label_history
    from beamline.metadata.connection import open_store, sqlite_config
    from beamline.ui.store import Reader
    from tests.beamline.ui import writer

    demo = ed.build(tmp_path)
    reader = Reader(demo.root, None)
    graph = reader.graph()
    first = reader.experiment_rows(graph, ed.PIPELINE)
    again = reader.experiment_rows(graph, ed.PIPELINE)
    assert [row.get("run") for row in first] == demo.runs
    assert all(a is b for a, b in zip(first, again, strict=True))
    fresh = table.build(graph, ed.PIPELINE, {int(ed.PUSHED_VERSION): ["stable"]})
    assert [r.to_json() for r in again] == [r.to_json() for r in fresh]

    store = open_store(sqlite_config(demo.root / "metadata.sqlite"))
    pushed = next(a for a in graph.artifacts.values() if a.type == "PushedModel")
    writer.label_change(store, ed.PIPELINE, "canary", -1, int(ed.PUSHED_VERSION), "promote",
                        pushed.id)
    held = label_history.labels_by_version(
        label_history.holders(label_history.history(store, ed.PIPELINE))
    )
    after = {r.get("run"): r for r in reader.experiment_rows(graph, ed.PIPELINE)}
    assert after[ed.PUSHED].get("labels") == held[int(ed.PUSHED_VERSION)]
    assert sorted(after[ed.PUSHED].get("labels")) == ["canary", "stable"]
