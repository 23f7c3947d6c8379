"""Helpers shared by the model module files (installed with the project, not fingerprinted)."""
