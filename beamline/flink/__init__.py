"""Apache Flink for Beamline's Beam nodes: a local cluster (`beamline flink up`), the
`--beam flink` profile's arguments, its preflight, and the Flink jobs a run submits.

Nothing here imports TensorFlow or TFX at module level; Beam only in the worker pool launcher
and the preflight's one-element job.
"""
