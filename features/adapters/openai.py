"""OpenAI Chat Completions gateway logs and Batch API input + output files.

A gateway log line is `{"request": <create params>, "response": <ChatCompletion>, ...envelope}`
with the envelope keys of `common.ENVELOPE_ALIASES`. A Batch input line is
`{"custom_id", "method", "url", "body"}` and an output line
`{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}`.
"""

from __future__ import annotations

from features.adapters.common import (
    Context,
    RowError,
    apply_effort,
    content_text,
    envelope,
    last_user_text,
    require,
)


def _system_text(messages: list) -> str | None:
    """System and developer messages' text (plain or as content parts), or None when none."""
    texts = [
        content_text(m.get("content"))
        for m in messages
        if isinstance(m, dict) and m.get("role") in ("system", "developer")
    ]
    return "\n".join(texts) if texts else None


def from_exchange(request: dict, response: dict | None, meta: dict) -> dict:
    """One canonical row from a Chat Completions request body and its response body."""
    messages = require(request, "messages", "request")
    row = dict(meta)
    row["request_model"] = request.get("model")
    row["system"] = _system_text(messages)
    row["prompt"] = last_user_text(messages)
    row["n_messages"] = len(messages)
    row["n_tools"] = len(request.get("tools") or [])
    apply_effort(row, request.get("reasoning_effort"))
    row["max_tokens"] = request.get("max_completion_tokens") or request.get("max_tokens")
    row["temperature"] = request.get("temperature")
    if row.get("end_user_id") is None:
        row["end_user_id"] = request.get("safety_identifier") or request.get("user")
    if response:
        choices = response.get("choices") or []
        if choices:
            message = choices[0].get("message") or {}
            row["response"] = message.get("content") or message.get("refusal") or ""
            row["finish_reason"] = choices[0].get("finish_reason")
        usage = response.get("usage") or {}
        row["usage_input_tokens"] = usage.get("prompt_tokens")
        row["usage_output_tokens"] = usage.get("completion_tokens")
        details = usage.get("completion_tokens_details") or {}
        row["usage_reasoning_tokens"] = details.get("reasoning_tokens")
        row.setdefault("request_id", response.get("id"))
        row.setdefault("ts", response.get("created"))
        row["request_model"] = row["request_model"] or response.get("model")
    return row


def gateway_row(record: dict, ctx: Context) -> dict:
    """A gateway log line: SDK request and response inside an envelope."""
    meta = envelope(record, ctx)
    return from_exchange(require(record, "request", "line"), record.get("response"), meta)


def batch_rows(inputs: dict[str, dict], output: dict, ctx: Context) -> dict:
    """A Batch API output line joined to its input line on custom_id."""
    custom_id = require(output, "custom_id", "output")
    if custom_id not in inputs:
        raise RowError(f"custom_id {custom_id!r}: no matching batch input line")
    request = require(inputs[custom_id], "body", "input")
    meta = envelope(output, ctx)
    meta["is_batch"] = True
    meta.pop("extra", None)
    result = output.get("response") or {}
    body = result.get("body") if isinstance(result, dict) else None
    if body is None:
        error = output.get("error") or {}
        raise RowError(f"custom_id {custom_id!r}: batch request failed: {error.get('code')}")
    meta.setdefault("status_code", result.get("status_code"))
    meta["request_id"] = result.get("request_id") or output.get("id")
    return from_exchange(request, body, meta)


def is_gateway(record: dict) -> bool:
    response = record.get("response")
    request = record.get("request")
    return (
        isinstance(request, dict)
        and "messages" in request
        and (response is None or (isinstance(response, dict) and "choices" in response))
    )


def is_batch_input(record: dict) -> bool:
    return {"custom_id", "body", "url"} <= record.keys()


def is_batch_output(record: dict) -> bool:
    response = record.get("response")
    return (
        "custom_id" in record
        and ((isinstance(response, dict) and "status_code" in response) or "error" in record)
        and "result" not in record
    )
