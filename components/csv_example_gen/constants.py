"""Keys shared by the component declaration and its executor."""

from beamline.settings import CSV_NULL_VALUES

CUSTOM_CONFIG_NULL_VALUES = "null_values"
DEFAULT_NULL_VALUES = CSV_NULL_VALUES
# A --span-range: the earlier spans' file patterns (relative to input_base), read together with
# the span TFX's driver resolved; their files' names, sizes and times (so caching sees them);
# and the range's label, recorded on the Examples artifact as custom property SPAN_RANGE.
CUSTOM_CONFIG_EXTRA_PATTERNS = "extra_span_patterns"
CUSTOM_CONFIG_EXTRA_FINGERPRINT = "extra_span_fingerprint"
CUSTOM_CONFIG_SPAN_RANGE = "span_range"
SPAN_RANGE_PROPERTY = "span_range"
# Columns a row must have a value in (the label): a row without one is left out and counted.
CUSTOM_CONFIG_REQUIRED_COLUMNS = "required_columns"
# Set by the executor for its own PTransform only: where the count of left-out rows is written.
DROPPED_ROWS_FILE_KEY = "_beamline_dropped_rows_file"
