"""Keys shared by the component declaration and its executor."""

CUSTOM_CONFIG_NULL_VALUES = "null_values"
DEFAULT_NULL_VALUES = ("NA", "N/A", "NaN", "nan", "null", "NULL")
