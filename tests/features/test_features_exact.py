"""Hand-made toy logs with exact expected feature values, through ingest -> store -> features."""

from __future__ import annotations

import math
from datetime import date

import pytest

from features import ingest, pipeline
from features.version import FEATURE_SET
from tests.conftest import write_jsonl


def row(rid, ts, account, prompt, model="m-old", ip="10.0.0.1", **extra):
    return {
        "request_id": rid,
        "ts": ts,
        "account_id": account,
        "request_model": model,
        "prompt": prompt,
        "source_ip": ip,
        **extra,
    }


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("toy")
    requests = [
        row("b1", "2026-03-01T01:00:00Z", "B", "hello"),
        row(
            "a1",
            "2026-03-02T00:30:00Z",
            "A",
            "Explain step by step: what is 2+2?",
            ip="10.0.0.1",
            thinking_mode="enabled",
            thinking_budget_tokens=1000,
            n_tools=0,
            status_code=200,
        ),
        row(
            "a2",
            "2026-03-02T01:30:00Z",
            "A",
            "Explain step by step: what is 3+3?",
            ip="10.0.0.2",
            thinking_mode="disabled",
            n_tools=2,
            status_code=429,
        ),
        row(
            "a3",
            "2026-03-02T03:30:00Z",
            "A",
            "hello there",
            model="m-new",
            ip="10.0.1.1",
            n_tools=0,
            status_code=200,
            end_user_id="u1",
        ),
    ]
    accounts = [
        {
            "account_id": "A",
            "created_at": "2026-02-01T00:00:00Z",
            "billing_country": "JP",
            "signup_channel": "education",
            "tier": "free",
            "email_domain": "Gmail.com",
        }
    ]
    store = tmp / "store"
    ingest.run(
        [write_jsonl(tmp / "r.jsonl", requests), write_jsonl(tmp / "a.jsonl", accounts)], store
    )
    frame = pipeline.compute(store, pipeline.Window(date(2026, 3, 2), 2))
    return {r["account_id"]: r for r in frame.to_dicts()}


def test_volume_and_activity(features):
    a, b = features["A"], features["B"]
    assert (a["n_requests"], b["n_requests"]) == (3, 1)
    assert a["n_active_days"] == 1 and a["requests_per_active_day"] == 3.0


def test_timing(features):
    a, b = features["A"], features["B"]
    assert a["hour_entropy"] == pytest.approx(math.log(3) / math.log(24))
    assert a["active_hours_share"] == pytest.approx(3 / 24)
    assert a["burstiness"] == pytest.approx(-0.5)  # gaps 3600 s and 7200 s: mean 5400, sd 1800
    assert a["night_share"] == 0.0  # 09:30-12:30 in Japan
    assert b["night_share"] == 1.0  # no accounts row: UTC, 01:00
    assert (b["burstiness"], b["hour_entropy"]) == (0.0, 0.0)
    assert b["active_hours_share"] == pytest.approx(1 / 24)


def test_templating_and_markers(features):
    a = features["A"]
    assert a["distinct_skeleton_share"] == pytest.approx(2 / 3)
    assert a["top_head_share"] == pytest.approx(2 / 3)
    assert a["share_elicitation"] == pytest.approx(2 / 3)
    assert a["share_grading"] == 0.0


def test_model_adoption(features):
    a, b = features["A"], features["B"]
    assert a["newest_model_lag_hours"] == 0.0
    assert a["newest_model_share"] == 1.0
    assert b["newest_model_lag_hours"] == 48.0  # never used: the window's length
    assert b["newest_model_share"] == 0.0


def test_infrastructure_errors_thinking(features):
    a = features["A"]
    assert (a["n_ips"], a["n_subnets"]) == (3, 2)
    assert a["rate_429"] == pytest.approx(1 / 3)
    assert a["thinking_share"] == pytest.approx(1 / 3)
    assert a["mean_thinking_budget"] == pytest.approx(1000 / 3)
    assert a["tools_share"] == pytest.approx(1 / 3)
    assert a["end_user_share"] == pytest.approx(1 / 3)


def test_account_metadata(features):
    a, b = features["A"], features["B"]
    assert a["account_age_days"] == 30.0
    assert (a["signup_channel"], a["tier"], a["freemail"]) == ("education", "free", 1.0)
    assert (b["account_age_days"], b["signup_channel"]) == (-1.0, "unknown")
    assert a["feature_set"] == FEATURE_SET
