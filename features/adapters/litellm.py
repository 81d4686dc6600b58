"""LiteLLM proxy SpendLogs exports (the `LiteLLM_SpendLogs` table, as JSON lines or Parquet).

`messages`, `response`, `metadata` and `proxy_server_request` may arrive as JSON text (Postgres
export) or as objects. The account is the LiteLLM team, else the internal user.
"""

from __future__ import annotations

from typing import Any

import orjson

from features.adapters.common import (
    EXTRA,
    Context,
    RowError,
    apply_effort,
    apply_thinking,
    content_text,
    last_user_text,
    require,
)

FAILURE_STATUS = 500
USED = frozenset(
    {
        "request_id", "startTime", "team_id", "user", "api_key", "end_user", "session_id",
        "requester_ip_address", "model_group", "model", "messages", "response", "metadata",
        "proxy_server_request", "prompt_tokens", "completion_tokens",
    }
)  # fmt: skip
"""SpendLogs columns that become canonical columns; every other one (spend, call_type, endTime,
status, cache_hit, ...) is kept in `extra`."""
DROPPED_METADATA = frozenset({"headers"})
"""Metadata keys never kept: request headers may carry credentials."""


def _json(value: Any, name: str) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise RowError(f"{name}: not valid JSON ({exc})") from exc
    return value


def row(record: dict, ctx: Context) -> dict:
    """One canonical row from one SpendLogs record."""
    metadata = _json(record.get("metadata"), "metadata") or {}
    request = _json(record.get("proxy_server_request"), "proxy_server_request") or {}
    messages = _json(record.get("messages"), "messages")
    if not messages and isinstance(request, dict):
        messages = request.get("messages")
    response = _json(record.get("response"), "response") or {}
    account = record.get("team_id") or record.get("user") or ctx.account_id
    out: dict[str, Any] = {
        "request_id": require(record, "request_id", "spendlog"),
        "ts": record.get("startTime"),
        "account_id": account,
        "api_key_id": record.get("api_key"),
        "end_user_id": record.get("end_user") or None,
        "session_id": record.get("session_id"),
        "source_ip": record.get("requester_ip_address"),
        "user_agent": (metadata.get("headers") or {}).get("user-agent")
        if isinstance(metadata, dict)
        else None,
        "request_model": record.get("model_group") or record.get("model"),
        "prompt": last_user_text(messages) if isinstance(messages, list) else "",
        "n_messages": len(messages) if isinstance(messages, list) else None,
        "usage_input_tokens": record.get("prompt_tokens"),
        "usage_output_tokens": record.get("completion_tokens"),
        "status_code": FAILURE_STATUS if record.get("status") == "failure" else 200,
    }
    extra = {k: v for k, v in record.items() if k not in USED and v is not None}
    if isinstance(metadata, dict):
        kept = {k: v for k, v in metadata.items() if k not in DROPPED_METADATA}
        if kept:
            extra["metadata"] = kept
    if extra:
        out[EXTRA] = extra
    if isinstance(messages, list):
        systems = [m for m in messages if isinstance(m, dict) and m.get("role") == "system"]
        out["system"] = "\n".join(content_text(m.get("content")) for m in systems) or None
    if isinstance(request, dict):
        out["n_tools"] = len(request.get("tools") or [])
        out["max_tokens"] = request.get("max_completion_tokens") or request.get("max_tokens")
        out["temperature"] = request.get("temperature")
        if isinstance(request.get("thinking"), dict):
            apply_thinking(out, request["thinking"])
        else:
            apply_effort(out, request.get("reasoning_effort"))
    choices = response.get("choices") if isinstance(response, dict) else None
    if choices:
        message = choices[0].get("message") or {}
        out["response"] = message.get("content") or ""
        out["finish_reason"] = choices[0].get("finish_reason")
        usage = response.get("usage") or {}
        details = usage.get("completion_tokens_details") or {}
        out["usage_reasoning_tokens"] = details.get("reasoning_tokens")
    return out


def is_spendlog(record: dict) -> bool:
    return {"request_id", "call_type", "startTime"} <= record.keys() or {
        "spend",
        "startTime",
        "model",
    } <= record.keys()
