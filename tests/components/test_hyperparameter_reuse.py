"""The penguin pipeline with an earlier search's hyperparameters: an Importer, no Tuner."""

from __future__ import annotations

import dataclasses

from beamline import registry
from beamline.runner.tuned import module_sha_of
from beamline.settings import PipelineSettings


def test_reused_hyperparameters_are_imported_instead_of_searched(tmp_path):
    from beamline_components.tabular_pipeline import HYPERPARAMETERS_IMPORTER
    from beamline_pipelines import penguin

    settings = PipelineSettings(
        pipeline_name="penguin",
        pipeline_root=str(tmp_path / "root"),
        data_root=str(tmp_path / "data"),
        serving_dir=str(tmp_path / "serving"),
        schema_path=str(registry.get("penguin").schema_path),
    )
    searching = penguin.create_pipeline(settings)
    ids = [c.id for c in searching.components]
    assert "Tuner" in ids and HYPERPARAMETERS_IMPORTER not in ids
    assert len(module_sha_of(searching)) == 64

    best = tmp_path / "best_hyperparameters"
    reusing = penguin.create_pipeline(
        dataclasses.replace(settings, hyperparameters_uri=str(best))
    )
    nodes = {c.id: c for c in reusing.components}
    assert "Tuner" not in nodes and module_sha_of(reusing) is None
    importer = nodes[HYPERPARAMETERS_IMPORTER]
    assert importer.exec_properties["artifact_uri"] == str(best)
    trainer_input = nodes["Trainer"].inputs["hyperparameters"]
    assert trainer_input.producer_component_id == HYPERPARAMETERS_IMPORTER
