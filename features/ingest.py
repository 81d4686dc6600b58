"""Ingestion: source files in providers' formats -> validated canonical rows -> the store.

Counts always reconcile: rows read = rows stored + duplicates + rows quarantined.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
import polars as pl
import pyarrow as pa

from features import adapters, sources, store
from features.adapters import BATCH_FORMATS, Context, Kind, RowError
from features.schema import EXTRA, QUARANTINE_SCHEMA, TABLES
from features.validate import Limits, check

Progress = Callable[[int], None]


@dataclass
class Counts:
    """Rows read, stored, duplicated and quarantined for one table."""

    read: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0

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


def _to_json(value) -> str:
    """JSON text of a decoded record; the stdlib takes what orjson refuses (ints past 64 bits)."""
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:
        return json.dumps(value, default=str, ensure_ascii=False)


def _extra_json(values: list) -> list[str | None]:
    return [None if v is None else _to_json(v) for v in values]


def convert_records(
    kind: Kind,
    records: list[tuple[sources.Line, dict]],
    opts: Options,
    inputs: dict[str, dict] | None = None,
) -> tuple[pa.Table, list[tuple[int, str, str]], int]:
    """Map records to canonical rows and validate them.

    Returns the good rows, the rejects as (line, reason, raw) and the number of rows read.
    """
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
        for i, reason in zip(checked.bad_rows, checked.bad_reasons)
    )
    return checked.good, rejects, n_read


def convert_arrow(kind: Kind, batch: pa.RecordBatch | pa.Table, opts: Options, locate):
    """Canonical rows in bulk: columns converted whole, unknown columns kept as `extra`.

    `locate(i)` gives row i's (line number, raw text) for quarantine.
    """
    table = TABLES[kind.table]
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
        frame = pl.from_arrow(pa.table({c: batch.column(c) for c in unknown}))
        if EXTRA in unknown and isinstance(frame.schema[EXTRA], pl.Struct):
            inner = {f.name for f in frame.schema[EXTRA].fields}
            if not inner & set(unknown):  # an `extra` object merges into the other extras
                frame = frame.unnest(EXTRA)
        columns[EXTRA] = frame.select(pl.struct(frame.columns).struct.json_encode())[
            :, 0
        ].to_arrow()
    checked = check(columns, batch.num_rows, table, opts.limits)
    rejects = []
    for i, reason in zip(checked.bad_rows, checked.bad_reasons):
        number, raw = locate(i)
        rejects.append((number, reason, raw))
    return checked.good, rejects, batch.num_rows


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


def _row_locator(batch: pa.RecordBatch, first: int):
    """Row i of a Parquet batch as (row number, JSON text), rendered only when asked."""
    return lambda i: (first + i, _to_json(batch.slice(i, 1).to_pylist()[0]))


def _line_locator(lines: list[tuple[int, bytes]]):
    """Row i of a JSON Lines chunk as (line number, raw text)."""
    return lambda i: (lines[i][0], sources.raw_text(lines[i][1]))


def _chunks(path: Path, kind: Kind, opts: Options, inputs: dict | None, served: set | None):
    """(good rows, rejects, rows read, bytes) per chunk of one file."""
    if sources.is_parquet(path):
        for first, batch in sources.iter_parquet(path):
            if kind.format == "canonical":
                yield (*convert_arrow(kind, batch, opts, _row_locator(batch, first)), 0)
                continue
            records = [
                (sources.Line(first + i, _to_json(r)), r) for i, r in enumerate(batch.to_pylist())
            ]
            yield (*convert_records(kind, records, opts, inputs), 0)
        yield None, [], 0, sources.file_size(path)
        return
    schema = TABLES[kind.table].arrow_schema(with_extra=False)
    for lines, n_bytes in sources.iter_lines(path, opts.chunk_lines):
        bulk = sources.read_json_lines(lines, schema) if kind.format == "canonical" else None
        if bulk is not None and bulk.num_rows == len(lines):
            yield (*convert_arrow(kind, bulk, opts, _line_locator(lines)), n_bytes)
            continue
        parsed = sources.parse_lines(lines)
        if served is not None:
            served.update(
                r["custom_id"] for _, r in parsed.records if isinstance(r.get("custom_id"), str)
            )
        good, rejects, n = convert_records(kind, parsed.records, opts, inputs)
        rejects.extend((line.number, reason, line.raw) for line, reason in parsed.failures)
        yield good, rejects, n + len(parsed.failures), n_bytes


def _reject(staging: store.Staging, report: Report, table: str, source: str, rejects: list) -> None:
    report.counts[table].read += len(rejects)
    report.counts[table].quarantined += len(rejects)
    staging.write("quarantine", _quarantine(table, source, rejects))


def _batch_inputs(files: list[Path], opts: Options, staging: store.Staging, report: Report):
    """custom_id -> input record, and custom_id -> (file, line, raw), over batch input files."""
    inputs: dict[str, dict] = {}
    origin: dict[str, tuple[str, int, str]] = {}
    for path in files:
        for parsed in sources.iter_jsonl(path, opts.chunk_lines):
            rejects = [(line.number, reason, line.raw) for line, reason in parsed.failures]
            for line, record in parsed.records:
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
        con = store.connect()
        try:
            req = store.commit_requests(con, store_path, staging)
            acc = store.commit_accounts(con, store_path, staging)
            store.commit_quarantine(con, store_path, staging)
        finally:
            con.close()
        for name, committed in (("requests", req), ("accounts", acc)):
            report.counts[name].stored = committed.stored
            report.counts[name].duplicates = committed.duplicates
        staging.discard()
    return report


def _ingest_file(path, kind, opts, staging, report, progress, inputs, served) -> None:
    counts = report.counts[kind.table]
    for good, rejects, n_read, n_bytes in _chunks(path, kind, opts, inputs, served):
        if good is not None:
            staging.write(kind.table, good)
        counts.read += n_read
        counts.quarantined += len(rejects)
        staging.write("quarantine", _quarantine(kind.table, str(path), rejects))
        if progress and n_bytes:
            progress(n_bytes)
