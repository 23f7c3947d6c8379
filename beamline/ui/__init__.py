"""`beamline ui`: a read-only local web UI over the run root and the ML Metadata store."""
