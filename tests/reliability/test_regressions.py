"""One regression test per defect the hardening review found (issue: fuzz and fault injection),
each named after the defect it pins."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import orjson
import polars as pl
import pytest
from typer.testing import CliRunner

from detector.cli import app
from features import ingest
from features.store import requests_glob

runner = CliRunner()
ROW = {
    "request_id": "r1",
    "ts": "2026-02-02T10:00:00Z",
    "account_id": "a",
    "request_model": "m",
    "prompt": "hi",
}


def _stored(store: Path) -> list[dict]:
    rel = duckdb.sql(f"SELECT * FROM read_parquet('{requests_glob(store)}') ORDER BY request_id")
    return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


def _quarantined(store: Path) -> list[tuple]:
    return pl.read_parquet(store / "quarantine" / "*" / "*.parquet").select("line", "reason").rows()


def _ingest(*args: str):
    return runner.invoke(app, ["ingest", *map(str, args)])


def test_regression_non_utf8_bytes_in_canonical_jsonl_are_quarantined_not_fatal(tmp_path):
    src = tmp_path / "bad.jsonl"
    bad = orjson.dumps({**ROW, "request_id": "r2"}).replace(b'"hi"', b'"bad \xff\xfe bytes"')
    src.write_bytes(orjson.dumps(ROW) + b"\n" + bad + b"\n")
    good = tmp_path / "good.jsonl"
    good.write_bytes(orjson.dumps({**ROW, "request_id": "r3"}) + b"\n")
    result = _ingest(src, good, "--store", tmp_path / "s")
    assert result.exit_code == 0, result.output
    assert [r["request_id"] for r in _stored(tmp_path / "s")] == ["r1", "r3"]
    assert _quarantined(tmp_path / "s") == [(2, "not UTF-8")]


def test_regression_non_utf8_text_in_parquet_is_quarantined(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    prompts = pa.array([b"fine", b"bad \xff"], pa.binary()).view(pa.string())
    table = pa.table(
        {
            "request_id": ["p1", "p2"],
            "ts": ["2026-02-02T10:00:00Z"] * 2,
            "account_id": ["a", "a"],
            "request_model": ["m", "m"],
            "prompt": prompts,
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    report = ingest.run([tmp_path / "t.parquet"], tmp_path / "s")
    assert (report.counts["requests"].stored, report.counts["requests"].quarantined) == (1, 1)
    assert _quarantined(tmp_path / "s") == [(2, "prompt: not UTF-8")]


def test_regression_json_nested_800_levels_is_quarantined_not_a_segfault(tmp_path):
    deep = "[" * 800 + "]" * 800
    src = tmp_path / "deep.jsonl"
    line = json.dumps({**ROW, "request_id": "r2"})[:-1] + f', "meta": {deep}}}'
    src.write_text(json.dumps(ROW) + "\n" + line + "\n")
    # a subprocess: a segfault must show as a failed test, not a dead test runner
    cli = Path(sys.executable).parent / "distillguard"
    done = subprocess.run(
        [cli, "ingest", src, "--store", tmp_path / "s"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert _quarantined(tmp_path / "s") == [(2, "nested deeper than 64 levels")]


def test_regression_line_longer_than_the_limit_is_quarantined_without_being_held(tmp_path):
    src = tmp_path / "long.jsonl"
    src.write_text(json.dumps(ROW) + "\n" + json.dumps({**ROW, "prompt": "x" * 5000}) + "\n")
    opts = ingest.Options(parse=ingest.sources.ParseLimits(max_line_bytes=1000))
    report = ingest.run([src], tmp_path / "s", opts)
    assert report.counts["requests"].quarantined == 1
    ((line, reason),) = _quarantined(tmp_path / "s")
    assert line == 2 and reason.startswith("line longer than 1000 bytes")


@pytest.mark.parametrize(
    ("effort", "budget", "mode", "warned"),
    [
        ("none", 0, "disabled", False),
        ("minimal", 0, "disabled", False),
        ("xhigh", 32768, "enabled", True),
        ("ludicrous", None, None, True),
    ],
)
def test_regression_new_reasoning_effort_values_keep_the_row(
    jsonl, tmp_path, effort, budget, mode, warned
):
    request = {"model": "gpt-5", "messages": [{"role": "user", "content": "q"}]}
    response = {"id": "chatcmpl-1", "created": 1_772_000_000, "choices": []}
    record = {"request": request | {"reasoning_effort": effort}, "response": response}
    report = ingest.run([jsonl([record | {"account_id": "org"}])], tmp_path / "s")
    (row,) = _stored(tmp_path / "s")
    assert (row["thinking_budget_tokens"], row["thinking_mode"]) == (budget, mode)
    counts = report.counts["requests"]
    assert counts.quarantined == 0 and bool(counts.warnings) == warned
    if warned:
        assert json.loads(row["extra"])["reasoning_effort"] == effort


def test_regression_newer_anthropic_thinking_types_keep_the_row(jsonl, tmp_path):
    request = {
        "model": "claude-x",
        "max_tokens": 100,
        "thinking": {"type": "interleaved", "budget_tokens": 2000},
        "messages": [{"role": "user", "content": "q"}],
    }
    response = {"id": "msg_1", "type": "message", "content": [], "usage": {"input_tokens": 3}}
    record = {"request": request, "response": response, "timestamp": ROW["ts"], "org_id": "o"}
    report = ingest.run([jsonl([record])], tmp_path / "s")
    (row,) = _stored(tmp_path / "s")
    assert row["thinking_mode"] is None and row["thinking_budget_tokens"] == 2000
    assert json.loads(row["extra"])["thinking"]["type"] == "interleaved"
    assert sum(report.counts["requests"].warnings.values()) == 1


def test_regression_openai_system_message_as_content_parts_is_kept(jsonl, tmp_path):
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be terse."}]},
        {"role": "developer", "content": "Cite sources."},
        {"role": "user", "content": "q"},
    ]
    record = {
        "request": {"model": "gpt-5", "messages": messages},
        "response": {"id": "c1", "created": 1_772_000_000, "choices": []},
        "account_id": "org",
    }
    ingest.run([jsonl([record])], tmp_path / "s")
    (row,) = _stored(tmp_path / "s")
    assert row["system"] == "Be terse.\nCite sources."


def test_regression_byte_order_mark_does_not_cost_the_first_line(tmp_path):
    src = tmp_path / "bom.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(ROW) + b"\r\n")
    result = _ingest(src, "--store", tmp_path / "s")
    assert result.exit_code == 0, result.output
    assert [r["request_id"] for r in _stored(tmp_path / "s")] == ["r1"]


def test_regression_litellm_and_otel_fields_are_kept_in_extra(jsonl, tmp_path):
    spend = {
        "request_id": "ll-1",
        "call_type": "acompletion",
        "spend": 0.0012,
        "startTime": "2026-02-25T10:00:00+00:00",
        "endTime": "2026-02-25T10:00:02+00:00",
        "model": "m",
        "team_id": "t",
        "metadata": {"headers": {"authorization": "Bearer sk-secret"}, "user_api_key_alias": "k"},
        "messages": [{"role": "user", "content": "hi"}],
    }
    span = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "gw"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "trace-9",
                                "spanId": "span-9",
                                "name": "chat m",
                                "startTimeUnixNano": "1772000000000000000",
                                "attributes": [
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "m"}},
                                    {"key": "account.id", "value": {"stringValue": "acc"}},
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    ingest.run([jsonl([spend]), jsonl([span])], tmp_path / "s")
    rows = {r["request_id"]: json.loads(r["extra"]) for r in _stored(tmp_path / "s")}
    kept = rows["ll-1"]
    assert (kept["spend"], kept["call_type"], kept["endTime"]) == (
        0.0012,
        "acompletion",
        spend["endTime"],
    )
    assert kept["metadata"] == {"user_api_key_alias": "k"}  # request headers never kept
    otel = rows["span-9"]
    assert (otel["service.name"], otel["trace_id"], otel["span_name"]) == (
        "gw",
        "trace-9",
        "chat m",
    )


def test_regression_conflicting_duplicate_request_ids_are_quarantined_first_seen_kept(tmp_path):
    first = tmp_path / "a.jsonl"
    first.write_text("\n".join(json.dumps({**ROW, "prompt": p}) for p in ("one", "one", "two")))
    report = ingest.run([first], tmp_path / "s")
    counts = report.counts["requests"]
    assert (counts.stored, counts.duplicates, counts.quarantined, counts.conflicting) == (
        1,
        1,
        1,
        1,
    )
    later = tmp_path / "b.jsonl"
    later.write_text(json.dumps({**ROW, "prompt": "three"}) + "\n")
    again = ingest.run([later], tmp_path / "s").counts["requests"]
    assert (again.stored, again.conflicting) == (0, 1)
    assert [r["prompt"] for r in _stored(tmp_path / "s")] == ["one"]
    reasons = pl.read_parquet(tmp_path / "s" / "quarantine" / "*" / "*.parquet")
    assert reasons.select("source_file", "line").sort("source_file").rows() == [
        (str(first), 3),
        (str(later), 1),
    ]
    assert reasons["reason"].str.contains("conflicting duplicate").all()
    assert json.loads(reasons.sort("source_file")["raw"][0])["prompt"] == "two"
    # a rerun of the same file adds nothing, not even a second quarantine row
    ingest.run([first], tmp_path / "s")
    assert pl.read_parquet(tmp_path / "s" / "quarantine" / "*" / "*.parquet").height == 2


def test_regression_reason_example_edge_is_picked_with_a_total_order():
    from detector.model.explain import _link_summary

    edges = pl.DataFrame(
        {
            "src": ["a", "a", "a"],
            "dst": ["b", "c", "d"],
            "edge_type": ["template"] * 3,
            "weight": [0.4, 0.4, 0.2],
            "evidence": ["jaccard 0.41", "jaccard 0.31", "jaccard 0.2"],
        }
    )
    picks = {
        _link_summary(edges.sample(fraction=1.0, seed=s))[("a", "template")] for s in range(20)
    }
    assert picks == {(3, "jaccard 0.31")}


def test_regression_alerts_show_pending_and_now_sends_them(tmp_path, monkeypatch):
    from detector import warehouse as wh
    from detector.alerts import webhooks
    from detector.cli.nightly import delivery_line

    path = tmp_path / "w.duckdb"
    ep = webhooks.Endpoint("hook", "http://127.0.0.1:9/none", "whsec_" + "A" * 32)
    con = wh.connect(path)
    from datetime import UTC, datetime, timedelta

    later = datetime.now(UTC) + timedelta(hours=1)
    webhooks.enqueue(
        con, [ep], [webhooks.event("run.failed", {}, "k", later)[:1] + ("run.failed", "{}")], later
    )
    sent = webhooks.deliver(con, [ep], send=lambda *a: webhooks.Attempt(200, None))
    assert (sent.delivered, sent.pending) == (0, 1) and sent.next_due is not None
    line = delivery_line(sent)
    assert "1 pending, next due" in line and "--now" in line
    sent = webhooks.deliver(con, [ep], send=lambda *a: webhooks.Attempt(200, None), force=True)
    assert (sent.delivered, sent.pending) == (1, 0)
    con.close()


def test_regression_score_leaves_no_private_store_behind_when_killed(tmp_path):
    from detector import simulate as sim
    from features.store import OWNER, private_store

    world = sim.simulate(sim.scenario("default", accounts=60, days=2, seed=5, volume_scale=0.3))
    world.requests.write_parquet(tmp_path / "r.parquet")
    env = os.environ | {"TMPDIR": str(tmp_path), "DISTILLGUARD_FAILPOINT": "ingest.staged"}
    cli = Path(sys.executable).parent / "distillguard"
    killed = subprocess.run(
        [cli, "score", "--requests", tmp_path / "r.parquet", "--out", tmp_path / "o"],
        env=env,
        capture_output=True,
    )
    assert killed.returncode == -signal.SIGKILL
    (left,) = tmp_path.glob("distillguard-score-*")  # a SIGKILL cannot be cleaned up after...
    assert (left / OWNER).exists()
    os.environ["TMPDIR"] = str(tmp_path)
    try:
        import tempfile

        tempfile.tempdir = None
        with private_store("distillguard-score-"):  # ...so the next command sweeps it
            assert not left.exists()
    finally:
        os.environ.pop("TMPDIR")
        tempfile.tempdir = None
    # SIGTERM: the command itself cleans up on its way out
    env.pop("DISTILLGUARD_FAILPOINT")
    proc = subprocess.Popen(
        [cli, "score", "--requests", tmp_path / "r.parquet", "--out", tmp_path / "o"], env=env
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("distillguard-score-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert not list(tmp_path.glob("distillguard-score-*"))
