"""The Prometheus page stays well-formed and bounded whatever label values reach it."""

from __future__ import annotations

from beamline_serving.core.metrics import OVERFLOW, Counter, Histogram, Metrics


def test_label_values_are_escaped_as_the_exposition_format_says():
    counter = Counter("/c", "help", ("model_name",))
    counter.inc('a\nb "q" \\')
    [_, line] = counter.render()
    assert line == ':c{model_name="a\\nb \\"q\\" \\\\"} 1'


def test_a_label_value_cannot_start_a_line_of_its_own():
    metrics = Metrics()
    metrics.record_request("x\nfake_requests_total 123456\n#", "predict", "REST", "OK", 5.0)
    page = metrics.render()
    assert "fake_requests_total 123456" not in page.splitlines()
    assert all(line.startswith((":tensorflow:", "# TYPE ")) for line in page.splitlines())


def test_cells_past_the_cap_are_added_up_in_one_overflow_cell():
    counter = Counter("/c", "help", ("model_name", "status"), max_cells=3)
    histogram = Histogram("/h", "help", ("model_name",), [1.0], max_cells=3)
    for i in range(1000):
        counter.inc(f"m{i}", "OK")
        histogram.observe(0.5, f"m{i}")
    counter.inc("m0", "OK")  # a label set kept before the cap still counts in its own cell
    cells = dict(counter.cells)
    assert len(cells) == 4
    assert cells[("m0", "OK")] == 2
    assert cells[(OVERFLOW, OVERFLOW)] == 997
    assert sum(cells.values()) == 1001
    assert len(histogram.cells) == 4
    assert histogram.cells[(OVERFLOW,)][0] == [997, 0]
