"""Model versions: what is on disk, who pushed it, which labels it holds, and changing them.

Reads lineage (beamline.lineage) and the label history (beamline.metadata.labels); the commands
`models`, `promote`, `rollback`, `labels` and `gc` are thin wrappers around it.
"""
