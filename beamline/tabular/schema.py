"""The curated schema of a table: what TFDV infers, made one Beamline's pipelines can enforce.

Rules, in the order applied (the generated schema file's header repeats them):
- types as Beamline's ExampleGens produce them: a column of whole numbers is INT;
- every feature has one value when present;
- the label is required (presence 1.0), its string values are its domain, and it is absent in
  SERVING (clients never send it);
- a feature present in every row of the data is required (TFDV's inference); one with gaps may
  be missing;
- TRAINING and SERVING are the default environments.
"""

from __future__ import annotations

SERVING, TRAINING = "SERVING", "TRAINING"

RULES = (
    "# Rules Beamline applied to TFDV's inference (edit freely; ExampleValidator enforces this):\n"
    "# - a column of whole numbers is INT; every feature has one value when present;\n"
    "# - `{label}` is the label: required in TRAINING, absent in SERVING, its values its domain;\n"
    "# - a column with no missing cell in the data is required (presence 1.0), others may be "
    "missing;\n"
    "# - string columns with few distinct values have their values as a domain: a new value is an"
    " anomaly.\n"
)


def curated_schema(frame, label: str):
    """A schema_pb2.Schema for `frame` (as `read_frame` types it) with `label` as the label."""
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2

    stats = tfdv.generate_statistics_from_dataframe(frame)
    schema = tfdv.infer_schema(stats, infer_feature_shape=False)
    for feature in schema.feature:
        column = frame[feature.name]
        if column.dtype.name == "Int64" or column.dtype.kind in "iu":
            feature.type = schema_pb2.INT
            feature.ClearField("float_domain")
        feature.value_count.min = feature.value_count.max = 1
        if feature.name == label:
            feature.presence.min_fraction = 1.0
            feature.presence.min_count = 1
            feature.not_in_environment.append(SERVING)
            if feature.type == schema_pb2.BYTES and not feature.HasField("domain"):
                domain = schema.string_domain.add(name=feature.name)
                domain.value.extend(sorted(str(v) for v in column.dropna().unique()))
                feature.domain = feature.name
    schema.default_environment.extend([TRAINING, SERVING])
    return schema


def schema_text(schema) -> str:
    from google.protobuf import text_format

    return text_format.MessageToString(schema)
