"""Module files of the penguin pipeline, one directory each (TFX fingerprints the directory)."""
