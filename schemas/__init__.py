"""The example pipelines' schemas (<name>/schema.pbtxt), installed as beamline_pipelines.schemas."""
