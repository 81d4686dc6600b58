"""Ingestion: source files in providers' formats -> validated canonical rows -> the store.

Counts always reconcile: rows read = rows stored + duplicates + rows quarantined.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from features import adapters, failpoints, sources, store
from features.adapters import BATCH_FORMATS, Context, Kind, RowError
from features.adapters.common import WARNINGS
from features.schema import EXTRA, QUARANTINE_SCHEMA, TABLES
from features.timing import stage
from features.validate import Limits, check

Progress = Callable[[int], None]


@dataclass
class Counts:
    """Rows read, stored, duplicated and quarantined for one table, and the warnings about rows
    that were stored with a value adjusted (an unknown enum value, say), by message.

    `duplicates` are repeats of a stored request_id with the same content (retried deliveries);
    a repeat with different content is a conflicting duplicate: quarantined with its reason,
    the first-seen row kept, and counted in `conflicting` as well as in `quarantined`."""

    read: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    conflicting: int = 0  # of the quarantined: a request_id already taken by a different row
    warnings: Counter = field(default_factory=Counter)

    @property
    def reconciles(self) -> bool:
        return self.read == self.stored + self.duplicates + self.quarantined


@dataclass
class Report:
    """What an ingest run did, per table and per file."""

    run_id: str
    counts: dict[str, Counts] = field(
        default_factory=lambda: {"requests": Counts(), "accounts": Counts()}
    )
    files: dict[str, Kind] = field(default_factory=dict)


@dataclass(frozen=True)
class Options:
    """How to read the sources: a forced format or table, CLI-supplied context, row limits."""

    fmt: str = "auto"
    table: str | None = None
    ctx: Context = Context()
    limits: Limits = Limits()
    parse: sources.ParseLimits = sources.ParseLimits()
    chunk_lines: int = 20_000

    def __post_init__(self) -> None:
        if self.fmt != "auto" and self.fmt not in adapters.FORMATS:
            raise ValueError(f"format must be auto or one of {adapters.FORMATS}, got {self.fmt!r}")
        if self.table not in (None, "requests", "accounts"):
            raise ValueError(f"table must be requests or accounts, got {self.table!r}")


def _quarantine(table: str, source: str, items: Iterable[tuple[int, str, str]]) -> pa.Table:
    rows = list(items)
    now = datetime.now(UTC)
    return pa.Table.from_pydict(
        {
            "table": [table] * len(rows),
            "source_file": [source] * len(rows),
            "line": [r[0] for r in rows],
            "reason": [r[1] for r in rows],
            "raw": [r[2] for r in rows],
            "quarantined_at": [now] * len(rows),
        },
        schema=QUARANTINE_SCHEMA,
    )


def _extra_json(values: list) -> list[str | None]:
    return [None if v is None else sources.to_json(v) for v in values]


@dataclass(frozen=True)
class Converted:
    """One chunk after conversion: the good rows, the rejects as (line, reason, raw), the rows
    read and the warnings about good rows (message -> count)."""

    good: pa.Table
    rejects: list[tuple[int, str, str]]
    n_read: int
    warnings: Counter
    lines: np.ndarray  # line (or row) number of each good row, for provenance


def convert_records(
    kind: Kind,
    records: list[tuple[sources.Line, dict]],
    opts: Options,
    inputs: dict[str, dict] | None = None,
) -> Converted:
    """Map records to canonical rows (through the format's adapter) and validate them."""
    table = TABLES[kind.table]
    mapped: list[dict] = []
    where: list[sources.Line] = []
    rejects: list[tuple[int, str, str]] = []
    for line, record in records:
        try:
            if kind.format in BATCH_FORMATS:
                out = adapters.join_batch(kind.format, inputs or {}, record, opts.ctx)
            else:
                out = adapters.rows(kind, record, opts.ctx)
        except RowError as exc:
            rejects.append((line.number, str(exc), line.raw))
            continue
        except (TypeError, AttributeError, KeyError, ValueError) as exc:
            rejects.append(
                (line.number, f"unexpected structure: {type(exc).__name__}: {exc}", line.raw)
            )
            continue
        mapped.extend(out)
        where.extend([line] * len(out))
    n_read = len(mapped) + len(rejects)
    columns = {name: [r.get(name) for r in mapped] for name in table.names}
    columns[EXTRA] = _extra_json([r.get(EXTRA) for r in mapped])
    checked = check(columns, len(mapped), table, opts.limits)
    rejects.extend(
        (where[i].number, reason, where[i].raw)
        for i, reason in zip(checked.bad_rows, checked.bad_reasons, strict=True)
    )
    warnings = checked.warnings
    quarantined = set(checked.bad_rows)
    kept = [i for i in range(len(mapped)) if i not in quarantined]
    for i in kept:
        warnings.update(mapped[i].get(WARNINGS, ()))
    lines = np.fromiter((where[i].number for i in kept), np.int64, len(kept))
    return Converted(checked.good, rejects, n_read, warnings, lines)


def _not_utf8_rows(batch: pa.RecordBatch | pa.Table) -> dict[int, str]:
    """Rows holding text that is not UTF-8 (Arrow's readers let it through), with the reason."""
    try:
        batch.validate(full=True)
        return {}
    except pa.ArrowInvalid:
        pass
    bad: dict[int, str] = {}
    for name in batch.schema.names:
        column = batch.column(name)
        try:
            column.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        for i in range(len(column)):
            try:
                column.slice(i, 1).validate(full=True)
            except pa.ArrowInvalid:
                bad.setdefault(i, f"{name}: not UTF-8")
    return bad


def _extra_column(frame: pa.Table, unknown: list[str]) -> pa.Array:
    """The unknown columns of each row as one JSON object text (an `extra` struct column merges
    into the others). Polars encodes in bulk; types it cannot take go through Python."""
    try:
        encoded = pl.from_arrow(frame)
        if EXTRA in unknown and isinstance(encoded.schema[EXTRA], pl.Struct):
            inner = {f.name for f in encoded.schema[EXTRA].fields}
            if not inner & set(unknown):
                encoded = encoded.unnest(EXTRA)
        return encoded.select(pl.struct(encoded.columns).struct.json_encode())[:, 0].to_arrow()
    except Exception:  # noqa: BLE001 - polars raises many kinds for exotic Arrow types
        rows = frame.to_pylist()
        for row in rows:
            carried = row.get(EXTRA)
            if isinstance(carried, dict) and not carried.keys() & row.keys():
                row.pop(EXTRA)
                row.update(carried)
        return pa.array([sources.to_json(r) for r in rows], pa.string())


def convert_arrow(
    kind: Kind, batch: pa.RecordBatch | pa.Table, opts: Options, locate, numbers: np.ndarray
) -> Converted:
    """Canonical rows in bulk: columns converted whole, unknown columns kept as `extra`.

    `locate(i)` gives row i's (line number, raw text) for quarantine, `numbers[i]` its number.
    Rows with text that is not UTF-8, and every row when an unknown column nests deeper than
    the parse limit, are quarantined before anything converts them.
    """
    table = TABLES[kind.table]
    n_rows = batch.num_rows
    too_deep = [
        name
        for name, dtype in zip(batch.schema.names, batch.schema.types, strict=True)
        if name not in table.names and sources.schema_depth(dtype) > opts.parse.max_depth
    ]
    if too_deep:
        reason = f"{too_deep[0]}: nested deeper than {opts.parse.max_depth} levels"
        rejects = [(number, reason, raw) for number, raw in map(locate, range(n_rows))]
        empty = table.arrow_schema().empty_table()
        return Converted(empty, rejects, n_rows, Counter(), np.zeros(0, np.int64))
    early = _not_utf8_rows(batch)
    keep = np.array([i for i in range(n_rows) if i not in early], dtype=np.int64)
    if early:
        batch = batch.take(pa.array(keep))
    known = [c for c in batch.schema.names if c in table.names]
    unknown = [
        c
        for c in batch.schema.names
        if c not in table.names and not (c == EXTRA and batch.column(c).null_count == len(batch))
    ]
    columns: dict = {name: batch.column(name) for name in known}
    if unknown == [EXTRA] and pa.types.is_string(batch.schema.field(EXTRA).type):
        columns[EXTRA] = batch.column(EXTRA)  # a store export being re-ingested
    elif unknown:
        columns[EXTRA] = _extra_column(pa.table({c: batch.column(c) for c in unknown}), unknown)
    checked = check(columns, batch.num_rows, table, opts.limits)
    rejects = []
    for i, reason in sorted(early.items()):
        number, raw = locate(i)
        rejects.append((number, reason, raw))
    for i, reason in zip(checked.bad_rows, checked.bad_reasons, strict=True):
        number, raw = locate(int(keep[i]))
        rejects.append((number, reason, raw))
    good_rows = np.delete(keep, checked.bad_rows)
    return Converted(checked.good, rejects, n_rows, checked.warnings, numbers[good_rows])


def _kind_of(path: Path, opts: Options) -> Kind | None:
    try:
        sniffed = sources.sniff(path)
    except sources.SourceError:
        if opts.fmt == "auto" and opts.table is None:
            raise
        sniffed = Kind("canonical", opts.table or "requests")
    if opts.fmt == "auto":
        kind = sniffed
    else:
        role = "log"
        if opts.fmt in BATCH_FORMATS and sniffed is not None:
            role = sniffed.role if sniffed.format == opts.fmt else "output"
        kind = Kind(opts.fmt, opts.table or (sniffed.table if sniffed else "requests"), role)
    if kind is not None and opts.table and kind.table != opts.table:
        kind = Kind(kind.format, opts.table, kind.role)
    return kind


def plan(paths: list[Path], opts: Options) -> dict[Path, Kind | None]:
    """Each file's kind, checked before anything is written; SourceError names a bad file."""
    planned: dict[Path, Kind | None] = {}
    for path in sources.list_files(paths):
        kind = _kind_of(path, opts)
        if kind is not None and sources.is_parquet(path) and kind.format == "canonical":
            names = sources.parquet_columns(path)
            missing = [c for c in TABLES[kind.table].required if c not in names]
            if missing:
                raise sources.SourceError(
                    f"{path}: Parquet file lacks required {kind.table} column(s) {missing}"
                )
        planned[path] = kind
    return planned


def _chunks(path: Path, kind: Kind, opts: Options, inputs: dict | None, served: set | None):
    """(converted chunk, bytes) per chunk of one file; lines that did not parse are rejects."""
    canonical = kind.format == "canonical"
    schema = TABLES[kind.table].arrow_schema(with_extra=False) if canonical else None
    chunks = sources.read(path, schema, opts.chunk_lines, opts.parse)
    while True:
        with stage("ingest: read and parse"):
            chunk = next(chunks, None)
        if chunk is None:
            return
        if chunk.bulk is not None:
            with stage("ingest: validate"):
                done = convert_arrow(kind, chunk.bulk, opts, chunk.locate, chunk.numbers)
            yield done, chunk.n_bytes
            continue
        if served is not None:
            served.update(
                r["custom_id"] for _, r in chunk.records if isinstance(r.get("custom_id"), str)
            )
        with stage("ingest: validate"):
            done = convert_records(kind, chunk.records, opts, inputs)
        done.rejects.extend((line.number, reason, line.raw) for line, reason in chunk.failures)
        yield (
            Converted(
                done.good,
                done.rejects,
                done.n_read + len(chunk.failures),
                done.warnings,
                done.lines,
            ),
            chunk.n_bytes,
        )


def _reject(staging: store.Staging, report: Report, table: str, source: str, rejects: list) -> None:
    report.counts[table].read += len(rejects)
    report.counts[table].quarantined += len(rejects)
    staging.write("quarantine", _quarantine(table, source, rejects))


def _batch_inputs(files: list[Path], opts: Options, staging: store.Staging, report: Report):
    """custom_id -> input record, and custom_id -> (file, line, raw), over batch input files."""
    inputs: dict[str, dict] = {}
    origin: dict[str, tuple[str, int, str]] = {}
    for path in files:
        for chunk in sources.read(path, None, opts.chunk_lines, opts.parse):
            rejects = [(line.number, reason, line.raw) for line, reason in chunk.failures]
            for line, record in chunk.records:
                cid = record.get("custom_id")
                if not isinstance(cid, str) or cid in inputs:
                    why = (
                        "custom_id missing"
                        if not isinstance(cid, str)
                        else f"custom_id {cid!r} repeated"
                    )
                    rejects.append((line.number, why, line.raw))
                    continue
                inputs[cid] = record
                origin[cid] = (str(path), line.number, line.raw)
            _reject(staging, report, "requests", str(path), rejects)
    return inputs, origin


def _ingest_batches(fmt, planned, opts, staging, report, progress) -> None:
    """Join a batch format's output files to its input files; unserved inputs are quarantined."""
    ins = [p for p, k in planned.items() if k and k.format == fmt and k.role == "input"]
    outs = [p for p, k in planned.items() if k and k.format == fmt and k.role != "input"]
    if not ins and not outs:
        return
    inputs, origin = _batch_inputs(ins, opts, staging, report)
    served: set[str] = set()
    for path in outs:
        _ingest_file(path, planned[path], opts, staging, report, progress, inputs, served)
    unserved = defaultdict(list)
    for cid, (source, line, raw) in origin.items():
        if cid not in served:
            unserved[source].append(
                (line, f"custom_id {cid!r}: no batch output (never served)", raw)
            )
    for source, rejects in unserved.items():
        _reject(staging, report, "requests", source, rejects)
    if progress:
        progress(sum(sources.file_size(p) for p in ins))


def run(
    paths: list[Path],
    store_path: Path,
    opts: Options = Options(),
    progress: Progress | None = None,
    planned: dict[Path, Kind | None] | None = None,
) -> Report:
    """Ingest `paths` into `store_path`. Raises SourceError before writing for a bad source."""
    planned = planned if planned is not None else plan(paths, opts)
    with store.locked(store_path):
        staging = store.Staging(store_path)
        report = Report(staging.run_id, files={str(p): k for p, k in planned.items() if k})
        for fmt in BATCH_FORMATS:
            _ingest_batches(fmt, planned, opts, staging, report, progress)
        for path, kind in planned.items():
            if kind is None:
                if progress:
                    progress(sources.file_size(path))
            elif kind.format not in BATCH_FORMATS:
                _ingest_file(path, kind, opts, staging, report, progress, None, None)
        failpoints.hit("ingest.staged")
        con = store.connect()
        try:
            with stage("ingest: commit requests (deduplicate, partition, write)"):
                req = store.commit_requests(con, store_path, staging)
            if req.conflicts is not None:
                staging.write("quarantine", req.conflicts)
            failpoints.hit("ingest.requests_published")
            with stage("ingest: commit accounts and quarantine"):
                acc = store.commit_accounts(con, store_path, staging)
                failpoints.hit("ingest.accounts_published")
                store.commit_quarantine(con, store_path, staging)
        finally:
            con.close()
        for name, committed in (("requests", req), ("accounts", acc)):
            report.counts[name].stored = committed.stored
            report.counts[name].duplicates = committed.duplicates
        report.counts["requests"].conflicting = req.n_conflicts
        report.counts["requests"].quarantined += req.n_conflicts
        staging.discard()
    return report


def _ingest_file(path, kind, opts, staging, report, progress, inputs, served) -> None:
    counts = report.counts[kind.table]
    for done, n_bytes in _chunks(path, kind, opts, inputs, served):
        good = done.good
        if kind.table == "requests":  # provenance, for quarantining conflicting duplicates
            good = good.append_column(
                store.SOURCE, pa.repeat(pa.scalar(str(path)), good.num_rows)
            ).append_column(store.LINE, pa.array(done.lines, pa.int64()))
        staging.write(kind.table, good)
        counts.read += done.n_read
        counts.quarantined += len(done.rejects)
        counts.warnings.update(done.warnings)
        staging.write("quarantine", _quarantine(kind.table, str(path), done.rejects))
        if progress and n_bytes:
            progress(n_bytes)
