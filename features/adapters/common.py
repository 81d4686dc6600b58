"""Helpers shared by the adapters: the log envelope, message text, row errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from features.schema import (
    EXTRA,
    REASONING_EFFORT_BUDGET,
    REASONING_EFFORT_NEAREST,
    REQUESTS,
    THINKING_MODES,
)

CANONICAL_NAMES = frozenset(REQUESTS.names)


class RowError(ValueError):
    """A record that cannot become a canonical row; its message is the quarantine reason."""


@dataclass(frozen=True)
class Context:
    """What the command line knows that a record may not carry."""

    account_id: str | None = None
    batch_time: str | None = None


ENVELOPE_ALIASES = {
    "request_id": ("request_id", "x_request_id", "log_id"),
    "ts": ("ts", "timestamp", "time", "received_at", "created_at"),
    "account_id": ("account_id", "organization_id", "org_id", "workspace_id", "organization"),
    "api_key_id": ("api_key_id", "key_id", "api_key_hash"),
    "end_user_id": ("end_user_id",),
    "session_id": ("session_id",),
    "source_ip": ("source_ip", "client_ip", "ip", "remote_addr"),
    "user_agent": ("user_agent",),
    "status_code": ("status_code", "http_status"),
    "is_batch": ("is_batch",),
}
"""Where gateway logs put the metadata around an SDK request/response pair."""


def envelope(record: dict, ctx: Context) -> dict:
    """Canonical metadata from the keys around `request` and `response`."""
    out: dict[str, Any] = {}
    for name, keys in ENVELOPE_ALIASES.items():
        for key in keys:
            if record.get(key) is not None:
                out[name] = record[key]
                break
    if "account_id" not in out and ctx.account_id:
        out["account_id"] = ctx.account_id
    if "ts" not in out and ctx.batch_time:
        out["ts"] = ctx.batch_time
    used = {k for keys in ENVELOPE_ALIASES.values() for k in keys} | {"request", "response"}
    extra = {k: v for k, v in record.items() if k not in used}
    if extra:
        out[EXTRA] = extra
    return out


def require(obj: Any, key: str, where: str) -> Any:
    """obj[key], or a RowError naming what is missing."""
    if not isinstance(obj, dict):
        raise RowError(f"{where}: expected an object, got {type(obj).__name__}")
    if obj.get(key) is None:
        raise RowError(f"{where}.{key}: missing")
    return obj[key]


def content_text(content: Any, skip_types: frozenset[str] = frozenset()) -> str:
    """Plain text of an OpenAI or Anthropic message content (string or list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type") not in skip_types:
                text = part.get("text")
                if isinstance(text, str):
                    parts.append(text)
        return "\n".join(parts)
    raise RowError(
        f"message content: expected text or a list of parts, got {type(content).__name__}"
    )


def last_user_text(messages: Any) -> str:
    """Text of the last user turn of a message list ('' when there is none)."""
    if not isinstance(messages, list):
        raise RowError(f"messages: expected a list, got {type(messages).__name__}")
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


WARNINGS = "_warnings"
"""Row key under which an adapter lists what it kept but had to adjust (counted by ingest)."""


def warn(row: dict, message: str) -> None:
    """Note a warning on a row: it is stored, and the message is counted in the ingest report."""
    row.setdefault(WARNINGS, []).append(message)


def keep_extra(row: dict, key: str, value: Any) -> None:
    """Keep `value` under `key` in the row's `extra` object (nothing given is lost)."""
    if value is not None:
        extra = row.get(EXTRA)
        row[EXTRA] = {**(extra if isinstance(extra, dict) else {}), key: value}


def apply_effort(row: dict, effort: Any) -> None:
    """OpenAI `reasoning_effort` as thinking mode and budget (contract: low=1024, medium=8192,
    high=32768; none and minimal = 0, disabled). An effort the contract lacks never costs the
    row: a known one (xhigh) takes the nearest contract value, an unknown one leaves both null;
    either way the raw value is kept in `extra` and a warning is counted."""
    if effort is None:
        return
    name = effort if isinstance(effort, str) else None
    if name in REASONING_EFFORT_BUDGET:
        budget = REASONING_EFFORT_BUDGET[name]
    elif name in REASONING_EFFORT_NEAREST:
        nearest = REASONING_EFFORT_NEAREST[name]
        budget = REASONING_EFFORT_BUDGET[nearest]
        keep_extra(row, "reasoning_effort", effort)
        warn(row, f"reasoning_effort {name!r}: mapped to the nearest contract value ({nearest})")
    else:
        keep_extra(row, "reasoning_effort", effort)
        warn(row, f"reasoning_effort {str(effort)[:40]!r}: unknown, kept in extra (budget null)")
        return
    row["thinking_budget_tokens"] = budget
    row["thinking_mode"] = "disabled" if budget == 0 else "enabled"


def apply_thinking(row: dict, thinking: Any) -> None:
    """Anthropic `thinking` ({"type": ..., "budget_tokens": ...}) as mode and budget; a type the
    contract lacks leaves the mode null, keeps the raw object in `extra` and counts a warning."""
    if not isinstance(thinking, dict):
        return
    kind = thinking.get("type")
    row["thinking_budget_tokens"] = thinking.get("budget_tokens")
    if kind in THINKING_MODES or kind is None:
        row["thinking_mode"] = kind
        return
    keep_extra(row, "thinking", thinking)
    warn(row, f"thinking type {str(kind)[:40]!r}: unknown, kept in extra (mode null)")


def split_extra(record: dict, names: frozenset[str] = CANONICAL_NAMES) -> dict:
    """A canonical record with its unknown keys moved under `extra`."""
    out = {k: v for k, v in record.items() if k in names}
    extra = {k: v for k, v in record.items() if k not in names and k != EXTRA}
    carried = record.get(EXTRA)  # a store export being re-ingested keeps its extras
    if isinstance(carried, str):
        try:
            carried = orjson.loads(carried)
        except orjson.JSONDecodeError:
            carried = {EXTRA: carried}
    if isinstance(carried, dict):
        extra = {**carried, **extra}
    elif carried is not None:
        extra[EXTRA] = carried
    if extra:
        out[EXTRA] = extra
    return out
