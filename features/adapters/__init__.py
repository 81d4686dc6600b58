"""Adapters from providers' log formats to canonical rows, and format detection.

Each format maps one parsed record to canonical row dicts; joined formats (the batch APIs) map
an output record plus the input records keyed by custom_id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from features.adapters import anthropic, litellm, openai, otel
from features.adapters.common import Context, RowError, split_extra
from features.schema import ACCOUNTS

FORMATS = (
    "canonical",
    "openai",
    "openai-batch",
    "anthropic",
    "anthropic-batch",
    "litellm",
    "otel",
)
BATCH_FORMATS = ("openai-batch", "anthropic-batch")
ACCOUNT_NAMES = frozenset(ACCOUNTS.names)


@dataclass(frozen=True)
class Kind:
    """What one source file holds: its format, the table it feeds and, for batches, its role."""

    format: str
    table: str = "requests"
    role: str = "log"  # "log", or "input" / "output" for batch formats

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.format!r}")
        if self.table not in ("requests", "accounts"):
            raise ValueError(f"table must be 'requests' or 'accounts', got {self.table!r}")


def detect(record: dict) -> Kind | None:
    """The kind of a file whose first record is `record`, or None when nothing matches."""
    keys = record.keys()
    if {"account_id", "created_at"} <= keys and "prompt" not in keys and "request" not in keys:
        return Kind("canonical", "accounts")
    if {"request_id", "ts", "account_id"} <= keys and "request" not in keys:
        return Kind("canonical")
    if litellm.is_spendlog(record):
        return Kind("litellm")
    if otel.is_otel(record):
        return Kind("otel")
    if openai.is_gateway(record):
        return Kind("openai")
    if anthropic.is_gateway(record):
        return Kind("anthropic")
    if openai.is_batch_input(record):
        return Kind("openai-batch", role="input")
    if openai.is_batch_output(record):
        return Kind("openai-batch", role="output")
    if anthropic.is_batch_input(record):
        return Kind("anthropic-batch", role="input")
    if anthropic.is_batch_output(record):
        return Kind("anthropic-batch", role="output")
    return None


def _log_rows(fmt: str, table: str) -> Callable[[dict, Context], list[dict]]:
    if table == "accounts":
        return lambda record, ctx: [split_extra(record, ACCOUNT_NAMES)]
    return {
        "canonical": lambda record, ctx: [split_extra(record)],
        "openai": lambda record, ctx: [openai.gateway_row(record, ctx)],
        "anthropic": lambda record, ctx: [anthropic.gateway_row(record, ctx)],
        "litellm": lambda record, ctx: [litellm.row(record, ctx)],
        "otel": lambda record, ctx: [otel.row(s, r, ctx) for s, r in otel.spans(record)],
    }[fmt]


def rows(kind: Kind, record: dict, ctx: Context) -> list[dict]:
    """Canonical row dicts for one record of a non-joined format; RowError when impossible."""
    if kind.format in BATCH_FORMATS:
        raise ValueError(f"{kind.format} records are joined with join_batch, not mapped one by one")
    return _log_rows(kind.format, kind.table)(record, ctx)


def join_batch(fmt: str, inputs: dict[str, dict], output: dict, ctx: Context) -> list[dict]:
    """The canonical row of one batch output record joined to its input on custom_id."""
    module = openai if fmt == "openai-batch" else anthropic
    return [module.batch_rows(inputs, output, ctx)]


__all__ = [
    "BATCH_FORMATS",
    "FORMATS",
    "Context",
    "Kind",
    "RowError",
    "detect",
    "join_batch",
    "rows",
]
