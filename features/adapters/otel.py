"""OpenTelemetry GenAI spans, as OTLP/JSON export lines or as flat span objects.

Attribute names follow the GenAI semantic conventions (`gen_ai.*`). The account comes from a
span or resource attribute `account.id` (or `organization.id`, `tenant.id`); otherwise from
`--account-id`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from features.adapters.common import EXTRA, Context, RowError, content_text

ACCOUNT_KEYS = ("account.id", "organization.id", "tenant.id", "gen_ai.openai.request.organization")
MAPPED = frozenset(
    {
        *ACCOUNT_KEYS, "gen_ai.response.id", "enduser.id", "user.id", "gen_ai.conversation.id",
        "session.id", "client.address", "user_agent.original", "gen_ai.request.model",
        "gen_ai.system_instructions", "gen_ai.input.messages", "gen_ai.output.messages",
        "gen_ai.response.finish_reasons", "gen_ai.tool.definitions", "gen_ai.request.max_tokens",
        "gen_ai.request.temperature", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
        "gen_ai.usage.reasoning.output_tokens", "http.response.status_code",
    }
)  # fmt: skip
"""Attributes that become canonical columns; every other one (service.name, gen_ai.system,
gen_ai.operation.name, ...) is kept in `extra`, with the span's trace and span ids and name."""
SPAN_KEYS = {
    "traceId": "trace_id", "trace_id": "trace_id", "spanId": "span_id", "span_id": "span_id",
    "parentSpanId": "parent_span_id", "parent_span_id": "parent_span_id", "name": "span_name",
}  # fmt: skip


def _value(v: Any) -> Any:
    """An OTLP AnyValue as a Python value."""
    if not isinstance(v, dict):
        return v
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in v:
            return v[key]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [_value(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return {kv["key"]: _value(kv.get("value")) for kv in v["kvlistValue"].get("values", [])}
    return None


def _attributes(attrs: Any) -> dict:
    if isinstance(attrs, dict):
        return attrs
    if isinstance(attrs, list):
        return {
            a["key"]: _value(a.get("value")) for a in attrs if isinstance(a, dict) and "key" in a
        }
    return {}


def spans(record: dict) -> Iterator[tuple[dict, dict]]:
    """(span, resource attributes) for each span of an OTLP/JSON line or one flat span."""
    if "resourceSpans" not in record:
        yield record, {}
        return
    for rs in record.get("resourceSpans") or []:
        resource = _attributes((rs.get("resource") or {}).get("attributes"))
        for ss in rs.get("scopeSpans") or []:
            for span in ss.get("spans") or []:
                yield span, resource


def _messages(value: Any) -> list:
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise RowError(f"gen_ai messages: not valid JSON ({exc})") from exc
    return value if isinstance(value, list) else []


def _parts_text(message: dict) -> str:
    if "parts" in message:
        return "\n".join(
            p.get("content", "")
            for p in message["parts"]
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return content_text(message.get("content"))


def row(span: dict, resource: dict, ctx: Context) -> dict:
    """One canonical row from one GenAI span."""
    attrs = {**resource, **_attributes(span.get("attributes"))}
    if not any(k.startswith("gen_ai.") for k in attrs):
        raise RowError(f"span {span.get('name')!r}: no gen_ai.* attributes")
    start = span.get("startTimeUnixNano") or span.get("start_time_unix_nano")
    ts = int(start) / 1e9 if start is not None else span.get("start_time")
    inputs = _messages(attrs.get("gen_ai.input.messages"))
    outputs = _messages(attrs.get("gen_ai.output.messages"))
    users = [m for m in inputs if isinstance(m, dict) and m.get("role") == "user"]
    system = attrs.get("gen_ai.system_instructions")
    if isinstance(system, str) and system.startswith("["):
        system = _parts_text({"parts": _messages(system)})
    reasons = attrs.get("gen_ai.response.finish_reasons")
    tools = attrs.get("gen_ai.tool.definitions")
    extra = {k: v for k, v in attrs.items() if k not in MAPPED and v is not None}
    extra |= {out: span[key] for key, out in SPAN_KEYS.items() if span.get(key) is not None}
    return {
        EXTRA: extra or None,
        "request_id": attrs.get("gen_ai.response.id") or span.get("spanId") or span.get("span_id"),
        "ts": ts,
        "account_id": next((attrs[k] for k in ACCOUNT_KEYS if attrs.get(k)), ctx.account_id),
        "end_user_id": attrs.get("enduser.id") or attrs.get("user.id"),
        "session_id": attrs.get("gen_ai.conversation.id") or attrs.get("session.id"),
        "source_ip": attrs.get("client.address"),
        "user_agent": attrs.get("user_agent.original"),
        "request_model": attrs.get("gen_ai.request.model"),
        "system": system,
        "prompt": _parts_text(users[-1]) if users else "",
        "n_messages": len(inputs) if inputs else None,
        "n_tools": len(_messages(tools)) if tools is not None else None,
        "max_tokens": attrs.get("gen_ai.request.max_tokens"),
        "temperature": attrs.get("gen_ai.request.temperature"),
        "response": _parts_text(outputs[0]) if outputs else None,
        "finish_reason": reasons[0] if isinstance(reasons, list) and reasons else None,
        "usage_input_tokens": attrs.get("gen_ai.usage.input_tokens"),
        "usage_output_tokens": attrs.get("gen_ai.usage.output_tokens"),
        "usage_reasoning_tokens": attrs.get("gen_ai.usage.reasoning.output_tokens"),
        "status_code": attrs.get("http.response.status_code"),
    }


def is_otel(record: dict) -> bool:
    if "resourceSpans" in record:
        return True
    return isinstance(record.get("attributes"), dict | list) and any(
        k in record for k in ("startTimeUnixNano", "start_time_unix_nano", "spanId", "span_id")
    )
