"""Reading source files: listing them, sniffing their kind, and streaming them in chunks.

`read` is the one way in: it yields `Chunk`s of a file (Arrow tables read in bulk, or parsed
records and the lines that would not parse); `features.ingest` converts, validates and stores
them and never opens a file itself. This module and `features.store` are the only ones that
touch files. Memory stays bounded by the chunk size, whatever the file's size.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq

from features.adapters import Kind, detect

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json", ".jsonl.gz", ".ndjson.gz", ".json.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
SNIFF_LINES = 200


class SourceError(Exception):
    """A source that cannot be read at all (the command exits 2 and names it)."""


@dataclass(frozen=True)
class Line:
    """One record's place in its file and its raw text, for quarantine."""

    number: int
    raw: str


def is_parquet(path: Path) -> bool:
    return path.name.endswith(PARQUET_SUFFIXES)


def list_files(sources: list[Path]) -> list[Path]:
    """Every data file under `sources`, in a stable order; SourceError for a bad path."""
    files: list[Path] = []
    for source in sources:
        if not source.exists():
            raise SourceError(f"{source}: no such file or directory")
        if source.is_file():
            files.append(source)
            continue
        found = sorted(
            p
            for p in source.rglob("*")
            if p.is_file()
            and p.name.endswith(JSONL_SUFFIXES + PARQUET_SUFFIXES)
            and not any(part.startswith((".", "_")) for part in p.relative_to(source).parts)
        )
        if not found:
            raise SourceError(f"{source}: directory holds no .jsonl, .json or .parquet files")
        files.extend(found)
    return files


def _open(path: Path):
    try:
        return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror})") from exc


def _raw(line: bytes) -> str:
    return line.rstrip(b"\r\n").decode("utf-8", errors="backslashreplace")


def to_json(value) -> str:
    """JSON text of a decoded record; the stdlib takes what orjson refuses (ints past 64 bits)."""
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:
        return json.dumps(value, default=str, ensure_ascii=False)


BOM = b"\xef\xbb\xbf"
RAW_KEPT = 65_536
"""Bytes of an oversized line kept as its raw text in quarantine."""


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on what one JSON line may be before it is parsed further; beyond them the line is
    quarantined with a reason naming the bound (and nothing tries to hold or convert it)."""

    max_line_bytes: int = 64 * 1024 * 1024
    max_depth: int = 64
    max_fields: int = 1024

    def __post_init__(self) -> None:
        for name in ("max_line_bytes", "max_depth", "max_fields"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")


def _depth(value) -> int:
    """Nesting depth of a decoded JSON value (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def _brackets(line: bytes) -> int:
    """Opening brackets in a line: an upper bound on its nesting depth, counted in C."""
    return line.count(b"[") + line.count(b"{")


def _parse_lines(lines: list[tuple[int, bytes | None]], limits: ParseLimits) -> tuple[list, list]:
    """Parse JSON lines; a line that is not a UTF-8 JSON object within the limits is a failure.
    An oversized line arrives as (number, None, head) and fails without parsing."""
    records, failures = [], []
    for item in lines:
        number, line = item[0], item[1]
        if line is None:
            reason = (
                f"line longer than {limits.max_line_bytes} bytes (not parsed; raw cut to its "
                f"first {RAW_KEPT} bytes)"
            )
            failures.append((Line(number, _raw(item[2])), reason))
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            text = str(exc).lower()
            if "utf-8" in text:
                reason = "not UTF-8"
            elif "recursion" in text:
                reason = f"nested deeper than {limits.max_depth} levels"
            else:
                reason = f"malformed JSON: {exc}"
            failures.append((Line(number, _raw(line)), reason))
            continue
        if not isinstance(obj, dict):
            failures.append((Line(number, _raw(line)), f"not a JSON object ({type(obj).__name__})"))
            continue
        if _brackets(line) > limits.max_depth and _depth(obj) > limits.max_depth:
            failures.append(
                (Line(number, _raw(line)), f"nested deeper than {limits.max_depth} levels")
            )
            continue
        if len(obj) > limits.max_fields:
            failures.append((Line(number, _raw(line)), f"more than {limits.max_fields} fields"))
            continue
        records.append((Line(number, _raw(line)), obj))
    return records, failures


def _lines(handle, max_line_bytes: int) -> Iterator[tuple[bytes | None, bytes, int]]:
    """(line, head, size) per line; `line` is None for a line longer than `max_line_bytes`,
    which is skipped in pieces (never held whole) and `head` keeps its first `RAW_KEPT` bytes.
    A UTF-8 byte-order mark before the first line is dropped."""
    first = True
    while True:
        line = handle.readline(max_line_bytes + 1)
        if not line:
            return
        if first:
            first = False
            if line.startswith(BOM):
                line = line[len(BOM) :]
        if len(line) <= max_line_bytes or line.endswith(b"\n"):
            yield line, line, len(line)
            continue
        head, size = line[:RAW_KEPT], len(line)
        while not line.endswith(b"\n"):
            line = handle.readline(1 << 20)
            if not line:
                break
            size += len(line)
        yield None, head, size


def _iter_lines(
    path: Path, chunk_lines: int, max_line_bytes: int
) -> Iterator[tuple[list[tuple], int]]:
    """Chunks of (line number from 1, bytes or None when oversized[, head]) and the bytes they
    span; blank lines skipped."""
    with _open(path) as handle:
        batch: list[tuple] = []
        n_bytes = 0
        for number, (line, head, size) in enumerate(_lines(handle, max_line_bytes), start=1):
            n_bytes += size
            if line is None:
                batch.append((number, None, head))
            elif line.strip():
                batch.append((number, line))
            else:
                continue
            if len(batch) >= chunk_lines:
                yield batch, n_bytes
                batch, n_bytes = [], 0
        if batch or n_bytes:
            yield batch, n_bytes


def schema_depth(dtype: pa.DataType) -> int:
    """Nesting depth of an Arrow type (a primitive is 0)."""
    if pa.types.is_struct(dtype) or pa.types.is_union(dtype):
        children = [dtype.field(i).type for i in range(dtype.num_fields)]
    elif pa.types.is_map(dtype):
        children = [dtype.key_type, dtype.item_type]
    elif isinstance(dtype, pa.ListType | pa.LargeListType | pa.FixedSizeListType):
        children = [dtype.value_type]
    else:
        return 0
    return 1 + max((schema_depth(c) for c in children), default=0)


JSON_TYPES = {pa.int32(): pa.int64(), pa.int16(): pa.int64(), pa.float32(): pa.float64()}
READ_OPTIONS = pj.ReadOptions(block_size=64 << 20, use_threads=True)


def _bulk_json(lines: list[tuple], schema: pa.Schema, limits: ParseLimits) -> pa.Table | None:
    """The lines as one Arrow table in bulk (C++ parser); None when any line would not parse,
    is over a limit, or holds text that is not UTF-8 (Arrow's parser lets it through).

    Timestamps are read as text and integers as int64, for the validator to convert and check;
    unknown keys become inferred columns. On None the caller takes the line-by-line path, which
    says what is wrong with each line.
    """
    if not lines or any(len(item) != 2 or _brackets(item[1]) > limits.max_depth for item in lines):
        return None
    fields = [
        pa.field(
            f.name, pa.string() if pa.types.is_timestamp(f.type) else JSON_TYPES.get(f.type, f.type)
        )
        for f in schema
    ]
    options = pj.ParseOptions(explicit_schema=pa.schema(fields), unexpected_field_behavior="infer")
    body = b"".join(line if line.endswith(b"\n") else line + b"\n" for _, line in lines)
    try:
        table = pj.read_json(io.BytesIO(body), read_options=READ_OPTIONS, parse_options=options)
        table.validate(full=True)  # checks UTF-8
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != len(lines) or table.num_columns > limits.max_fields:
        return None
    if any(schema_depth(f.type) > limits.max_depth for f in table.schema):
        return None
    return table


@dataclass
class Chunk:
    """A piece of one source file as read.

    Either `bulk`, an Arrow table of rows read whole (canonical files: Parquet batches, or JSON
    Lines that all parsed under the table's schema) with `locate(i)` giving row i's (line or
    row number, raw text) for quarantine; or `records`, parsed objects with their place, and
    `failures`, lines that are not JSON objects, with the reason. `n_bytes`: how much of the
    file the chunk accounts for, for progress.
    """

    bulk: pa.Table | pa.RecordBatch | None = None
    locate: Callable[[int], tuple[int, str]] | None = None
    numbers: np.ndarray | None = None  # bulk row i's line or row number, cheaply
    records: list[tuple[Line, dict]] = field(default_factory=list)
    failures: list[tuple[Line, str]] = field(default_factory=list)
    n_bytes: int = 0


def read(
    path: Path,
    bulk: pa.Schema | None = None,
    chunk_lines: int = 20_000,
    limits: ParseLimits = ParseLimits(),
) -> Iterator[Chunk]:
    """The chunks of one source file, in order. With `bulk` (the schema of a canonical table),
    rows are read whole into Arrow where they can be; otherwise every row becomes a record.
    Raises SourceError naming the file when it cannot be read at all (a broken Parquet file)."""
    if is_parquet(path):
        for first, batch in iter_parquet(path):
            if bulk is not None:
                yield Chunk(
                    bulk=batch,
                    locate=_row_locator(batch, first),
                    numbers=np.arange(first, first + batch.num_rows, dtype=np.int64),
                )
            else:
                rows = batch.to_pylist()
                yield Chunk(records=[(Line(first + i, to_json(r)), r) for i, r in enumerate(rows)])
        yield Chunk(n_bytes=file_size(path))
        return
    for lines, n_bytes in _iter_lines(path, chunk_lines, limits.max_line_bytes):
        table = _bulk_json(lines, bulk, limits) if bulk is not None else None
        if table is not None:
            numbers = np.fromiter((item[0] for item in lines), np.int64, len(lines))
            yield Chunk(table, _line_locator(lines), numbers, n_bytes=n_bytes)
            continue
        records, failures = _parse_lines(lines, limits)
        yield Chunk(records=records, failures=failures, n_bytes=n_bytes)


def _row_locator(batch: pa.RecordBatch, first: int):
    """Row i of a Parquet batch as (row number, JSON text), rendered only when asked."""
    return lambda i: (first + i, to_json(row_dict(batch.slice(i, 1))))


def row_dict(one: pa.RecordBatch | pa.Table) -> dict:
    """The only row of `one` as a dict, whatever its values: text that is not UTF-8 keeps its
    bad bytes escaped (\\xff), and a value Python cannot hold (a timestamp past year 9999 in a
    time zone, say) is kept as Arrow's own text for it."""
    try:
        return one.to_pylist()[0]
    except (UnicodeDecodeError, ValueError, OverflowError, pa.ArrowException):
        return {
            name: _cell(column) for name, column in zip(one.schema.names, one.columns, strict=True)
        }


def _cell(column: pa.Array | pa.ChunkedArray):
    try:
        return column.to_pylist()[0]
    except UnicodeDecodeError:
        return column.cast(pa.binary()).to_pylist()[0].decode("utf-8", errors="backslashreplace")
    except (ValueError, OverflowError, pa.ArrowException):
        try:
            return column.cast(pa.string()).to_pylist()[0]
        except (pa.ArrowException, UnicodeDecodeError):
            return repr(column[0])


def _line_locator(lines: list[tuple[int, bytes]]):
    """Row i of a JSON Lines chunk as (line number, raw text)."""
    return lambda i: (lines[i][0], _raw(lines[i][1]))


def iter_parquet(path: Path, batch_rows: int = 65_536) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(first row number, batch) for a Parquet file, rows numbered from 1."""
    try:
        handle = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise SourceError(f"{path}: not a readable Parquet file ({exc})") from exc
    first = 1
    batches = handle.iter_batches(batch_size=batch_rows)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (OSError, pa.ArrowException) as exc:
            raise SourceError(f"{path}: unreadable from row {first} on ({exc})") from exc
        yield first, batch
        first += batch.num_rows


def parquet_columns(path: Path) -> list[str]:
    try:
        return pq.read_schema(path).names
    except (OSError, pa.ArrowInvalid) as exc:
        raise SourceError(f"{path}: not a readable Parquet file ({exc})") from exc


def sniff(path: Path) -> Kind | None:
    """The kind of a file from its first parseable records (None when the file is empty)."""
    if is_parquet(path):
        first = next((b for _, b in iter_parquet(path, 1)), None)
        if first is None:
            return None
        try:
            kind = detect(row_dict(first))
        except (RecursionError, pa.ArrowException):  # a column too deep to turn into Python
            kind = detect(dict.fromkeys(first.schema.names))
        if kind is None:
            raise SourceError(
                f"{path}: columns {parquet_columns(path)} match no known table or format; "
                "pass --format and --table"
            )
        return kind
    with _open(path) as handle:
        seen = 0
        for line, _, _ in _lines(handle, ParseLimits().max_line_bytes):
            if line is None or not line.strip():
                continue
            seen += 1
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                obj = None
            if isinstance(obj, dict):
                kind = detect(obj)
                if kind is not None:
                    return kind
            if seen >= SNIFF_LINES:
                break
    if seen == 0:
        return None
    raise SourceError(
        f"{path}: format not recognised from its first {seen} lines; pass --format "
        "(canonical, openai, openai-batch, anthropic, anthropic-batch, litellm, otel)"
    )


def file_size(path: Path) -> int:
    return path.stat().st_size
