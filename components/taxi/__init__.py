"""Module files of the Chicago taxi pipeline, one directory each."""
