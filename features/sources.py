"""Reading source files: listing them, sniffing their kind, and streaming them in chunks.

This module and `features.store` are the only ones that touch files. Memory stays bounded by
the chunk size, whatever the file's size.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

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


@dataclass
class Parsed:
    """A chunk of a JSON Lines file: parsed objects, and the lines that did not parse."""

    records: list[tuple[Line, dict]]
    failures: list[tuple[Line, str]]
    n_bytes: int


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


def parse_lines(lines: list[tuple[int, bytes]]) -> Parsed:
    """Parse JSON lines; a line that is not a UTF-8 JSON object becomes a failure."""
    records, failures, n_bytes = [], [], 0
    for number, line in lines:
        n_bytes += len(line)
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            reason = "not UTF-8" if "utf-8" in str(exc).lower() else f"malformed JSON: {exc}"
            failures.append((Line(number, _raw(line)), reason))
            continue
        if not isinstance(obj, dict):
            failures.append((Line(number, _raw(line)), f"not a JSON object ({type(obj).__name__})"))
            continue
        records.append((Line(number, _raw(line)), obj))
    return Parsed(records, failures, n_bytes)


def iter_lines(
    path: Path, chunk_lines: int = 20_000
) -> Iterator[tuple[list[tuple[int, bytes]], int]]:
    """Chunks of (line number from 1, bytes) and the bytes they span; blank lines skipped."""
    with _open(path) as handle:
        batch: list[tuple[int, bytes]] = []
        n_bytes = 0
        for number, line in enumerate(handle, start=1):
            n_bytes += len(line)
            if not line.strip():
                continue
            batch.append((number, line))
            if len(batch) >= chunk_lines:
                yield batch, n_bytes
                batch, n_bytes = [], 0
        if batch or n_bytes:
            yield batch, n_bytes


def iter_jsonl(path: Path, chunk_lines: int = 20_000) -> Iterator[Parsed]:
    """Chunks of parsed lines, numbered from 1; blank lines are skipped."""
    for lines, n_bytes in iter_lines(path, chunk_lines):
        parsed = parse_lines(lines)
        parsed.n_bytes = n_bytes
        yield parsed


JSON_TYPES = {pa.int32(): pa.int64(), pa.int16(): pa.int64(), pa.float32(): pa.float64()}


def read_json_lines(lines: list[tuple[int, bytes]], schema: pa.Schema) -> pa.Table | None:
    """The lines as one Arrow table in bulk (C++ parser); None when any line would not parse.

    Timestamps are read as text and integers as int64, for the validator to convert and check;
    unknown keys become inferred columns. On None the caller takes the line-by-line path.
    """
    if not lines:
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
        return pj.read_json(io.BytesIO(body), read_options=READ_OPTIONS, parse_options=options)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None


READ_OPTIONS = pj.ReadOptions(block_size=64 << 20, use_threads=True)


def raw_text(line: bytes) -> str:
    """A line as text for quarantine, undecodable bytes escaped."""
    return _raw(line)


def iter_parquet(path: Path, batch_rows: int = 65_536) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(first row number, batch) for a Parquet file, rows numbered from 1."""
    try:
        handle = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise SourceError(f"{path}: not a readable Parquet file ({exc})") from exc
    first = 1
    for batch in handle.iter_batches(batch_size=batch_rows):
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
        kind = detect(first.to_pylist()[0])
        if kind is None:
            raise SourceError(
                f"{path}: columns {parquet_columns(path)} match no known table or format; "
                "pass --format and --table"
            )
        return kind
    with _open(path) as handle:
        seen = 0
        for line in handle:
            if not line.strip():
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
