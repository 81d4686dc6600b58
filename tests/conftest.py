"""Shared fixtures: writing small source files, ingesting a simulated world."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest


def write_jsonl(path: Path, records: list) -> Path:
    """Write records (dicts, or raw bytes/str lines) as JSON Lines."""
    with open(path, "wb") as handle:
        for r in records:
            if isinstance(r, bytes):
                handle.write(r.rstrip(b"\n") + b"\n")
            elif isinstance(r, str):
                handle.write(r.encode() + b"\n")
            else:
                handle.write(orjson.dumps(r) + b"\n")
    return path


@pytest.fixture
def jsonl(tmp_path):
    counter = iter(range(1_000_000))

    def make(records: list, name: str | None = None) -> Path:
        return write_jsonl(tmp_path / (name or f"src-{next(counter)}.jsonl"), records)

    return make


def ingest_world(world, root: Path) -> Path:
    """Write a simulated world's requests, accounts and labels under `root` as Parquet and
    ingest the first two into `root/store`; returns the store."""
    from features import ingest

    for table in ("requests", "accounts", "labels"):
        getattr(world, table).write_parquet(root / f"{table}.parquet")
    for table in ("requests", "accounts"):
        ingest.run([root / f"{table}.parquet"], root / "store", ingest.Options(table=table))
    return root / "store"
