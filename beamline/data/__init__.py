"""A pipeline's input data, before any Beam work: its files (CSV, TFRecord, Parquet), found and
checked, and its TFX spans, selected.

Pure filesystem work, no TFX. Below the runner: `beamline run`, the deploy targets (which read
spans at compile time), the loop (which waits for new spans) and schema inference all read data
the same way through here.
"""
