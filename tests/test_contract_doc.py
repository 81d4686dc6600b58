"""docs/CONTRACT.md and the code agree: the schema lives in `features/schema.py` once, and the
repository's copy of the contract lists the same columns with the same required flags."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from features.schema import TABLES

ROOT = Path(__file__).parent.parent
SHARED = ROOT.parent / "shared" / "contract" / "README.md"


def _tables(text: str) -> dict[str, dict[str, bool]]:
    out: dict[str, dict[str, bool]] = {}
    current = None
    for line in text.splitlines():
        heading = re.match(r"### (\w+):", line)
        if heading:
            current = out.setdefault(heading.group(1), {})
            continue
        row = re.match(r"\| (\w+) \| [^|]+ \| (yes|no) \|", line)
        if current is not None and row:
            current[row.group(1)] = row.group(2) == "yes"
        elif line.startswith("## "):
            current = None
    return out


def test_contract_tables_match_the_schema():
    documented = _tables((ROOT / "docs" / "CONTRACT.md").read_text())
    for name, table in TABLES.items():
        assert documented[name] == {c.name: c.required for c in table.columns}, name


@pytest.mark.skipif(not SHARED.is_file(), reason="no ../shared beside this checkout")
def test_repository_copy_keeps_every_line_of_the_shared_contract():
    ours = (ROOT / "docs" / "CONTRACT.md").read_text().splitlines()
    body = SHARED.read_text().splitlines()[1:]  # its title differs
    missing = [line for line in body if line.strip() and line not in ours]
    assert not missing, missing
