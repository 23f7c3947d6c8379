"""Self-contained HTML run reports (inline CSS and SVG, no network)."""
