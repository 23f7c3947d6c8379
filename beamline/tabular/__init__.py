"""A table and its label column to a project: read the table, profile its columns, decide the
task and how each feature is prepared, and write the modules, schema and pipeline that say so."""
