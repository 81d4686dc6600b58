"""Store -> per-request signals -> per-account features over a window, streaming.

Signals are computed batch by batch from each file ingest published and cached beside the store
(STORE/_derived/signals-vN/dt=.../signals-<file>-<key>.parquet), keyed by that file's name, size
and modification time. Ingest only ever adds files, so a run recomputes only what was ingested
since the last one: the new day for a nightly 7-day window, the new hour's files for an hourly
run, and late rows for an earlier day in the file that brought them. The aggregation runs in
DuckDB over the cached files.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from features import store
from features.aggregate import feature_sql
from features.schema import REQUESTS
from features.signals import SIGNALS_VERSION, request_signals, with_signup_subnet
from features.timing import stage

SIGNAL_INPUTS = [
    c
    for c in REQUESTS.names
    if c not in ("request_id", "session_id", "response", "temperature", "max_tokens")
]
BATCH_ROWS = 250_000


@dataclass(frozen=True)
class Window:
    """Days [end - days + 1, end], inclusive, in UTC; or, with `until` (an hourly run's
    window), the `days` * 24 hours before that instant."""

    end: date
    days: int
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError(f"window days must be at least 1, got {self.days}")
        if self.until is not None and self.until.tzinfo is None:
            raise ValueError("a window's `until` must be timezone-aware (UTC)")

    @classmethod
    def ending(cls, until: datetime, days: int) -> Window:
        """The `days` * 24 hours before `until`; `end` is the day of its last instant."""
        last = (until - timedelta(microseconds=1)).astimezone(UTC).date()
        return cls(last, days, until.astimezone(UTC))

    @classmethod
    def parse(cls, end: str | date, window: str | int) -> Window:
        """From `--date YYYY-MM-DD` and `--window 7d` (or a number of days)."""
        if isinstance(end, str):
            try:
                end = date.fromisoformat(end)
            except ValueError as exc:
                raise ValueError(f"date must be YYYY-MM-DD, got {end!r}") from exc
        if isinstance(window, str):
            text = window.strip().lower()
            if not text.endswith("d") or not text[:-1].isdigit():
                raise ValueError(f"window must look like 1d, 7d or 30d, got {window!r}")
            window = int(text[:-1])
        return cls(end, window)

    @property
    def dates(self) -> list[date]:
        """The day partitions the window touches."""
        first = datetime.fromtimestamp(self.start_s, UTC).date()
        return [first + timedelta(days=i) for i in range((self.end - first).days + 1)]

    @property
    def start_s(self) -> float:
        if self.until is not None:
            return self.end_s - self.days * 86400.0
        first = self.end - timedelta(days=self.days - 1)
        return datetime.combine(first, datetime.min.time(), UTC).timestamp()

    @property
    def end_s(self) -> float:
        if self.until is not None:
            return self.until.timestamp()
        return self.start_s + self.days * 86400.0


def _fingerprint(path: Path) -> str:
    st = path.stat()
    key = f"{SIGNALS_VERSION}:{path.name}:{st.st_size}:{st.st_mtime_ns}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def partition_signals(
    store_path: Path, day: date, progress: Callable[[int], None] | None = None
) -> list[Path]:
    """The signals files of one day partition, one per request file, each computed
    (streaming) unless cached and current; stale ones (of files no longer there) are removed."""
    files = sorted((store_path / "requests" / f"dt={day.isoformat()}").glob("*.parquet"))
    if not files:
        return []
    out_dir = store_path / "_derived" / f"signals-v{SIGNALS_VERSION}" / f"dt={day.isoformat()}"
    targets = [out_dir / f"signals-{f.stem}-{_fingerprint(f)}.parquet" for f in files]
    for source, target in zip(files, targets, strict=True):
        if target.exists():
            if progress:
                progress(pq.ParquetFile(source).metadata.num_rows)
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        _sweep_dead_writers(out_dir)
        _file_signals(source, target, progress)
    for stale in set(out_dir.glob("signals-*.parquet")) - set(targets):
        stale.unlink(missing_ok=True)
    return [t for t in targets if t.exists()]


def _file_signals(source: Path, target: Path, progress: Callable[[int], None] | None) -> None:
    """Write the signals of one request file to `target`, batch by batch."""
    # per process: `score --store` and `nightly` may compute the same file at once; each
    # writes its own temporary file and the last rename wins (both hold the same rows)
    tmp = target.parent / f".{target.name}.{os.getpid()}.tmp"
    handle = pq.ParquetFile(source)
    columns = [c for c in SIGNAL_INPUTS if c in handle.schema_arrow.names]
    batches = handle.iter_batches(batch_size=BATCH_ROWS, columns=columns)
    writer = None
    try:
        while True:
            with stage("signals: read requests"):
                batch = next(batches, None)
            if batch is None:
                break
            with stage("signals: compute"):
                table = request_signals(batch).to_arrow()
            with stage("signals: write cache"):
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="lz4")
                writer.write_table(table)
            if progress:
                progress(batch.num_rows)
    finally:
        if writer is not None:
            writer.close()
    if writer is not None:  # a file without rows has no signals to cache
        os.replace(tmp, target)


def _sweep_dead_writers(out_dir: Path) -> None:
    """Remove signal files left half-written by a process that no longer runs."""
    for leftover in out_dir.glob(".signals-*.tmp"):
        try:
            pid = int(leftover.suffixes[-2].lstrip("."))
        except (ValueError, IndexError):
            pid = None  # not a writer's name: an older version's leftover
        if pid is None or store.process_gone(pid):
            leftover.unlink(missing_ok=True)


def count_rows(store_path: Path, window: Window) -> int:
    """Requests stored in the window's day partitions (from Parquet footers, no scan)."""
    total = 0
    for day in window.dates:
        for f in (store_path / "requests" / f"dt={day.isoformat()}").glob("*.parquet"):
            total += pq.ParquetFile(f).metadata.num_rows
    return total


@contextmanager
def window_relations(
    store_path: Path,
    window: Window,
    progress: Callable[[int], None] | None = None,
    memory_limit: str = "4GB",
) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """A DuckDB connection with the window's relations, or None when the window holds no data.

    `signals`: the window's request signals; `accounts`: the latest accounts table with
    `signup_subnet`; `firsts`: each model's first appearance in the whole store.
    """
    files = [f for day in window.dates for f in partition_signals(store_path, day, progress)]
    if not files:
        yield None
        return
    con = store.connect(memory_limit=memory_limit)
    try:
        listing = ", ".join(f"'{f}'" for f in files)
        con.execute(
            f"CREATE VIEW signals AS SELECT * FROM read_parquet([{listing}]) "
            f"WHERE t_s >= {window.start_s} AND t_s < {window.end_s}"
        )
        con.execute(
            "CREATE TABLE firsts AS SELECT request_model, min(epoch_us(ts)) / 1e6 AS first_t "
            f"FROM read_parquet('{store.requests_glob(store_path)}', hive_partitioning=false) "
            "GROUP BY request_model"
        )
        latest = store.latest_accounts_file(store_path)
        accounts = pl.read_parquet(latest) if latest else None
        con.register("accounts_frame", with_signup_subnet(accounts).to_arrow())
        con.execute("CREATE VIEW accounts AS SELECT * FROM accounts_frame")
        yield con
    finally:
        con.close()


def compute(
    store_path: Path,
    window: Window,
    progress: Callable[[int], None] | None = None,
    memory_limit: str = "4GB",
) -> pl.DataFrame:
    """Per-account features for the window: one row per account that sent a request."""
    with window_relations(store_path, window, progress, memory_limit) as con:
        if con is None:
            return pl.DataFrame()
        return aggregate(con, window)


def aggregate(con: duckdb.DuckDBPyConnection, window: Window) -> pl.DataFrame:
    """Per-account features of the window, from the relations `window_relations` opened
    (DuckDB's plan: the signals are read where the query needs them, not materialised)."""
    sql = feature_sql("signals", "accounts", window.start_s, window.end_s, "firsts", duckdb=True)
    with stage("features: aggregate"):
        table: pa.Table = con.sql(sql).to_arrow_table()
    return pl.from_arrow(table)
