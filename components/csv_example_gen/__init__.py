"""CsvExampleGen that reads configured null tokens (e.g. "NA") as missing values."""
