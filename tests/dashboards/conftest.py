"""A small synthetic warehouse (with a hostile sample prompt) and a page driver for AppTest."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from tests.dashboards import sample

NIGHT = "2026-02-15"
HOSTILE = (
    '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> '
    "[click me](https://evil.example/phish) **bold** # heading\n" + "A" * 1_000_000
)


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    path = sample.build(tmp_path_factory.mktemp("wh") / "warehouse.duckdb", 400, 8, 3)
    con = duckdb.connect(str(path))
    con.execute(
        "INSERT INTO samples VALUES (?, 'cmp_000000', 'acct_0000000', 'req_hostile', "
        "TIMESTAMPTZ '2026-02-15 12:00:00+00', 'atlas-4.5', ?, ?, 'fine')",
        [NIGHT, HOSTILE, len(HOSTILE)],
    )
    con.close()
    return path


@pytest.fixture
def warehouse_file(built, tmp_path, monkeypatch) -> Path:
    """A fresh copy per test (decisions write to it), named in the app's environment."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(built, path)
    monkeypatch.setenv("DISTILLGUARD_WAREHOUSE", str(path))
    monkeypatch.setenv("DISTILLGUARD_USER", "alice@example.com")
    for name in ("DISTILLGUARD_ROLES", "DISTILLGUARD_ROLE", "DISTILLGUARD_TRUSTED_HEADER"):
        monkeypatch.delenv(name, raising=False)
    return path
