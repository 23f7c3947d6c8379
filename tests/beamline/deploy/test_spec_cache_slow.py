"""The cache of `beamline run --spec --as vertex` with real TFX: penguin's ExampleGen (with TFX's
driver hook) and StatisticsGen, cut from the compiled Vertex spec, run three times. The second
run is served from the cache (the hook's fingerprint of the unchanged file gives the same key);
after the file changes, the hook's new fingerprint misses, and so does the task reading the new
examples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from beamline.cli import main
from beamline.deploy import spec_runner

pytestmark = pytest.mark.slow

KEEP = ("CsvExampleGen", "StatisticsGen")


def test_a_second_vertex_run_is_cached_until_the_driver_sees_new_data(tmp_path):
    from beamline_pipelines.penguin import default_data_root

    data = tmp_path / "data"
    data.mkdir()
    csv = data / "penguins.csv"
    shutil.copy(Path(default_data_root()), csv)
    spec_file = tmp_path / "penguin.json"
    main(["compile", "penguin", "--target", "vertex", "--image", "registry.example/b:1",
          "--pipeline-root", "gs://bucket/root", "--data-root", str(data), "--no-tune",
          "--out", str(spec_file)])
    job = json.loads(spec_file.read_text())
    tasks = job["pipelineSpec"]["root"]["dag"]["tasks"]
    job["pipelineSpec"]["root"]["dag"]["tasks"] = {k: tasks[k] for k in KEEP}
    spec_file.write_text(json.dumps(job))
    root = tmp_path / "root"

    def run():
        return spec_runner.run_spec(spec_file, "vertex", root, echo=lambda _: None)

    first, second = run(), run()
    assert first.cached == {}
    assert second.cached == {"CsvExampleGen": first.run_id, "StatisticsGen": first.run_id}
    assert second.record.artifacts["StatisticsGen"]["statistics"]["uri"].startswith(
        f"{root}/pipelines/penguin/StatisticsGen/{first.run_id}/")

    lines = csv.read_text().splitlines()
    csv.write_text("\n".join([*lines, lines[-1]]) + "\n")  # one more row: new data
    third = run()
    assert third.cached == {}
    assert sorted(third.seconds) == sorted(KEEP)
