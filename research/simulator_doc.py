"""Refresh the generated trait matrix in data/SIMULATOR.md: `python -m research.simulator_doc`."""

from __future__ import annotations

from pathlib import Path

from detector.simulate.archetypes import with_trait_table

DOC = Path(__file__).resolve().parents[1] / "data" / "SIMULATOR.md"

if __name__ == "__main__":
    DOC.write_text(with_trait_table(DOC.read_text()))
    print(f"wrote the trait matrix into {DOC}")
