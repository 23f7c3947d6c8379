"""The UI's pieces for every task, without a server: a regression canary shown by its predicted
numbers, metrics judged by their own direction (a falling RMSE is an improvement)."""

from __future__ import annotations

import re

from beamline.monitor.canary import CompareThresholds, compare_sides, side_of
from beamline.ui import canary_view
from beamline_serving.request_log.outcomes import Outcome


def _side(name: str, version: int, values: list[float]):
    outcomes = [Outcome(1, "diabetes", version, "predict", "OK", 1000)] * len(values)
    return side_of(name, version, outcomes, [], values)


def _cells(html: str, table_id: str) -> dict[str, list[str]]:
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1])
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows]
    return {row[0]: row[1:] for row in cells}


def test_the_canary_section_shows_a_regression_models_predicted_numbers(tmp_path):
    stable = _side("stable", 1, [100.0 + i for i in range(60)])
    canary = _side("canary", 2, [200.0 + i for i in range(60)])
    html = canary_view.render(
        compare_sides("diabetes", "diabetes", stable, canary, CompareThresholds()), tmp_path, 24
    )
    rows = _cells(html, "canary-table")
    assert rows["predicted mean"] == ["129.5", "229.5"]
    assert rows["predicted std"] == ["17.32", "17.32"]
    assert not any(name.startswith("predicted ") and "%" in "".join(v) for name, v in rows.items())
    checks = _cells(html, "canary-checks")
    assert checks["prediction_distance"][0] == "1" and "crossed" in checks["prediction_distance"][2]
    assert "prediction_distance" in html.split('id="canary-verdict"', 1)[1]


# ------------------------------------------------- metrics judged by their own direction


def _regression_runs(root, rmse_values: list[float]):
    """A store (written with the MLMD API, as the runner records runs) holding one finished run
    of pipeline `diabetes` per RMSE, each with an Evaluator's TFMA metrics."""
    from beamline.lineage.access import open_graph
    from beamline.metadata import run_context as rc
    from beamline.metadata.connection import open_store, sqlite_config
    from beamline.metadata.run_claim import claim_run_id
    from tests.beamline.ui import writer

    store = open_store(sqlite_config(root / "metadata.sqlite"))
    for i, rmse in enumerate(rmse_values):
        evaluation = root / f"evaluation-{i}"
        writer.write_tfma_metrics(evaluation, {"Overall": {
            "root_mean_squared_error": rmse, "mean_absolute_error": rmse * 0.8,
            "example_count": 139.0,
        }})
        run_id = claim_run_id(store, "diabetes")
        writer.put_node_execution(
            store, "diabetes", run_id, "Evaluator", writer.EVALUATOR, "COMPLETE",
            outputs={"evaluation": ("ModelEvaluation", str(evaluation))},
        )
        writer.set_run_properties(
            store, run_id, **{rc.STATE: rc.RunState.COMPLETE, rc.END_MS: str(writer.now_ms())}
        )
    return open_graph(root, None)


def test_a_falling_rmse_between_two_runs_is_an_improvement(tmp_path):
    from beamline.lineage.diff import diff_runs
    from beamline.lineage.format import diff_text
    from beamline.ui import compare_page

    graph = _regression_runs(tmp_path, [70.0, 59.0])
    a, b = graph.sorted_runs("diabetes")
    metrics = diff_runs(graph, a, b).metrics["Overall"]
    assert metrics["root_mean_squared_error"]["delta"] == -11.0
    assert metrics["root_mean_squared_error"]["better"] is True
    assert metrics["mean_absolute_error"]["better"] is True
    assert metrics["example_count"]["better"] is None  # unchanged, and no direction
    text = diff_text(diff_runs(graph, a, b))
    [rmse_line] = [line for line in text.splitlines() if "root_mean_squared_error" in line]
    assert rmse_line.rstrip().endswith("-11 better")
    back = diff_runs(graph, b, a).metrics["Overall"]["root_mean_squared_error"]
    assert (back["delta"], back["better"]) == (11.0, False)
    assert "+11 worse" in compare_page.render(graph, b, a)


def test_the_loop_page_charts_rmse_saying_lower_is_better(tmp_path):
    from beamline.lineage.runs import summarize
    from beamline.ui import loop_page

    graph = _regression_runs(tmp_path, [70.0, 59.0])
    summaries = [summarize(graph, run) for run in graph.sorted_runs("diabetes")]
    html = loop_page.render(graph, "diabetes", [], [], [], summaries)
    chart = html.split('id="metric"', 1)[1].split("</section>", 1)[0]
    # The headline metric of a regression model, not the first name in the alphabet.
    assert ">root_mean_squared_error (lower is better)</text>" in chart


def test_the_report_marks_a_delta_by_the_metrics_direction():
    from beamline.lineage.tfma import Evaluation
    from beamline.report.sections import direction, metric_rows

    evaluation = Evaluation(metrics={
        "candidate": {"Overall": {"root_mean_squared_error": 59.0, "auc": 0.90,
                                  "example_count": 139.0}},
        "baseline": {"Overall": {"root_mean_squared_error": 70.0, "auc": 0.95,
                                 "example_count": 130.0}},
    })
    rows = {row[1].split(" ")[0]: row for row in metric_rows(evaluation)}
    assert rows["root_mean_squared_error"][4] == '<span class="delta-better">-11</span>'
    assert "(lower is better)" in rows["root_mean_squared_error"][1]
    assert rows["auc"][4] == '<span class="delta-worse">-0.05</span>'
    assert rows["auc"][1] == "auc"
    assert rows["example_count"][4] == '<span class="">+9</span>'
    assert direction("loss") == "lower is better" and direction("example_count") == ""
