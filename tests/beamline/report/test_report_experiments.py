"""`beamline report --experiments`: the experiments table in the static report, its rows and
cells the UI's experiments page renders (beamline.ui.experiments_page), without UI links."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from beamline.cli import cli
from beamline.errors import ConfigError
from beamline.experiments import table as experiments_table
from beamline.report.svg import Box, box_width, dag_svg
from beamline.ui import experiments_page
from tests.beamline.ui import writer

PIPELINE = "tiny"


@pytest.fixture(scope="module")
def evaluated_root(tmp_path_factory) -> tuple[Path, list[str]]:
    """Three runs whose Evaluator recorded TFMA metrics (accuracy 0.71, 0.93, 0.83)."""
    from beamline.metadata.connection import open_store, sqlite_config

    root = tmp_path_factory.mktemp("report-experiments")
    store = open_store(sqlite_config(root / "metadata.sqlite"))
    runs = [
        writer.evaluated_run(store, PIPELINE, root / f"eval-{i}", accuracy, blessed=accuracy > 0.8)
        for i, accuracy in enumerate((0.71, 0.93, 0.83))
    ]
    return root, runs


def _rows_of(text: str) -> list[tuple[str, str]]:
    """(run, accuracy cell) of each row of the report's experiments table, in order."""
    section = text.split('<section id="experiments">', 1)[1].split("</section>", 1)[0]
    head = re.findall(r"<th[^>]*>([^<]*)</th>", section)
    col = head.index("accuracy")
    out = []
    for row in re.findall(r'<tr class="run[^"]*" data-run="([^"]*)">(.*?)</tr>', section):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row[1])
        out.append((row[0], html.unescape(re.sub(r"<[^>]+>", "", cells[col]))))
    return out


def test_report_includes_the_experiments_table_sorted_and_filtered(evaluated_root, tmp_path):
    root, runs = evaluated_root
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, [
        "report", runs[0], "--root", str(root), "--pipeline", PIPELINE, "--out", str(out),
        "--experiments", "--sort", "-accuracy", "--json",
    ])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["experiments"] == [runs[1], runs[2], runs[0]]
    text = out.read_text()
    assert _rows_of(text) == [(runs[1], "0.93"), (runs[2], "0.83"), (runs[0], "0.71")]
    section = text.split('<section id="experiments">', 1)[1].split("</section>", 1)[0]
    # The report's own run is marked; a static file links to no UI page and has no controls.
    assert f'<tr class="run this-run" data-run="{runs[0]}">' in section
    assert "href=" not in section and "<input" not in section
    # The same cells as the UI's experiments page renders for these rows.
    every = experiments_table.build(_graph(root), PIPELINE, {})
    page = experiments_page.render(PIPELINE, "", every, experiments_page.View(sort="-accuracy"))
    ui_cells = re.findall(r'<td class="n" data-column="accuracy">([^<]*)</td>', page)
    assert ui_cells == [c for _, c in _rows_of(text)]

    filtered = tmp_path / "filtered.html"
    result = CliRunner().invoke(cli, [
        "report", runs[0], "--root", str(root), "--pipeline", PIPELINE, "--out", str(filtered),
        "--experiments", "--where", "blessed",
    ])
    assert result.exit_code == 0, result.output
    assert {r for r, _ in _rows_of(filtered.read_text())} == {runs[1], runs[2]}
    # The report's run (not blessed) is filtered out: no row is marked, and none is said to be.
    assert "run this-run" not in filtered.read_text()
    assert "row is marked" not in filtered.read_text() and "row is marked" in text


def test_report_without_the_flag_has_no_table_and_table_options_need_it(evaluated_root, tmp_path):
    root, runs = evaluated_root
    out = tmp_path / "plain.html"
    result = CliRunner().invoke(cli, [
        "report", runs[0], "--root", str(root), "--pipeline", PIPELINE, "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert 'id="experiments"' not in out.read_text()
    result = CliRunner().invoke(cli, [
        "report", runs[0], "--root", str(root), "--pipeline", PIPELINE, "--sort", "accuracy",
    ])
    assert result.exit_code == 2 and "add --experiments" in result.output


def test_a_bad_filter_or_sort_is_the_experiments_commands_error(evaluated_root, tmp_path):
    root, runs = evaluated_root
    for args, phrase in ((["--where", "accuracy >"], "where"), (["--sort", "nope"], "nope")):
        result = CliRunner().invoke(cli, [
            "report", runs[0], "--root", str(root), "--pipeline", PIPELINE,
            "--out", str(tmp_path / "bad.html"), "--experiments", *args,
        ])
        # The CLI's entry point prints a ConfigError as one line and exits 2.
        assert isinstance(result.exception, ConfigError), result.output
        assert result.exception.exit_code == 2 and phrase in str(result.exception).lower()
        assert not (tmp_path / "bad.html").exists()


def _graph(root: Path):
    from beamline.lineage.access import open_graph

    return open_graph(root, None)


def test_dag_boxes_hold_their_text_and_the_drawing_scales_to_its_container():
    names = ["CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform",
             "Tuner", "Trainer", "Evaluator", "Pusher"]
    chain = list(zip(names, names[1:], strict=False))
    boxes = [Box(n, n, "complete · 12.3s") for n in names]
    svg = dag_svg(boxes, chain)
    width = float(re.search(r'<svg[^>]* width="(\d+)"', svg).group(1))
    assert f'viewBox="0 0 {width:.0f} ' in svg
    style = re.search(r'<svg[^>]* style="([^"]*)"', svg).group(1)
    assert "max-width:100%" in style and "height:auto" in style
    # Never drawn below 80%: the text stays readable, the container scrolls past that.
    assert float(re.search(r"min-width:(\d+)px", style).group(1)) == pytest.approx(width * 0.8, 1)
    w = box_width(boxes)
    assert len("ExampleValidator") * 7.4 + 16 <= w < 168
    assert box_width([Box("a", "x" * 40, "y" * 40)]) == 176  # cut text, capped width
