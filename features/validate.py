"""Coerce loosely typed columns to a canonical table and say, per row, what is wrong.

Everything here is vectorised over Arrow / polars columns; the per-value path runs only for a
column whose bulk conversion failed, to name the bad rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from features.schema import EXTRA, THINKING_MODES, TS, Table

EARLIEST_TS = datetime(2020, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
NON_NEGATIVE = (
    "n_messages",
    "n_tools",
    "thinking_budget_tokens",
    "max_tokens",
    "usage_input_tokens",
    "usage_output_tokens",
    "usage_reasoning_tokens",
)
TEXT_COLUMNS = ("system", "prompt", "response")


@dataclass(frozen=True)
class Limits:
    """Bounds a row must respect to be stored; a row outside them is quarantined."""

    max_text_bytes: int = 4 * 1024 * 1024
    now: datetime | None = None

    def __post_init__(self) -> None:
        if self.max_text_bytes <= 0:
            raise ValueError(f"max_text_bytes must be positive, got {self.max_text_bytes}")


@dataclass
class Checked:
    """A batch after validation: the rows that passed and, for the others, why not."""

    good: pa.Table
    bad_rows: list[int] = field(default_factory=list)
    bad_reasons: list[str] = field(default_factory=list)
    warnings: Counter = field(default_factory=Counter)  # message -> rows kept with a change


Errors = dict[int, str]
"""Sparse per-row problems of one column: row index -> reason."""


def _to_array(values: pa.Array | pa.ChunkedArray | list, dtype: pa.DataType, name: str):
    """Convert one column to `dtype`; return the array and the rows that could not be."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    try:
        if isinstance(values, pa.Array):
            if pa.types.is_integer(dtype) and pa.types.is_floating(values.type):
                raise pa.ArrowInvalid("floats are not integers")
            return pc.cast(values, dtype, safe=True), {}
        return pa.array(values, type=dtype), {}
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        pass
    pylist = values.to_pylist() if isinstance(values, pa.Array) else values
    out, errors = [], {}
    for i, v in enumerate(pylist):
        try:
            if isinstance(v, bool) and not pa.types.is_boolean(dtype):
                raise TypeError("bool")
            if isinstance(v, float) and pa.types.is_integer(dtype):
                raise TypeError("float")
            out.append(pa.scalar(v, type=dtype).as_py())
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            out.append(None)
            errors[i] = f"{name}: expected {dtype}, got {type(v).__name__} {repr(v)[:40]}"
    return pa.array(out, type=dtype), errors


def _parse_iso(text: pl.Series) -> pl.Series:
    """ISO-8601 text with a zone (Z or offset, T or space) to UTC microseconds; null if not."""
    return (
        text.str.strip_chars()
        .str.replace(r"^(\d{4}-\d\d-\d\d) ", "${1}T")
        .str.replace(r"[zZ]$", "+00:00")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_unit="us", time_zone="UTC")
    )


def _timestamps(values: pa.Array | pa.ChunkedArray | list, name: str):
    """Parse a timestamp column: Arrow timestamps, ISO-8601 text with a zone, or epoch seconds."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array) and pa.types.is_timestamp(values.type):
        if values.type.tz is None:
            values = pc.assume_timezone(values, "UTC")
        return pc.cast(values, TS), {}
    if isinstance(values, pa.Array) and pa.types.is_string(values.type) | pa.types.is_large_string(
        values.type
    ):
        text = pl.from_arrow(values)
        parsed = _parse_iso(text)
        failed = np.flatnonzero((parsed.is_null() & text.is_not_null()).to_numpy())
        errors = {
            int(i): f"{name}: {text[int(i)][:40]!r} is not ISO-8601 with a time zone"
            for i in failed
        }
        return parsed.to_arrow().cast(TS), errors
    pylist = values.to_pylist() if isinstance(values, pa.Array) else values
    errors: Errors = {}
    text = [v if isinstance(v, str) else None for v in pylist]
    out = _parse_iso(pl.Series(text, dtype=pl.String)).to_list()
    for i, v in enumerate(pylist):
        if v is None:
            continue
        if isinstance(v, str):
            if out[i] is None:
                errors[i] = f"{name}: {v[:40]!r} is not ISO-8601 with a time zone"
        elif isinstance(v, int | float) and not isinstance(v, bool):
            try:
                out[i] = datetime.fromtimestamp(float(v), tz=UTC)
            except (OverflowError, OSError, ValueError):
                errors[i] = f"{name}: epoch seconds {v!r} out of range"
        else:
            errors[i] = f"{name}: expected a timestamp, got {type(v).__name__} {repr(v)[:40]}"
    return pa.array(out, type=TS), errors


def _range_checks(frame: pl.DataFrame, table: Table, limits: Limits) -> pl.Series:
    """One reason string per row ('' when fine) for the rules that need whole values."""
    now = limits.now or datetime.now(UTC)
    checks: list[pl.Expr] = []
    for name in table.required:
        checks.append(pl.when(pl.col(name).is_null()).then(pl.lit(f"{name}: missing")))
    for name in (table.key,):
        checks.append(pl.when(pl.col(name) == "").then(pl.lit(f"{name}: empty")))
    ts_name = "ts" if "ts" in frame.columns else "created_at"
    checks.append(
        pl.when(pl.col(ts_name) > now + FUTURE_SLACK).then(
            pl.lit(f"{ts_name}: in the future (after {now:%Y-%m-%d})")
        )
    )
    checks.append(
        pl.when(pl.col(ts_name) < EARLIEST_TS).then(pl.lit(f"{ts_name}: before 2020-01-01"))
    )
    cols = set(frame.columns)
    for name in NON_NEGATIVE:
        if name in cols:
            checks.append(pl.when(pl.col(name) < 0).then(pl.lit(f"{name}: negative")))
    for name in TEXT_COLUMNS:
        if name in cols:
            checks.append(
                pl.when(pl.col(name).str.len_bytes() > limits.max_text_bytes).then(
                    pl.lit(f"{name}: longer than {limits.max_text_bytes} bytes")
                )
            )
    if "temperature" in cols:
        bad_temp = (pl.col("temperature") < 0) | (pl.col("temperature") > 2)
        checks.append(pl.when(bad_temp).then(pl.lit("temperature: outside [0, 2]")))
    if "status_code" in cols:
        bad_status = (pl.col("status_code") < 100) | (pl.col("status_code") > 599)
        checks.append(pl.when(bad_status).then(pl.lit("status_code: outside 100-599")))
    return frame.select(pl.concat_str(checks, separator="; ", ignore_nulls=True).alias("r"))[
        "r"
    ].fill_null("")


ENUMS = {"thinking_mode": THINKING_MODES}
"""Columns with a fixed vocabulary. A value outside it never costs the row: it becomes null,
the raw value is kept in `extra` and a warning is counted."""


def _unknown_values(good: pa.Table) -> tuple[pa.Table, Counter]:
    """Unknown enum values nulled, kept in `extra` under their column's name, and counted."""
    warnings: Counter = Counter()
    for name, allowed in ENUMS.items():
        if name not in good.schema.names:
            continue
        column = good.column(name)
        unknown = pc.and_kleene(pc.is_valid(column), pc.invert(pc.is_in(column, pa.array(allowed))))
        if not pc.any(unknown).as_py():
            continue
        for value in pc.filter(column, unknown).to_pylist():
            shown = ", ".join(allowed)
            warnings[f"{name} {value[:40]!r}: not one of {shown}; set to null, kept in extra"] += 1
        frame = pl.from_arrow(good)
        kept = pl.struct(pl.col(name)).struct.json_encode()
        extra = pl.col(EXTRA).str.strip_chars()
        merged = (
            pl.when(extra.is_null() | (extra == "{}"))
            .then(kept)
            .when(extra.str.starts_with("{"))
            .then(kept.str.head(-1) + pl.lit(",") + extra.str.slice(1))
            .otherwise(pl.col(EXTRA))
        )
        flag = pl.Series(unknown.to_numpy(zero_copy_only=False))
        frame = frame.with_columns(
            pl.when(flag).then(merged).otherwise(pl.col(EXTRA)).alias(EXTRA),
            pl.when(flag).then(None).otherwise(pl.col(name)).alias(name),
        )
        good = frame.to_arrow().cast(good.schema)
    return good, warnings


def _merge(coercion_errors: list[str], range_reasons: str) -> str:
    """Join a row's reasons, dropping 'X: missing' where X already failed to convert."""
    failed = {e.split(":", 1)[0] for e in coercion_errors}
    later = [r for r in range_reasons.split("; ") if r and r.split(":", 1)[0] not in failed]
    return "; ".join([*coercion_errors, *later])


def check(columns: dict, n_rows: int, table: Table, limits: Limits = Limits()) -> Checked:
    """Coerce `columns` (name -> values) to `table`'s schema and split good rows from bad.

    Missing optional columns become nulls; a missing `extra` column becomes null.
    """
    arrays, errors = [], {}
    for col in table.columns:
        values = columns.get(col.name)
        if values is None:
            arrays.append(pa.nulls(n_rows, col.dtype))
            continue
        convert = _timestamps if col.dtype == TS else partial(_to_array, dtype=col.dtype)
        arr, errs = convert(values, name=col.name)
        arrays.append(arr)
        for i, e in errs.items():
            errors.setdefault(i, []).append(e)
    extra = columns.get(EXTRA)
    arrays.append(
        pa.nulls(n_rows, pa.string()) if extra is None else _to_array(extra, pa.string(), EXTRA)[0]
    )
    coerced = pa.Table.from_arrays(arrays, schema=table.arrow_schema())
    later = _range_checks(pl.from_arrow(coerced), table, limits)
    bad = (later != "").to_numpy()
    if errors:
        bad[list(errors)] = True
    bad_rows = np.flatnonzero(bad).tolist()
    good = coerced.filter(pa.array(~bad))
    good, warnings = (
        _unknown_values(good) if set(ENUMS) <= set(good.schema.names) else (good, Counter())
    )
    return Checked(
        good=good,
        bad_rows=bad_rows,
        bad_reasons=[_merge(errors.get(i, []), later[i]) for i in bad_rows],
        warnings=warnings,
    )
