"""The ingested-log store of the contract (section 3), written atomically.

    STORE/requests/dt=YYYY-MM-DD/*.parquet     canonical rows, deduplicated by request_id
    STORE/accounts/*.parquet                   latest row per account_id (newest file wins)
    STORE/quarantine/dt=YYYY-MM-DD/*.parquet   rejected rows: raw text, source file, line, reason

A run stages its rows under STORE/_staging/RUN/, then commits: each new file is written under a
temporary name and renamed into place, so a killed run leaves either whole files or none, and a
rerun deduplicates against what was committed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from features.schema import ACCOUNTS, QUARANTINE_SCHEMA, REQUESTS

STAGING = "_staging"


class StoreLocked(RuntimeError):
    """Another run holds the store's lock."""


@dataclass(frozen=True)
class Committed:
    """Rows a commit added, and rows it found already there (duplicates)."""

    stored: int
    duplicates: int


@contextmanager
def locked(store: Path):
    """Hold the store's exclusive lock for the duration of a run."""
    store.mkdir(parents=True, exist_ok=True)
    with open(store / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise StoreLocked(f"{store}: another ingest is running (lock held)") from exc
        yield


class Staging:
    """Rows of one run, written as numbered Parquet files before the commit."""

    def __init__(self, store: Path) -> None:
        shutil.rmtree(store / STAGING, ignore_errors=True)
        self.run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        self.path = store / STAGING / self.run_id
        self.path.mkdir(parents=True)
        self._n = 0

    def write(self, kind: str, table: pa.Table) -> None:
        """Stage `table` as the next file of `kind` (requests, accounts or quarantine)."""
        if table.num_rows == 0:
            return
        self._n += 1
        pq.write_table(table, self.path / f"{kind}-{self._n:06d}.parquet", compression="lz4")

    def glob(self, kind: str) -> str | None:
        return (
            str(self.path / f"{kind}-*.parquet")
            if any(self.path.glob(f"{kind}-*.parquet"))
            else None
        )

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _files(pattern_dir: Path, pattern: str) -> bool:
    return pattern_dir.exists() and any(pattern_dir.glob(pattern))


def _publish(con: duckdb.DuckDBPyConnection, query: str, target: Path, params: list) -> None:
    """Write a query's rows to `target` through a temporary name and an atomic rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    con.execute(f"COPY ({query}) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)", params)
    os.replace(tmp, target)


def _ordered(glob: str) -> str:
    """Staged rows with `ord`, their reading order (staged file number, then row), no sort."""
    return (
        "SELECT *, CAST(regexp_extract(filename, '(\\d+)\\.parquet$', 1) AS BIGINT) * 4294967296"
        " + file_row_number AS ord"
        f" FROM read_parquet('{glob}', filename=true, file_row_number=true)"
    )


def _move_partitions(written: Path, target: Path, run_id: str) -> None:
    """Rename each partition file DuckDB wrote into the store (atomic, same file system)."""
    for i, path in enumerate(sorted(written.glob("dt=*/*.parquet"))):
        final = target / path.parent.name / f"part-{run_id}-{i:04d}.parquet"
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, final)


def commit_requests(con: duckdb.DuckDBPyConnection, store: Path, staging: Staging) -> Committed:
    """Move staged requests into day partitions, keeping the first copy of each request_id."""
    glob = staging.glob("requests")
    if glob is None:
        return Committed(0, 0)
    cols = ", ".join(f'"{c}"' for c in REQUESTS.arrow_schema().names)
    existing = store / "requests"
    anti = ""
    if _files(existing, "*/*.parquet"):
        anti = (
            f"ANTI JOIN (SELECT request_id FROM read_parquet('{existing}/*/*.parquet', "
            "hive_partitioning=false)) AS seen USING (request_id)"
        )
    written = staging.path / "publish-requests"
    (stored,) = con.execute(
        f"""COPY (
            SELECT {cols}, strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d') AS dt
            FROM ({_ordered(glob)}) AS staged {anti}
            QUALIFY row_number() OVER (PARTITION BY request_id ORDER BY ord) = 1
        ) TO '{written}' (FORMAT parquet, PARTITION_BY (dt), COMPRESSION zstd)"""
    ).fetchone()
    total = con.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()[0]
    _move_partitions(written, existing, staging.run_id)
    return Committed(stored, total - stored)


def latest_accounts_file(store: Path) -> Path | None:
    files = sorted((store / "accounts").glob("accounts-*.parquet"))
    return files[-1] if files else None


def commit_accounts(con: duckdb.DuckDBPyConnection, store: Path, staging: Staging) -> Committed:
    """Rewrite the accounts table as the latest row per account_id (later input wins)."""
    glob = staging.glob("accounts")
    if glob is None:
        return Committed(0, 0)
    cols = ", ".join(f'"{c}"' for c in ACCOUNTS.arrow_schema().names)
    current = latest_accounts_file(store)
    old = (
        f"SELECT {cols}, 0 AS ord FROM read_parquet('{current}')"
        if current
        else f"SELECT {cols}, 0 AS ord FROM ({_ordered(glob)}) WHERE false"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE staged_accounts AS
        SELECT {cols}, ord FROM ({_ordered(glob)})
        QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY ord DESC) = 1"""
    )
    total = con.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()[0]
    unchanged = con.execute(
        f"SELECT count(*) FROM (SELECT {cols} FROM staged_accounts"
        f" INTERSECT SELECT {cols} FROM ({old}))"
    ).fetchone()[0]
    if unchanged == total:
        return Committed(0, total)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    _publish(
        con,
        f"""SELECT {cols} FROM (SELECT * FROM staged_accounts UNION ALL BY NAME ({old}))
        QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY ord DESC) = 1
        ORDER BY account_id""",
        store / "accounts" / f"accounts-{stamp}.parquet",
        [],
    )
    for stale in sorted((store / "accounts").glob("accounts-*.parquet"))[:-1]:
        stale.unlink()
    return Committed(total - unchanged, unchanged)


def commit_quarantine(con: duckdb.DuckDBPyConnection, store: Path, staging: Staging) -> int:
    """Add staged rejects not already quarantined (same file, line and reason); return count."""
    glob = staging.glob("quarantine")
    if glob is None:
        return 0
    existing = store / "quarantine"
    key = "source_file, line, reason"
    seen = (
        f"SELECT {key} FROM read_parquet('{existing}/*/*.parquet', hive_partitioning=false)"
        if _files(existing, "*/*.parquet")
        else None
    )
    cols = ", ".join(f'"{c}"' for c in QUARANTINE_SCHEMA.names)
    query = f"SELECT {cols} FROM ({_ordered(glob)})"
    if seen:
        query += f" WHERE ({key}) NOT IN ({seen})"
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    n = con.execute(f"SELECT count(*) FROM ({query})").fetchone()[0]
    if n:
        _publish(
            con,
            query + " ORDER BY source_file, line",
            existing / f"dt={day}" / f"part-{staging.run_id}.parquet",
            [],
        )
    return con.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()[0]


def connect(memory_limit: str = "2GB", threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with bounded memory that spills to disk."""
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def requests_glob(store: Path) -> str:
    """The glob of committed request files, for readers (Hive partition `dt` included)."""
    return str(store / "requests" / "dt=*" / "*.parquet")
