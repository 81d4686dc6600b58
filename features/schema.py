"""The canonical tables of the contract (shared/contract/README.md, section 1), as code.

One definition serves the validator, the adapters, the store and the generated docs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Column:
    """One column of a canonical table."""

    name: str
    dtype: pa.DataType
    required: bool
    meaning: str


@dataclass(frozen=True)
class Table:
    """A canonical table: its name, key and columns, in contract order."""

    name: str
    key: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}; columns are {self.names}")

    def arrow_schema(self, *, with_extra: bool = True) -> pa.Schema:
        """The Parquet schema the store writes: contract columns, then `extra` (JSON text)."""
        fields = [pa.field(c.name, c.dtype, nullable=not c.required) for c in self.columns]
        if with_extra:
            fields.append(pa.field(EXTRA, pa.string()))
        return pa.schema(fields)


EXTRA = "extra"
"""Store column holding unknown input fields as a JSON object, so nothing given is lost."""

REQUESTS = Table(
    "requests",
    "request_id",
    (
        Column("request_id", pa.string(), True, "unique id of the exchange"),
        Column("ts", TS, True, "when the request arrived (UTC)"),
        Column("account_id", pa.string(), True, "billing account / organisation owning the key"),
        Column("api_key_id", pa.string(), False, "the key used (id or hash, never the secret)"),
        Column("end_user_id", pa.string(), False, "end-user id passed by the customer"),
        Column("session_id", pa.string(), False, "conversation or session id"),
        Column("source_ip", pa.string(), False, "client address at the edge (raw or hashed)"),
        Column("user_agent", pa.string(), False, "client / SDK string"),
        Column("request_model", pa.string(), True, "model asked for"),
        Column("is_batch", pa.bool_(), False, "arrived through a batch API"),
        Column("system", pa.string(), False, "system prompt text"),
        Column("prompt", pa.string(), True, "text of the last user turn (may be empty)"),
        Column("n_messages", pa.int32(), False, "messages in the request"),
        Column("n_tools", pa.int32(), False, "tool definitions in the request"),
        Column("thinking_mode", pa.string(), False, "disabled, enabled or adaptive"),
        Column("thinking_budget_tokens", pa.int32(), False, "reasoning budget asked for"),
        Column("max_tokens", pa.int32(), False, "output cap asked for"),
        Column("temperature", pa.float32(), False, "sampling temperature"),
        Column("response", pa.string(), False, "visible text returned (thinking excluded)"),
        Column("finish_reason", pa.string(), False, "end_turn, stop, max_tokens, tool_use, ..."),
        Column("usage_input_tokens", pa.int64(), False, "all input tokens, cache included"),
        Column("usage_output_tokens", pa.int64(), False, "output tokens, reasoning included"),
        Column("usage_reasoning_tokens", pa.int64(), False, "reasoning / thinking tokens"),
        Column("status_code", pa.int16(), False, "HTTP status returned"),
    ),
)

ACCOUNTS = Table(
    "accounts",
    "account_id",
    (
        Column("account_id", pa.string(), True, "as in requests"),
        Column("created_at", TS, True, "sign-up time (UTC)"),
        Column("email_domain", pa.string(), False, "domain of the owner's e-mail"),
        Column("payment_fingerprint", pa.string(), False, "stable hash of the payment instrument"),
        Column("billing_country", pa.string(), False, "ISO 3166-1 alpha-2"),
        Column("signup_ip", pa.string(), False, "address used at sign-up"),
        Column("tier", pa.string(), False, "plan / usage tier"),
        Column("signup_channel", pa.string(), False, "self_serve, education, startup_program, ..."),
    ),
)

LABELS = Table(
    "labels",
    "account_id",
    (
        Column("account_id", pa.string(), True, "as in requests"),
        Column("label", pa.int8(), True, "1 = part of a distillation campaign, 0 = legitimate"),
        Column("campaign", pa.string(), False, "name of the campaign the account belongs to"),
    ),
)

TABLES = {t.name: t for t in (REQUESTS, ACCOUNTS, LABELS)}

THINKING_MODES = ("disabled", "enabled", "adaptive")
REASONING_EFFORT_BUDGET = {"none": 0, "minimal": 0, "low": 1024, "medium": 8192, "high": 32768}
"""OpenAI `reasoning_effort` mapped to a token budget: low, medium and high as the contract fixes
them; `none` and `minimal` ask for no reasoning budget."""
REASONING_EFFORT_NEAREST = {"xhigh": "high"}
"""Efforts the SDK allows beyond the contract's, mapped to the nearest contract value (a warning
is counted and the raw value kept in `extra`)."""

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("table", pa.string(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("line", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("raw", pa.string()),
        pa.field("quarantined_at", TS, nullable=False),
    ]
)
"""Rejected rows: the raw text, where it came from (file, 1-based line or row) and why."""


def polars_schema(table: Table, *, with_extra: bool = False) -> dict:
    """The table's columns as polars dtypes (name -> dtype), in contract order."""
    import polars as pl

    return dict(pl.from_arrow(table.arrow_schema(with_extra=with_extra).empty_table()).schema)
