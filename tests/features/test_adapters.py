"""Every adapter turns SDK-built fixtures into canonical rows with the right values."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest
from anthropic.types import Message, TextBlock, ThinkingBlock, Usage
from anthropic.types.messages import (
    MessageBatchErroredResult,
    MessageBatchExpiredResult,
    MessageBatchIndividualResponse,
    MessageBatchSucceededResult,
)
from anthropic.types.messages.batch_create_params import Request as AnthropicBatchRequest
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionMessage
from openai.types.chat.chat_completion import Choice
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
from openai.types.completion_usage import CompletionTokensDetails
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai

from features import ingest
from features.adapters import Context, Kind, detect
from features.store import requests_glob

T0 = 1_772_000_000  # 2026-02-25


def openai_pair(i: int, effort: str | None = "high") -> tuple[dict, dict]:
    params: CompletionCreateParamsNonStreaming = {
        "model": "gpt-5",
        "messages": [
            {"role": "developer", "content": "You are terse."},
            {"role": "user", "content": "earlier turn"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": f"Explain step by step #{i}"}]},
        ],
        "max_completion_tokens": 2048,
        "temperature": 0.2,
        "safety_identifier": "user-hash-9",
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
    }
    if effort:
        params["reasoning_effort"] = effort
    completion = ChatCompletion(
        id=f"chatcmpl-{i}",
        object="chat.completion",
        created=T0 + i,
        model="gpt-5-2026-01-01",
        choices=[
            Choice(
                index=0,
                finish_reason="stop",
                message=ChatCompletionMessage(role="assistant", content=f"answer {i}"),
            )
        ],
        usage=CompletionUsage(
            prompt_tokens=100,
            completion_tokens=300,
            total_tokens=400,
            completion_tokens_details=CompletionTokensDetails(reasoning_tokens=250),
        ),
    )
    return dict(params), completion.model_dump(mode="json", exclude_none=True)


def anthropic_pair(i: int) -> tuple[dict, dict]:
    params = {
        "model": "claude-opus-4-6",
        "max_tokens": 16000,
        "system": [{"type": "text", "text": "Be rigorous."}],
        "thinking": {"type": "enabled", "budget_tokens": 8000},
        "metadata": {"user_id": "end-user-7"},
        "messages": [{"role": "user", "content": f"Grade this answer {i} on a 1-10 rubric"}],
    }
    message = Message(
        id=f"msg_{i}",
        type="message",
        role="assistant",
        model="claude-opus-4-6",
        content=[
            ThinkingBlock(type="thinking", thinking="secret chain", signature="sig"),
            TextBlock(type="text", text=f"Score: {i % 10}"),
        ],
        stop_reason="end_turn",
        stop_sequence=None,
        usage=Usage(
            input_tokens=10,
            cache_creation_input_tokens=200,
            cache_read_input_tokens=3000,
            output_tokens=900,
        ),
    )
    return params, message.model_dump(mode="json", exclude_none=True)


def stored(store) -> list[dict]:
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{requests_glob(store)}') ORDER BY request_id")
    return [dict(zip(rel.columns, row)) for row in rel.fetchall()]


def test_openai_gateway_log(jsonl, tmp_path):
    params, completion = openai_pair(1)
    src = jsonl(
        [
            {
                "request": params,
                "response": completion,
                "organization_id": "org-1",
                "api_key_id": "key-1",
                "client_ip": "203.0.113.9",
                "user_agent": "OpenAI/Python 2.3.0",
                "status_code": 200,
            }
        ]
    )
    assert detect(__import__("orjson").loads(src.read_bytes())) == Kind("openai")
    report = ingest.run([src], tmp_path / "store")
    assert report.counts["requests"].stored == 1
    (row,) = stored(tmp_path / "store")
    assert row["request_id"] == "chatcmpl-1"
    assert row["ts"] == datetime.fromtimestamp(T0 + 1, UTC)
    assert row["account_id"] == "org-1"
    assert row["end_user_id"] == "user-hash-9"
    assert row["source_ip"] == "203.0.113.9"
    assert row["system"] == "You are terse."
    assert row["prompt"] == "Explain step by step #1"
    assert (row["n_messages"], row["n_tools"]) == (4, 1)
    assert (row["thinking_mode"], row["thinking_budget_tokens"]) == ("enabled", 32768)
    assert row["max_tokens"] == 2048
    assert row["response"] == "answer 1"
    assert row["finish_reason"] == "stop"
    assert (row["usage_input_tokens"], row["usage_output_tokens"]) == (100, 300)
    assert row["usage_reasoning_tokens"] == 250
    assert row["status_code"] == 200


def test_openai_batch_joins_on_custom_id(jsonl, tmp_path):
    inputs, outputs = [], []
    for i in range(3):
        params, completion = openai_pair(i, effort="low")
        inputs.append(
            {"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions", "body": params}
        )
        if i < 2:
            outputs.append(
                {
                    "id": f"batch_req_{i}",
                    "custom_id": f"c{i}",
                    "response": {"status_code": 200, "request_id": f"req_{i}", "body": completion},
                    "error": None,
                }
            )
    src_in, src_out = jsonl(inputs), jsonl(outputs[::-1])
    report = ingest.run(
        [src_in, src_out], tmp_path / "store", ingest.Options(ctx=Context(account_id="org-b"))
    )
    counts = report.counts["requests"]
    assert (counts.read, counts.stored, counts.quarantined) == (3, 2, 1)
    rows = stored(tmp_path / "store")
    assert [r["request_id"] for r in rows] == ["req_0", "req_1"]
    assert all(r["is_batch"] and r["account_id"] == "org-b" for r in rows)
    assert rows[0]["thinking_budget_tokens"] == 1024


def test_anthropic_gateway_log_sums_cache_tokens_and_drops_thinking(jsonl, tmp_path):
    params, message = anthropic_pair(3)
    src = jsonl(
        [
            {
                "request": params,
                "response": message,
                "timestamp": "2026-02-25T10:00:00Z",
                "workspace_id": "ws-1",
            }
        ]
    )
    ingest.run([src], tmp_path / "store")
    (row,) = stored(tmp_path / "store")
    assert row["request_id"] == "msg_3"
    assert row["account_id"] == "ws-1"
    assert row["system"] == "Be rigorous."
    assert row["end_user_id"] == "end-user-7"
    assert (row["thinking_mode"], row["thinking_budget_tokens"]) == ("enabled", 8000)
    assert row["response"] == "Score: 3"
    assert row["usage_input_tokens"] == 3210
    assert row["usage_output_tokens"] == 900
    assert row["finish_reason"] == "end_turn"


def test_anthropic_batch_results(jsonl, tmp_path):
    requests, results = [], []
    for i in range(3):
        params, message = anthropic_pair(i)
        req: AnthropicBatchRequest = {"custom_id": f"q{i}", "params": params}
        requests.append(dict(req))
    _, message = anthropic_pair(0)
    results.append(
        MessageBatchIndividualResponse(
            custom_id="q0",
            result=MessageBatchSucceededResult(type="succeeded", message=Message(**message)),
        ).model_dump(mode="json")
    )
    results.append(
        MessageBatchIndividualResponse(
            custom_id="q1",
            result=MessageBatchErroredResult(
                type="errored",
                error={"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
            ),
        ).model_dump(mode="json")
    )
    results.append(
        MessageBatchIndividualResponse(
            custom_id="q2", result=MessageBatchExpiredResult(type="expired")
        ).model_dump(mode="json")
    )
    opts = ingest.Options(ctx=Context(account_id="org-a", batch_time="2026-02-25T00:00:00Z"))
    report = ingest.run([jsonl(requests), jsonl(results)], tmp_path / "store", opts)
    counts = report.counts["requests"]
    assert (counts.read, counts.stored, counts.quarantined) == (3, 2, 1)
    rows = {r["request_id"]: r for r in stored(tmp_path / "store")}
    assert rows["msg_0"]["status_code"] == 200 and rows["msg_0"]["is_batch"]
    assert rows["q1"]["status_code"] == 529 and rows["q1"]["response"] is None


def test_litellm_spendlogs(jsonl, tmp_path):
    record = {
        "request_id": "chatcmpl-ll-1",
        "call_type": "acompletion",
        "api_key": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
        "spend": 0.0012,
        "total_tokens": 30,
        "prompt_tokens": 10,
        "completion_tokens": 20,
        "startTime": "2026-02-25T10:00:00.123+00:00",
        "endTime": "2026-02-25T10:00:02+00:00",
        "model": "anthropic/claude-sonnet-4-5",
        "model_group": "claude-sonnet",
        "user": "internal-user-1",
        "team_id": "team-42",
        "end_user": "cust-9",
        "requester_ip_address": "198.51.100.4",
        "metadata": '{"headers": {"user-agent": "litellm/1.80"}}',
        "messages": '[{"role": "system", "content": "sys"}, {"role": "user", "content": "hi there"}]',
        "response": '{"choices": [{"message": {"content": "hello"}, "finish_reason": "stop"}]}',
        "status": "success",
        "session_id": "sess-1",
    }
    ingest.run([jsonl([record])], tmp_path / "store")
    (row,) = stored(tmp_path / "store")
    assert row["account_id"] == "team-42"
    assert row["end_user_id"] == "cust-9"
    assert row["request_model"] == "claude-sonnet"
    assert (row["system"], row["prompt"], row["response"]) == ("sys", "hi there", "hello")
    assert row["user_agent"] == "litellm/1.80"
    assert row["session_id"] == "sess-1"
    assert row["ts"] == datetime(2026, 2, 25, 10, 0, 0, 123000, tzinfo=UTC)


def otlp_line(attrs: dict, resource: dict) -> dict:
    def kv(d):
        out = []
        for k, v in d.items():
            key = (
                "intValue"
                if isinstance(v, int)
                else "doubleValue"
                if isinstance(v, float)
                else "stringValue"
            )
            if isinstance(v, list):
                out.append(
                    {"key": k, "value": {"arrayValue": {"values": [{"stringValue": x} for x in v]}}}
                )
            else:
                out.append({"key": k, "value": {key: str(v) if key == "intValue" else v}})
        return out

    span = {
        "traceId": "t1",
        "spanId": "s1",
        "name": "chat gpt-5",
        "startTimeUnixNano": str(T0 * 10**9),
        "attributes": kv(attrs),
    }
    return {
        "resourceSpans": [
            {"resource": {"attributes": kv(resource)}, "scopeSpans": [{"spans": [span]}]}
        ]
    }


def test_otel_genai_spans(jsonl, tmp_path):
    attrs = {
        gen_ai.GEN_AI_OPERATION_NAME: "chat",
        gen_ai.GEN_AI_REQUEST_MODEL: "gpt-5",
        gen_ai.GEN_AI_REQUEST_MAX_TOKENS: 512,
        gen_ai.GEN_AI_RESPONSE_ID: "resp-1",
        gen_ai.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
        gen_ai.GEN_AI_USAGE_INPUT_TOKENS: 12,
        gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS: 34,
        gen_ai.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 20,
        gen_ai.GEN_AI_CONVERSATION_ID: "conv-1",
        gen_ai.GEN_AI_INPUT_MESSAGES: '[{"role": "user", "parts": [{"type": "text", "content": "Why is the sky blue?"}]}]',
        gen_ai.GEN_AI_OUTPUT_MESSAGES: '[{"role": "assistant", "parts": [{"type": "text", "content": "Rayleigh."}]}]',
        "client.address": "192.0.2.1",
    }
    ingest.run([jsonl([otlp_line(attrs, {"account.id": "acct-otel"})])], tmp_path / "store")
    (row,) = stored(tmp_path / "store")
    assert row["request_id"] == "resp-1"
    assert row["account_id"] == "acct-otel"
    assert row["ts"] == datetime.fromtimestamp(T0, UTC)
    assert (row["prompt"], row["response"]) == ("Why is the sky blue?", "Rayleigh.")
    assert (
        row["usage_input_tokens"],
        row["usage_output_tokens"],
        row["usage_reasoning_tokens"],
    ) == (12, 34, 20)
    assert row["session_id"] == "conv-1"
    assert row["max_tokens"] == 512


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"account_id": "a", "created_at": "2026-01-01T00:00:00Z"}, Kind("canonical", "accounts")),
        ({"request_id": "r", "ts": 1, "account_id": "a", "prompt": ""}, Kind("canonical")),
        (
            {"custom_id": "c", "method": "POST", "url": "/v1/chat/completions", "body": {}},
            Kind("openai-batch", role="input"),
        ),
        ({"custom_id": "c", "params": {}}, Kind("anthropic-batch", role="input")),
        ({"custom_id": "c", "result": {"type": "expired"}}, Kind("anthropic-batch", role="output")),
        ({"hello": "world"}, None),
    ],
)
def test_detect(record, expected):
    assert detect(record) == expected
