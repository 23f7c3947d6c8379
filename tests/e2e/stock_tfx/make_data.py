"""The stock pipeline's data: the shipped penguins table as TFX's penguin tutorial has it
(rows with a missing measurement dropped, species as 0/1/2, measurements scaled to [0, 1])."""

from __future__ import annotations

import csv
from pathlib import Path

from beamline.registry import package_path

FEATURES = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
SPECIES = ("Adelie", "Chinstrap", "Gentoo")


def write_processed_penguins(out: Path) -> int:
    """Writes the CSV to `out`; returns its number of data rows."""
    with package_path("palmerpenguins", "data", "penguins.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if all(r[k] not in ("", "NA") for k in FEATURES)]
    low = {k: min(float(r[k]) for r in rows) for k in FEATURES}
    high = {k: max(float(r[k]) for r in rows) for k in FEATURES}
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("species", *FEATURES))
        for r in rows:
            scaled = [(float(r[k]) - low[k]) / (high[k] - low[k]) for k in FEATURES]
            writer.writerow((SPECIES.index(r["species"]), *(f"{v:.6f}" for v in scaled)))
    return len(rows)
