"""Readable lineage over ML Metadata: runs, lineage, diff and why (pure functions over a Graph)."""
