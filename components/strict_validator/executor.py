"""Runs TFX's ExampleValidator, then raises a readable error if any split has anomalies."""

from __future__ import annotations

import os
from typing import Any

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.components.example_validator import executor as tfx_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, standard_component_specs


class DataAnomaliesError(RuntimeError):
    """The examples do not satisfy the schema; the message names features and anomalies."""


def describe_anomalies(anomalies_by_split: dict[str, Any]) -> str:
    """One paragraph naming each split, feature and anomaly (pure: takes Anomalies protos)."""
    parts = []
    for split, anomalies in sorted(anomalies_by_split.items()):
        for feature, info in sorted(anomalies.anomaly_info.items()):
            parts.append(f"[{split}] feature '{feature}': {info.short_description}: "
                         f"{info.description}")
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            parts.append(f"[{split}] dataset: {info.short_description}: {info.description}")
    return " ".join(parts)


def read_anomalies(anomalies_artifact: Any, splits: list[str]) -> dict[str, Any]:
    """Anomalies protos of the splits that have any."""
    found = {}
    for split in splits:
        path = os.path.join(
            artifact_utils.get_split_uri([anomalies_artifact], split),
            tfx_executor.DEFAULT_FILE_NAME,
        )
        anomalies = anomalies_pb2.Anomalies()
        with fileio.open(path, "rb") as f:
            anomalies.ParseFromString(f.read())
        if anomalies.anomaly_info or anomalies.HasField("dataset_anomaly_info"):
            found[split] = anomalies
    return found


class Executor(tfx_executor.Executor):
    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 - TFX API
        result = super().Do(input_dict, output_dict, exec_properties)
        anomalies_artifact = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.ANOMALIES_KEY]
        )
        splits = artifact_utils.decode_split_names(anomalies_artifact.split_names)
        found = read_anomalies(anomalies_artifact, splits)
        if found:
            raise DataAnomaliesError(
                "The examples break the data contract (schema): "
                + describe_anomalies(found)
                + f" Full report: {anomalies_artifact.uri}. Fix the data, or update the "
                "curated schema if the change is intended; nothing was trained or pushed."
            )
        return result
