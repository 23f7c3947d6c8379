"""Beamline: end-to-end TFX pipelines on Apache Beam.

Nothing heavy is imported here: `beamline --help` must start without TensorFlow, TFX or Beam.
"""

__version__ = "0.1.0"
