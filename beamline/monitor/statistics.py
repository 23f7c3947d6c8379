"""A window's statistics and TFDV's checks of them, without importing TensorFlow or Beam.

`tensorflow_data_validation`'s package imports TensorFlow and Beam (about 4 s of a loop step
that decides not to retrain, more than everything else the step does). What the monitoring needs
from it is small: the statistics of a few hundred request rows, and its validation, which is C++
behind a pybind11 extension that links nothing of TensorFlow. So:

- `generate_statistics(rows)` builds the DatasetFeatureStatisticsList TFDV's default generators
  (BasicStatsGenerator, TopKUniquesStatsGenerator) build from the same rows written as
  tf.Examples, with no schema: the same quantiles sketch (tfx_bsl's, which imports no
  TensorFlow) and TFDV's own histogram code (`utils/quantiles_util.py`, loaded from its file);
- `validate_statistics(...)` calls TFDV's own C++ validation (`ValidateFeatureStatistics`) as
  `tfdv.validate_statistics` does, so skew, drift and schema anomalies are TFDV's by
  construction.

Both reach into TFDV's installed files without running its package `__init__`;
`tests/beamline/monitor/test_statistics.py` checks the results against TFDV itself, on real
rows. The quantiles sketch is exact up to tens of thousands of values; past that both are
approximations within the sketch's 1% rank error (TFDV batches its input differently).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import math
import os
import sys
from functools import cache
from typing import Any

from beamline.errors import DataError

# TFDV's StatsOptions defaults (statistics/stats_options.py, generators/basic_stats_generator.py).
NUM_TOP_VALUES = 20
NUM_RANK_HISTOGRAM_BUCKETS = 1000
NUM_VALUES_HISTOGRAM_BUCKETS = 10
NUM_HISTOGRAM_BUCKETS = 10
NUM_QUANTILES_HISTOGRAM_BUCKETS = 10
QUANTILES_FACTOR_FOR_STD_HISTOGRAM = 100
EPSILON = 0.01
# TFDV's constants.py.
DEFAULT_SLICE_KEY = "All Examples"
NON_UTF8_PLACEHOLDER = "__BYTES_VALUE__"

_TFDV = "tensorflow_data_validation"
_EXTENSION = f"{_TFDV}.pywrap.tensorflow_data_validation_extension"

Row = dict[str, list]


def _tfdv_file(*parts: str) -> str:
    """A file of the installed TFDV, located from its package spec (which imports nothing)."""
    spec = importlib.util.find_spec(_TFDV)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{_TFDV} is not installed (the monitoring's statistics need it)")
    return os.path.join(spec.submodule_search_locations[0], *parts)


@cache
def _quantiles_util():
    """TFDV's utils/quantiles_util.py (numpy and tensorflow_metadata only), under a private
    name: its histograms are TFDV's, not a copy of them."""
    name = "beamline.monitor._tfdv_quantiles_util"
    spec = importlib.util.spec_from_file_location(name, _tfdv_file("utils", "quantiles_util.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def _validation():
    """TFDV's C++ validation. Loaded under its own name and left in sys.modules, so a later
    `import tensorflow_data_validation` in this process finds it there instead of initialising
    the extension a second time."""
    module = sys.modules.get(_EXTENSION)
    if module is None:
        path = _tfdv_file("pywrap", "tensorflow_data_validation_extension.so")
        loader = importlib.machinery.ExtensionFileLoader(_EXTENSION, path)
        spec = importlib.util.spec_from_file_location(_EXTENSION, path, loader=loader)
        module = importlib.util.module_from_spec(spec)
        sys.modules[_EXTENSION] = module
        loader.exec_module(module)
    return module.validation


# ------------------------------------------------------------------------------ statistics


def _sketch():
    from tfx_bsl import sketches

    return sketches.QuantilesSketch(eps=EPSILON, max_num_elements=1 << 32, num_streams=1)


def _arrow(values):
    """A numpy array as an arrow array for the sketch. From its buffer: `pa.array` imports
    pandas on its first call (seconds of a step's start-up under load)."""
    import numpy as np
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(
        pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)]
    )


def _doubles(lists):
    """The doubles of the sketch's one-stream answer (a fixed-size list array), read from its
    buffer (`flatten`/`to_numpy` import pandas)."""
    import numpy as np

    values = lists.values
    return np.frombuffer(
        values.buffers()[1], dtype=np.float64, count=len(values), offset=values.offset * 8
    )


def _quantiles_counts(sketch, num_buckets: int):
    """(quantiles, cumulative weights), as TFDV's basic_stats_generator._get_quantiles_counts."""
    quantiles, counts = sketch.GetQuantilesAndCumulativeWeights(num_buckets)
    return _doubles(quantiles), _doubles(counts)


def _kind(values: list) -> str | None:
    """The tf.Example list a row's values go to (beamline.monitor.window.write_examples)."""
    if not values:
        return None
    if isinstance(values[0], bytes):
        return "bytes"
    return "float" if isinstance(values[0], float) else "int"


def _common_stats(proto, counts: list[int], num_examples: int) -> None:
    import numpy as np

    proto.num_non_missing = len(counts)
    proto.num_missing = num_examples - len(counts)
    if not counts:
        return
    proto.min_num_values = min(counts)
    proto.max_num_values = max(counts)
    proto.tot_num_values = sum(counts)
    proto.avg_num_values = proto.tot_num_values / proto.num_non_missing
    sketch = _sketch()
    lengths, repeats = np.unique(np.asarray(counts, dtype=np.int64), return_counts=True)
    sketch.AddValues(_arrow(lengths), _arrow(repeats.astype(np.int64)))
    histogram = _quantiles_util().generate_quantiles_histogram(
        *_quantiles_counts(sketch, NUM_VALUES_HISTOGRAM_BUCKETS)
    )
    proto.num_values_histogram.CopyFrom(histogram)


def _numeric_stats(proto, values) -> None:
    """NumericStatistics as TFDV's _PartialNumericStats and _make_numeric_stats_proto make it."""
    import numpy as np
    from tensorflow_metadata.proto.v0 import statistics_pb2

    histogram_type = statistics_pb2.Histogram
    nan = np.isnan(values) if values.dtype.kind == "f" else np.zeros(values.shape, bool)
    num_nan = int(nan.sum())
    finite_values = values[~nan]
    if finite_values.size == 0:
        if num_nan:
            proto.histograms.add(type=histogram_type.STANDARD).num_nan = num_nan
            proto.histograms.add(type=histogram_type.QUANTILES).num_nan = num_nan
        return
    as_double = finite_values.astype(np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf: a NaN mean, as TFDV's
        proto.mean = float(np.mean(as_double))
        proto.std_dev = math.sqrt(max(0.0, float(np.var(as_double))))
    proto.num_zeros = int(finite_values.size - np.count_nonzero(finite_values))
    low, high = np.min(finite_values), np.max(finite_values)
    proto.min, proto.max = float(low), float(high)
    bounded = finite_values[np.isfinite(finite_values)]
    finite_min = np.min(bounded) if bounded.size else float("inf")
    finite_max = np.max(bounded) if bounded.size else float("-inf")
    sketch = _sketch()
    sketch.AddValues(_arrow(finite_values))
    util = _quantiles_util()
    quantiles, counts = _quantiles_counts(
        sketch, QUANTILES_FACTOR_FOR_STD_HISTOGRAM * NUM_QUANTILES_HISTOGRAM_BUCKETS
    )
    proto.median = float(util.find_median(quantiles))
    standard = util.generate_equi_width_histogram(
        quantiles=quantiles,
        cumulative_counts=counts,
        finite_min=finite_min,
        finite_max=finite_max,
        num_buckets=NUM_HISTOGRAM_BUCKETS,
        num_pos_inf=float(np.isposinf(finite_values).sum()),
    )
    standard.num_nan = num_nan
    proto.histograms.add().CopyFrom(standard)
    by_quantiles = util.generate_quantiles_histogram(
        *util.rebin_quantiles(quantiles, counts, QUANTILES_FACTOR_FOR_STD_HISTOGRAM)
    )
    by_quantiles.num_nan = num_nan
    proto.histograms.add().CopyFrom(by_quantiles)


def _label(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return NON_UTF8_PLACEHOLDER


def _string_stats(proto, values: list[bytes]) -> None:
    """StringStatistics as BasicStatsGenerator and TopKUniquesStatsGenerator make them: top
    values and rank histogram ordered by (count, value) descending, values compared as bytes."""
    if values:
        proto.avg_length = sum(len(v) for v in values) / len(values)
    proto.invalid_utf8_count = sum(1 for v in values if _label(v) == NON_UTF8_PLACEHOLDER)
    counts: dict[bytes, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    proto.unique = len(counts)
    ranked = sorted(((n, v) for v, n in counts.items()), reverse=True)
    for rank, (count, value) in enumerate(ranked[:NUM_RANK_HISTOGRAM_BUCKETS]):
        label = _label(value)
        if rank < NUM_TOP_VALUES:
            proto.top_values.add(value=label, frequency=count)
        if rank < NUM_RANK_HISTOGRAM_BUCKETS:
            proto.rank_histogram.buckets.add(
                low_rank=rank, high_rank=rank, sample_count=count, label=label
            )


def generate_statistics(rows: list[Row]):
    """The DatasetFeatureStatisticsList `tfdv.generate_statistics_from_tfrecord` (default
    options, no schema) gives for `rows` written by `write_examples`. An input with values of
    two types is a DataError (TFDV fails on it too); one with no values in some rows and float
    or bytes values in others takes its values' type, where TFDV fails (`write_examples` writes
    the empty rows as int64 lists)."""
    import numpy as np
    from tensorflow_metadata.proto.v0 import statistics_pb2

    kind_of: dict[str, str | None] = {}
    for row in rows:
        for name, values in row.items():
            kind = _kind(values)
            known = kind_of.setdefault(name, kind)
            if known is None:
                kind_of[name] = kind
            elif kind is not None and kind != known:
                raise DataError(
                    f"Logged input {name!r} carries {known} values in some request rows and "
                    f"{kind} values in others: a window's statistics need one type per input. "
                    "Narrow --since/--until to traffic of one client version, or fix the client."
                )
    result = statistics_pb2.DatasetFeatureStatisticsList()
    dataset = result.datasets.add(num_examples=len(rows))
    feature_type = statistics_pb2.FeatureNameStatistics
    for name, kind in kind_of.items():
        present = [row[name] for row in rows if name in row]
        flat = [v for values in present for v in values]
        feature = dataset.features.add()
        feature.path.step.append(name)
        if kind == "bytes":
            feature.type = feature_type.STRING
            _common_stats(feature.string_stats.common_stats, [len(v) for v in present],
                          len(rows))
            _string_stats(feature.string_stats, flat)
            continue
        # An input that never carries a value is written as an empty int64_list: INT.
        feature.type = feature_type.FLOAT if kind == "float" else feature_type.INT
        _common_stats(feature.num_stats.common_stats, [len(v) for v in present], len(rows))
        dtype = np.float32 if kind == "float" else np.int64
        _numeric_stats(feature.num_stats, np.asarray(flat, dtype=dtype))
    return result


# ------------------------------------------------------------------------------ validation


def _default_dataset(statistics):
    if len(statistics.datasets) == 1:
        return statistics.datasets[0]
    for dataset in statistics.datasets:
        if dataset.name == DEFAULT_SLICE_KEY:
            return dataset
    raise DataError(
        f"The statistics hold {len(statistics.datasets)} slices, none of them the default "
        f"slice ({DEFAULT_SLICE_KEY!r}): they were not written by a StatisticsGen or by "
        "`beamline monitor`."
    )


def validate_statistics(
    statistics,
    schema,
    environment: str | None = None,
    previous_statistics=None,
    serving_statistics=None,
):
    """`tfdv.validate_statistics` with the same arguments (statistics as
    DatasetFeatureStatisticsList), through the same C++ call; returns its Anomalies."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    if environment is not None and environment not in schema.default_environment:
        raise ValueError(f"Environment {environment} not found in the schema.")

    def serialized(stats: Any) -> bytes:
        return b"" if stats is None else _default_dataset(stats).SerializeToString()

    # Empty FeaturesNeededProto and ValidationConfig serialize to b"".
    found = _validation().ValidateFeatureStatistics(
        _default_dataset(statistics).SerializeToString(),
        schema.SerializeToString(),
        (environment or "").encode(),
        serialized(previous_statistics),
        serialized(serving_statistics),
        b"",
        b"",
        b"",
        False,
    )
    result = anomalies_pb2.Anomalies()
    result.ParseFromString(found)
    return result


def load_statistics(path: str):
    """A FeatureStats.pb file (`tfdv.load_stats_binary`)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    result = statistics_pb2.DatasetFeatureStatisticsList()
    with open(path, "rb") as f:
        result.ParseFromString(f.read())
    return result


def load_schema_text(path: str):
    """A schema.pbtxt file (`tfdv.load_schema_text`)."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    with open(path) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())
