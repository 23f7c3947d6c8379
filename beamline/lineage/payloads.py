"""Reads what artifacts hold on disk: TFDV statistics and anomalies, schema, tuner
hyperparameters. No TensorFlow: protos only, TFRecords read directly.

Drift between two statistics is in `beamline.lineage.drift`; TFMA results in
`beamline.lineage.tfma`.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from beamline_serving.request_log.tfrecord import MAX_RECORD_BYTES, ReadOutcome, read_records

# ---------------------------------------------------------------- files


def read_tfrecords(path: str):
    """Yields the records of an uncompressed TFRecord file, checking each length and CRC with the
    request log's reader (shared, so one framing reader exists). A file whose writer was stopped
    ends early; a corrupt or hostile one (bad checksum, a length over MAX_RECORD_BYTES) raises
    ValueError, which `safe` turns into "not available" rather than a failed page."""
    outcome = ReadOutcome()
    with open(path, "rb") as handle:
        yield from read_records(handle, outcome)
    if outcome.corrupt:
        raise ValueError(
            f"{path} is not a valid TFRecord file: the record at byte {outcome.offset} has a wrong "
            f"checksum or a length over {MAX_RECORD_BYTES} bytes. Re-run the node that wrote it."
        )


def _split_dirs(uri: str) -> dict[str, str]:
    """`Split-<name>` sub-directories of an artifact, by split name."""
    out = {}
    for path in sorted(glob.glob(os.path.join(uri, "Split-*"))):
        if os.path.isdir(path):
            out[os.path.basename(path)[len("Split-") :]] = path
    return out


# ---------------------------------------------------------------- TFDV


def load_statistics(uri: str) -> dict[str, Any]:
    """split -> DatasetFeatureStatisticsList of an ExampleStatistics artifact."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    out = {}
    for split, path in _split_dirs(uri).items():
        binary = os.path.join(path, "FeatureStats.pb")
        stats = statistics_pb2.DatasetFeatureStatisticsList()
        if os.path.isfile(binary):
            with open(binary, "rb") as handle:
                stats.ParseFromString(handle.read())
        else:
            records = glob.glob(os.path.join(path, "stats_tfrecord*"))
            if not records:
                continue
            for record in read_tfrecords(records[0]):
                stats.ParseFromString(record)
                break
        out[split] = stats
    return out


def examples_counted(uri: str | None) -> int | None:
    """The examples an ExampleStatistics artifact counted, over all its splits (None: no
    statistics, or their files are gone or unreadable)."""
    if not uri:
        return None
    loaded = safe(load_statistics, uri, default={})
    counts = [stats.datasets[0].num_examples for stats in loaded.values() if stats.datasets]
    return sum(counts) if counts else None


def load_anomalies(uri: str) -> dict[str, Any]:
    """split -> Anomalies of an ExampleAnomalies artifact."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    out = {}
    for split, path in _split_dirs(uri).items():
        binary = os.path.join(path, "SchemaDiff.pb")
        if not os.path.isfile(binary):
            continue
        anomalies = anomalies_pb2.Anomalies()
        with open(binary, "rb") as handle:
            anomalies.ParseFromString(handle.read())
        out[split] = anomalies
    return out


def load_schema(uri: str):
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    path = uri if uri.endswith(".pbtxt") else os.path.join(uri, "schema.pbtxt")
    schema = schema_pb2.Schema()
    with open(path, encoding="utf-8") as handle:
        text_format.Parse(handle.read(), schema)
    return schema


@dataclass
class FeatureSummary:
    name: str
    type: str  # INT | FLOAT | STRING | BYTES | STRUCT
    count: int  # examples with the feature present
    missing: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    zeros: int | None = None
    unique: int | None = None
    top: list[tuple[str, float]] = field(default_factory=list)  # (value, frequency)
    # numeric: [(low, high, count)] standard histogram; categorical: top values
    histogram: list[tuple[float, float, float]] = field(default_factory=list)

    @property
    def numeric(self) -> bool:
        return self.type in ("INT", "FLOAT")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _feature_name(feature) -> str:
    if feature.HasField("path"):
        return ".".join(feature.path.step)
    return feature.name


def feature_summaries(stats_list) -> tuple[int, list[FeatureSummary]]:
    """(number of examples, per-feature summaries) of a DatasetFeatureStatisticsList."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    if not stats_list.datasets:
        return 0, []
    dataset = stats_list.datasets[0]
    type_name = statistics_pb2.FeatureNameStatistics.Type.Name
    out = []
    for feature in dataset.features:
        kind = feature.WhichOneof("stats")
        name = _feature_name(feature)
        if kind == "num_stats":
            num = feature.num_stats
            common = num.common_stats
            hist = next(
                (h for h in num.histograms if h.type == h.STANDARD),
                num.histograms[0] if num.histograms else None,
            )
            out.append(
                FeatureSummary(
                    name=name,
                    type=type_name(feature.type),
                    count=common.num_non_missing,
                    missing=common.num_missing,
                    mean=num.mean,
                    std=num.std_dev,
                    min=num.min,
                    max=num.max,
                    zeros=num.num_zeros,
                    histogram=[
                        (b.low_value, b.high_value, b.sample_count)
                        for b in (hist.buckets if hist else [])
                    ],
                )
            )
        elif kind == "string_stats":
            st = feature.string_stats
            common = st.common_stats
            values = [(v.value, v.frequency) for v in st.top_values]
            if not values and st.rank_histogram.buckets:
                values = [(b.label, b.sample_count) for b in st.rank_histogram.buckets]
            out.append(
                FeatureSummary(
                    name=name,
                    type=type_name(feature.type),
                    count=common.num_non_missing,
                    missing=common.num_missing,
                    unique=st.unique,
                    top=values[:20],
                )
            )
        else:
            out.append(FeatureSummary(name=name, type=type_name(feature.type), count=0, missing=0))
    return dataset.num_examples, out


def anomaly_list(anomalies) -> list[dict[str, str]]:
    """[{feature, severity, short, description}] of an Anomalies proto."""
    out = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        out.append(
            {
                "feature": feature,
                "severity": type(info).Severity.Name(info.severity),
                "short": info.short_description,
                "description": info.description,
            }
        )
    if anomalies.HasField("dataset_anomaly_info"):
        info = anomalies.dataset_anomaly_info
        out.append(
            {
                "feature": "(dataset)",
                "severity": type(info).Severity.Name(info.severity),
                "short": info.short_description,
                "description": info.description,
            }
        )
    return out


def recorded_anomalies(graph, artifact_ids) -> list[dict[str, str]]:
    """Every anomaly of these ExampleAnomalies artifacts (an unreadable one holds none), each
    {node, split, feature, severity, short, description}: `node` is the producing node's id."""
    out = []
    for aid in artifact_ids:
        found = safe(load_anomalies, graph.artifacts[aid].uri, default={})
        producer = graph.producer(aid)
        node = producer.node_id if producer else "?"
        for split, anomalies in found.items():
            out.extend({"node": node, "split": split, **item} for item in anomaly_list(anomalies))
    return out


# ---------------------------------------------------------------- others


def load_hyperparameters(uri: str) -> dict[str, Any]:
    """Values of a Tuner's best_hyperparameters.txt (KerasTuner config JSON)."""
    path = os.path.join(uri, "best_hyperparameters.txt")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
    return config.get("values", config) if isinstance(config, dict) else {}


def safe(loader, *args, default=None):
    """Calls a loader; a missing or unreadable payload gives `default` instead of a traceback."""
    try:
        return loader(*args)
    except (OSError, ValueError, KeyError, ImportError, TypeError) as exc:
        del exc
        return default
    except Exception as exc:  # protobuf DecodeError and friends
        if type(exc).__name__ in ("DecodeError", "ParseError"):
            return default
        raise
