"""The one real `beamline run --spec --as kubeflow`: penguin compiled for Kubeflow (gs:// roots,
image paths) runs here task by task through TFX's Kubeflow V2 entrypoint, and pushes a blessed
model to the local serving directory that classifies the held-out split it was evaluated on."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from beamline.cli import main

pytestmark = pytest.mark.slow


def _only(pattern_root, pattern):
    found = sorted(pattern_root.glob(pattern))
    assert len(found) == 1, (pattern, found)
    return found[0]


def test_a_kubeflow_spec_run_here_pushes_a_blessed_model_that_classifies(tmp_path, capsys):
    spec = tmp_path / "penguin.json"
    main(["compile", "penguin", "--target", "kubeflow", "--image", "registry.example/b:1",
          "--pipeline-root", "gs://bucket/root", "--no-tune", "--out", str(spec)])
    root = tmp_path / "root"
    main(["run", "--spec", str(spec), "--as", "kubeflow", "--root", str(root)])
    out = capsys.readouterr().out
    assert "Ran penguin from its kubeflow spec" in out and "Pusher" in out

    pipeline = root / "pipelines" / "penguin"
    blessing = json.loads(_only(pipeline, "Evaluator/*/output_metadata.json").read_text())
    assert blessing["artifacts"]["blessing"]["artifacts"][0]["metadata"]["blessed"] == 1
    # Before the first push the serving directory is empty: the baseline holds no model.
    assert not any(_only(pipeline, "baseline_from_serving/*/model").iterdir())
    version = _only(root / "serving" / "penguin", "*")
    assert version.name.isdigit() and (version / "saved_model.pb").is_file()

    examples = [
        tf.train.Example.FromString(record.numpy())
        for path in pipeline.glob("CsvExampleGen/*/examples/Split-eval/*.gz")
        for record in tf.data.TFRecordDataset(str(path), compression_type="GZIP")
    ]
    assert len(examples) > 80
    labels = np.array([e.features.feature["species"].bytes_list.value[0].decode()
                       for e in examples])
    model = tf.saved_model.load(str(version))
    result = model.signatures["classification"](
        inputs=tf.constant([e.SerializeToString() for e in examples])
    )
    classes = result["classes"].numpy().astype(str)
    predicted = classes[np.arange(len(examples)), result["scores"].numpy().argmax(axis=1)]
    assert float(np.mean(predicted == labels)) >= 0.9
