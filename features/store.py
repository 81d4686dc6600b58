"""The ingested-log store of the contract (section 3), written atomically.

    STORE/requests/dt=YYYY-MM-DD/*.parquet     canonical rows, deduplicated by request_id
    STORE/accounts/*.parquet                   latest row per account_id (newest file wins)
    STORE/quarantine/dt=YYYY-MM-DD/*.parquet   rejected rows: raw text, source file, line, reason

A run stages its rows under STORE/_staging/RUN/, then commits: each new file is written under a
temporary name and renamed into place, so a killed run leaves either whole files or none, and a
rerun deduplicates against what was committed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from features.schema import ACCOUNTS, QUARANTINE_SCHEMA, REQUESTS
from features.timing import stage

STAGING = "_staging"


class StoreLocked(RuntimeError):
    """Another run holds the store's lock."""


SOURCE, LINE = "_source", "_line"
"""Provenance columns of staged request rows (their source file and line), never published."""


@dataclass(frozen=True)
class Committed:
    """Rows a commit added, rows it found already there with the same content (duplicates),
    and rows whose id was taken by a different row (conflicting duplicates, as quarantine rows)."""

    stored: int
    duplicates: int
    conflicts: pa.Table | None = None

    @property
    def n_conflicts(self) -> int:
        return 0 if self.conflicts is None else self.conflicts.num_rows


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


PUBLISHED = ("requests", "accounts", "quarantine")
"""The folders ingest publishes into. `_derived/` is the readers' (features, nightly, score
--store): they write it without the store's lock and clear their own leftovers."""


class Staging:
    """Rows of one run, written as numbered Parquet files before the commit."""

    def __init__(self, store: Path) -> None:
        shutil.rmtree(store / STAGING, ignore_errors=True)
        for folder in PUBLISHED:  # a publish killed between write and rename
            for leftover in (store / folder).glob("**/.*.tmp"):
                leftover.unlink(missing_ok=True)
        self.run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        self.path = store / STAGING / self.run_id
        self.path.mkdir(parents=True)
        self._n = 0

    def write(self, kind: str, table: pa.Table) -> None:
        """Stage `table` as the next file of `kind` (requests, accounts or quarantine)."""
        if table.num_rows == 0:
            return
        self._n += 1
        with stage("ingest: stage"):
            pq.write_table(table, self.path / f"{kind}-{self._n:06d}.parquet", compression="lz4")

    def glob(self, kind: str) -> str | None:
        return (
            str(self.path / f"{kind}-*.parquet")
            if any(self.path.glob(f"{kind}-*.parquet"))
            else None
        )

    def discard(self) -> None:
        """Remove this run's staged files (and the staging folder, left empty)."""
        shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(OSError):  # not empty (it cannot be: the lock), or gone
            self.path.parent.rmdir()


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


CONFLICT = (
    "request_id: conflicting duplicate (a different row with this request_id was seen first "
    "and is kept)"
)


def commit_requests(con: duckdb.DuckDBPyConnection, store: Path, staging: Staging) -> Committed:
    """Move staged requests into day partitions, keeping the first-seen row of each request_id.

    A later row with the same id is a duplicate when its content is the same (a retried
    delivery: counted, dropped) and a conflicting duplicate when it differs: it is returned in
    `Committed.conflicts` (quarantine rows, with its source file and line) for the caller to
    quarantine. The first-seen row is the one already stored, else the first in reading order.

    Only ids that occur more than once (in this run, or already in the store) are classified,
    on narrow keys with a hash of the row's content; every other staged row is new, so the
    common case costs one scan of the staged ids and one copy of the staged rows.
    """
    glob = staging.glob("requests")
    if glob is None:
        return Committed(0, 0)
    names = REQUESTS.arrow_schema().names
    cols = ", ".join(f'"{c}"' for c in names)
    content = "hash(" + ", ".join(f's."{c}"' for c in names if c != "request_id") + ")"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE staged_ids AS SELECT request_id, ord FROM ({_ordered(glob)})"
    )
    existing = store / "requests"
    stored_ids = "SELECT NULL::VARCHAR AS request_id WHERE false"
    seen = "SELECT NULL::VARCHAR AS request_id, NULL::UBIGINT AS h WHERE false"
    if _files(existing, "*/*.parquet"):
        published = f"read_parquet('{existing}/*/*.parquet', hive_partitioning=false) AS s"
        stored_ids = (
            f"SELECT DISTINCT request_id FROM {published} "
            "WHERE request_id IN (SELECT request_id FROM staged_ids)"
        )
        seen = (
            f"SELECT s.request_id, min({content}) AS h FROM {published} "
            "WHERE s.request_id IN (SELECT request_id FROM repeated WHERE in_store) "
            "GROUP BY s.request_id"
        )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE repeated AS
        SELECT request_id, true AS in_store FROM ({stored_ids})
        UNION ALL BY NAME
        SELECT request_id, false AS in_store FROM staged_ids GROUP BY request_id
        HAVING count(*) > 1"""
    )
    classify = (
        f"""WITH staged AS (
            SELECT s.*, {content} AS h FROM ({_ordered(glob)}) AS s
            WHERE s.request_id IN (SELECT request_id FROM repeated)
        ), seen AS ({seen})
        SELECT staged.*, CASE
            WHEN seen.request_id IS NOT NULL THEN
                CASE WHEN staged.h = seen.h THEN 'duplicate' ELSE 'conflict' END
            WHEN row_number() OVER w = 1 THEN 'new'
            WHEN staged.h = first_value(staged.h) OVER w THEN 'duplicate'
            ELSE 'conflict' END AS fate
        FROM staged LEFT JOIN seen ON staged.request_id = seen.request_id
        WINDOW w AS (PARTITION BY staged.request_id ORDER BY staged.ord)"""
        if con.execute("SELECT count(*) FROM repeated").fetchone()[0]
        else f"SELECT *, NULL::UBIGINT AS h, 'new' AS fate FROM ({_ordered(glob)}) WHERE false"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE classified AS {classify}")
    written = staging.path / "publish-requests"
    (stored,) = con.execute(
        f"""COPY (
            SELECT {cols}, strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d') AS dt
            FROM ({_ordered(glob)})
            WHERE ord NOT IN (SELECT ord FROM classified WHERE fate <> 'new')
        ) TO '{written}' (FORMAT parquet, PARTITION_BY (dt), COMPRESSION zstd)"""
    ).fetchone()
    fates = dict(con.execute("SELECT fate, count(*) FROM classified GROUP BY fate").fetchall())
    conflicts = pl.from_arrow(
        con.sql(
            f"SELECT {cols}, {SOURCE}, {LINE}, fate FROM classified "
            "WHERE fate = 'conflict' ORDER BY ord"
        ).to_arrow_table()
    )
    _move_partitions(written, existing, staging.run_id)
    return Committed(stored, fates.get("duplicate", 0), _conflict_rows(conflicts))


def _conflict_rows(conflicts: pl.DataFrame) -> pa.Table | None:
    """Conflicting duplicates as quarantine rows (raw: the canonical row as JSON)."""
    if conflicts.is_empty():
        return None
    rows = conflicts.drop(SOURCE, LINE, "fate").to_dicts()
    return pa.Table.from_pydict(
        {
            "table": ["requests"] * conflicts.height,
            "source_file": conflicts[SOURCE].to_list(),
            "line": conflicts[LINE].to_list(),
            "reason": [CONFLICT] * conflicts.height,
            "raw": [json.dumps(r, default=str, ensure_ascii=False) for r in rows],
            "quarantined_at": [datetime.now(UTC)] * conflicts.height,
        },
        schema=QUARANTINE_SCHEMA,
    )


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


MEMORY_LIMIT_ENV = "DISTILLGUARD_MEMORY_LIMIT"
SPILL_DIR_ENV = "DISTILLGUARD_SPILL_DIR"


def spill_dir() -> Path:
    """Where DuckDB spills what does not fit its memory limit: `DISTILLGUARD_SPILL_DIR`, else a
    folder in the system's temporary directory (never the working directory)."""
    return Path(os.environ.get(SPILL_DIR_ENV) or Path(tempfile.gettempdir()) / "distillguard-spill")


def connect(memory_limit: str = "2GB", threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with bounded memory that spills to disk.

    `DISTILLGUARD_MEMORY_LIMIT` (a DuckDB size such as 6GB), when set, replaces the caller's
    limit for every connection; `DISTILLGUARD_SPILL_DIR` is where spilled data goes. The CLI
    sets both from `--memory-limit` and `--spill-dir`.
    """
    con = duckdb.connect()
    limit = os.environ.get(MEMORY_LIMIT_ENV) or memory_limit
    try:
        con.execute(f"SET memory_limit = '{limit}'")
    except duckdb.Error as exc:
        con.close()
        raise ValueError(f"memory limit {limit!r} is not a DuckDB size such as 4GB") from exc
    con.execute(f"SET temp_directory = '{spill_dir()}'")
    con.execute("SET preserve_insertion_order = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def requests_glob(store: Path) -> str:
    """The glob of committed request files, for readers (Hive partition `dt` included)."""
    return str(store / "requests" / "dt=*" / "*.parquet")


def quarantine_files(store: Path) -> list[Path]:
    """The store's quarantine files, oldest partition first."""
    return sorted((store / "quarantine").rglob("*.parquet"))


def first_quarantine_reason(store: Path) -> str:
    """'first reason: ...' of the store's quarantined rows, or 'no rows'."""
    files = quarantine_files(store)
    if not files:
        return "no rows"
    return "first reason: " + pq.read_table(files[0], columns=["reason"]).column(0)[0].as_py()


def export_quarantine(store: Path, target: Path) -> int:
    """Copy every quarantined row of the store to one Parquet file `target` (replaced; removed
    when there is none); the number of rows."""
    files = quarantine_files(store)
    target.unlink(missing_ok=True)
    if not files:
        return 0
    table = pa.concat_tables(
        [pq.read_table(f) for f in files], promote_options="permissive"
    ).select(QUARANTINE_SCHEMA.names)
    tmp = target.with_name(f".{target.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, target)
    return table.num_rows


OWNER = ".owner-pid"


@contextmanager
def private_store(prefix: str):
    """A temporary store folder for one command (`score`, `train`), removed on every exit path
    Python sees; folders left by a process that was killed outright (its pid in `.owner-pid` no
    longer alive) are swept the next time any command opens one."""
    root = Path(tempfile.gettempdir())
    for old in root.glob(f"{prefix}*"):
        _sweep(old)
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        (Path(tmp) / OWNER).write_text(str(os.getpid()))
        yield Path(tmp) / "store"


def _sweep(folder: Path) -> None:
    try:
        pid = int((folder / OWNER).read_text())
    except (OSError, ValueError):
        return  # not ours to judge (no owner file): leave it
    if process_gone(pid):
        shutil.rmtree(folder, ignore_errors=True)


def process_gone(pid: int) -> bool:
    """Whether no process `pid` runs any more (one of another user's counts as running), so
    what it left half-written can be removed."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    return False
