"""Resolver strategies used by Beamline pipelines."""
