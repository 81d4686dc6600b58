"""Invariants of the feature table on generated logs, and data checks on a simulated world."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detector.simulate import SimConfig, simulate
from features.aggregate import feature_sql
from features.registry import CATEGORICAL, FEATURES, NUMERIC
from features.signals import request_signals
from features.version import FEATURE_SET

START = datetime(2026, 3, 1, tzinfo=UTC)
SHARES = [f.name for f in FEATURES if "share" in f.name or f.name.endswith(("_rate", "_breadth"))]


def features_of(
    requests: pl.DataFrame, accounts: pl.DataFrame | None, days: int, start: datetime = START
) -> pl.DataFrame:
    con = duckdb.connect()
    con.register("sig", request_signals(requests).to_arrow())
    if accounts is not None:
        con.register("acc", accounts.to_arrow())
    sql = feature_sql(
        "sig",
        "acc" if accounts is not None else None,
        start.timestamp(),
        start.timestamp() + days * 86400,
    )
    return pl.from_arrow(con.sql(sql).to_arrow_table())


request = st.fixed_dictionaries(
    {
        "account_id": st.sampled_from(["a", "b", "c", "d"]),
        "seconds": st.integers(0, 2 * 86400 - 1),
        "prompt": st.text(max_size=80),
        "request_model": st.sampled_from(["m1", "m2"]),
        "source_ip": st.one_of(st.none(), st.ip_addresses().map(str)),
        "n_tools": st.one_of(st.none(), st.integers(0, 20)),
        "status_code": st.one_of(st.none(), st.sampled_from([200, 429, 500])),
        "thinking_mode": st.one_of(st.none(), st.sampled_from(["enabled", "disabled", "adaptive"])),
        "usage_output_tokens": st.one_of(st.none(), st.integers(0, 10_000)),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(request, min_size=1, max_size=30))
def test_invariants_hold_on_generated_logs(rows):
    frame = (
        pl.DataFrame(rows)
        .with_columns(
            (pl.lit(START) + pl.duration(seconds=pl.col("seconds"))).alias("ts"),
            pl.int_range(pl.len()).cast(pl.String).alias("request_id"),
        )
        .drop("seconds")
    )
    out = features_of(frame, None, 2)
    assert out["account_id"].is_unique().all()
    assert sorted(out["account_id"]) == sorted(set(frame["account_id"]))
    assert out["n_requests"].sum() == frame.height
    for name in NUMERIC:
        assert out[name].null_count() == 0, name
        if out[name].dtype.is_float():
            assert not out[name].is_nan().any(), name
    for name in SHARES:
        assert out[name].is_between(0, 1).all(), name
    assert out["hour_entropy"].is_between(0, 1 + 1e-9).all()
    assert out["burstiness"].is_between(-1, 1).all()


def test_one_request_account():
    frame = pl.DataFrame(
        {
            "request_id": ["r"],
            "ts": [START],
            "account_id": ["solo"],
            "request_model": ["m"],
            "prompt": ["hi"],
        }
    )
    (row,) = features_of(frame, None, 1).to_dicts()
    assert (
        row["n_requests"] == 1
        and row["burstiness"] == 0.0
        and row["distinct_skeleton_share"] == 1.0
    )


def test_simulated_world_feature_table_checks():
    world = simulate(SimConfig(accounts=200, days=3, seed=9))
    out = features_of(world.requests, world.accounts, 3, world.config.start)
    active = world.requests["account_id"].n_unique()
    assert out.height == active and out["account_id"].is_unique().all()
    assert out.select(pl.all().null_count()).sum_horizontal().item() == 0
    assert set(out["signup_channel"]) <= {
        "self_serve",
        "education",
        "startup_program",
        "reseller",
        "enterprise",
        "unknown",
    }
    assert set(CATEGORICAL) == {"signup_channel", "tier"}
    assert (out["account_age_days"] >= 0).all()
    assert (out["feature_set"] == FEATURE_SET).all()


def test_window_excludes_requests_outside_it():
    frame = pl.DataFrame(
        {
            "request_id": ["in", "out"],
            "ts": [START + timedelta(hours=1), START + timedelta(days=3)],
            "account_id": ["a", "a"],
            "request_model": ["m", "m"],
            "prompt": ["x", "y"],
        }
    )
    (row,) = features_of(frame, None, 1).to_dicts()
    assert row["n_requests"] == 1
