"""Anthropic Messages gateway logs and Message Batches request + result files.

A gateway log line is `{"request": <MessageCreateParams>, "response": <Message>, ...envelope}`.
Batch request lines are `{"custom_id", "params"}` (the entries of `requests` in the create call)
and result lines are `MessageBatchIndividualResponse`: `{"custom_id", "result": {"type", ...}}`.
"""

from __future__ import annotations

from features.adapters.common import (
    Context,
    RowError,
    apply_thinking,
    content_text,
    envelope,
    last_user_text,
    require,
)

THINKING_BLOCKS = frozenset({"thinking", "redacted_thinking"})


def from_exchange(request: dict, response: dict | None, meta: dict) -> dict:
    """One canonical row from a Messages request and its Message response."""
    messages = require(request, "messages", "request")
    row = dict(meta)
    row["request_model"] = request.get("model")
    system = request.get("system")
    row["system"] = None if system is None else content_text(system)
    row["prompt"] = last_user_text(messages)
    row["n_messages"] = len(messages)
    row["n_tools"] = len(request.get("tools") or [])
    apply_thinking(row, request.get("thinking"))
    row["max_tokens"] = request.get("max_tokens")
    row["temperature"] = request.get("temperature")
    metadata = request.get("metadata") or {}
    if row.get("end_user_id") is None and isinstance(metadata, dict):
        row["end_user_id"] = metadata.get("user_id")
    if response:
        blocks = response.get("content") or []
        row["response"] = content_text(blocks, skip_types=THINKING_BLOCKS)
        row["finish_reason"] = response.get("stop_reason")
        usage = response.get("usage") or {}
        parts = [
            usage.get(k)
            for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        ]
        known = [p for p in parts if p is not None]
        row["usage_input_tokens"] = sum(known) if parts[0] is not None else None
        row["usage_output_tokens"] = usage.get("output_tokens")
        details = usage.get("output_tokens_details") or {}
        row["usage_reasoning_tokens"] = details.get("thinking_tokens")
        row.setdefault("request_id", response.get("id"))
        row["request_model"] = row["request_model"] or response.get("model")
    return row


def gateway_row(record: dict, ctx: Context) -> dict:
    meta = envelope(record, ctx)
    return from_exchange(require(record, "request", "line"), record.get("response"), meta)


ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


def batch_rows(inputs: dict[str, dict], output: dict, ctx: Context) -> dict:
    """A batch result line joined to its request line on custom_id."""
    custom_id = require(output, "custom_id", "result")
    if custom_id not in inputs:
        raise RowError(f"custom_id {custom_id!r}: no matching batch request line")
    params = require(inputs[custom_id], "params", "request")
    result = require(output, "result", "result")
    meta = envelope(output, ctx)
    meta.pop("extra", None)
    meta["is_batch"] = True
    kind = result.get("type")
    if kind == "succeeded":
        message = require(result, "message", "result")
        meta.setdefault("status_code", 200)
        return from_exchange(params, message, meta)
    if kind == "errored":
        error = (result.get("error") or {}).get("error") or result.get("error") or {}
        meta.setdefault("status_code", ERROR_STATUS.get(error.get("type"), 500))
        meta.setdefault("request_id", f"{custom_id}")
        return from_exchange(params, None, meta)
    raise RowError(f"custom_id {custom_id!r}: batch result {kind!r} was never served")


def is_gateway(record: dict) -> bool:
    response = record.get("response")
    request = record.get("request")
    return (
        isinstance(request, dict)
        and "messages" in request
        and (response is None or (isinstance(response, dict) and response.get("type") == "message"))
    )


def is_batch_input(record: dict) -> bool:
    return {"custom_id", "params"} <= record.keys()


def is_batch_output(record: dict) -> bool:
    return {"custom_id", "result"} <= record.keys()
