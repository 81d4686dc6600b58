"""Each edge type fires on a tiny hand-made case and stays quiet on its look-alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl
import pytest

from detector.linking import EDGE_TYPES, LinkConfig, link
from detector.linking.edges import behaviour_edges
from detector.linking.frames import register
from features.signals import request_signals

T0 = datetime(2026, 3, 2, tzinfo=UTC)
CFG = LinkConfig(max_sharing=5)


def requests(rows: list[dict]) -> pl.DataFrame:
    base = {"request_model": "m-old", "prompt": "hi", "source_ip": None, "user_agent": None}
    frame = pl.DataFrame([{**base, **r} for r in rows])
    return frame.with_columns(pl.int_range(pl.len()).cast(pl.String).alias("request_id"))


def accounts(rows: list[dict]) -> pl.DataFrame:
    base = {
        "created_at": T0 - timedelta(days=30),
        "payment_fingerprint": None,
        "signup_ip": None,
        "email_domain": None,
        "billing_country": None,
        "tier": None,
        "signup_channel": None,
    }
    return pl.DataFrame([{**base, **r} for r in rows]).with_columns(
        pl.col("created_at").dt.cast_time_unit("us")
    )


def edges_of(reqs: pl.DataFrame, accs: pl.DataFrame, edge_type: str) -> set[tuple[str, str]]:
    con = duckdb.connect()
    register(con, request_signals(reqs), accs)
    out = link(
        con, pl.DataFrame({"account_id": []}, schema={"account_id": pl.String}), CFG, (edge_type,)
    )
    return {(r["src"], r["dst"]) for r in out.filter(pl.col("edge_type") == edge_type).to_dicts()}


def spread(account: str, n: int, **fields) -> list[dict]:
    return [
        {"account_id": account, "ts": T0 + timedelta(minutes=37 * i), **fields} for i in range(n)
    ]


def test_payment_links_rare_shared_instrument_only():
    accs = accounts(
        [{"account_id": a, "payment_fingerprint": "pm_shared"} for a in "ab"]
        + [{"account_id": c, "payment_fingerprint": "pm_common"} for c in "cdefghi"]
        + [{"account_id": "j", "payment_fingerprint": "pm_own"}]
    )
    reqs = requests([r for a in "abcdefghij" for r in spread(a, 1)])
    assert edges_of(reqs, accs, "payment") == {("a", "b")}  # 7 sharing > max_sharing 5: no edges


def test_rarer_shared_value_weighs_more():
    accs = accounts(
        [{"account_id": a, "payment_fingerprint": "p2"} for a in "ab"]
        + [{"account_id": a, "payment_fingerprint": "p4"} for a in "cdef"]
    )
    reqs = requests([r for a in "abcdef" for r in spread(a, 1)])
    con = duckdb.connect()
    register(con, request_signals(reqs), accs)
    out = link(con, pl.DataFrame(schema={"account_id": pl.String}), CFG, ("payment",))
    weights = dict(zip(zip(out["src"], out["dst"]), out["weight"]))
    assert weights[("a", "b")] > weights[("c", "d")]


@pytest.mark.parametrize(
    ("edge_type", "column"), [("source_subnet", "source_ip"), ("signup_subnet", "signup_ip")]
)
def test_subnet_edges(edge_type, column):
    ips = {"a": "198.51.100.7", "b": "198.51.100.200", "c": "203.0.113.5"}
    if column == "source_ip":
        reqs = requests([r for a, ip in ips.items() for r in spread(a, 2, source_ip=ip)])
        accs = accounts([{"account_id": a} for a in ips])
    else:
        reqs = requests([r for a in ips for r in spread(a, 2)])
        accs = accounts([{"account_id": a, "signup_ip": ip} for a, ip in ips.items()])
    assert edges_of(reqs, accs, edge_type) == {("a", "b")}


def test_agent_cohort_needs_same_client_and_close_creation():
    accs = accounts(
        [
            {"account_id": "a", "created_at": T0 - timedelta(days=10, hours=1)},
            {"account_id": "b", "created_at": T0 - timedelta(days=10, hours=3)},
            {"account_id": "c", "created_at": T0 - timedelta(days=90)},
            {"account_id": "d", "created_at": T0 - timedelta(days=10, hours=2)},
        ]
    )
    reqs = requests(
        spread("a", 2, user_agent="tool/1")
        + spread("b", 2, user_agent="tool/1")
        + spread("c", 2, user_agent="tool/1")
        + spread("d", 2, user_agent="other/2")
    )
    assert edges_of(reqs, accs, "agent_cohort") == {("a", "b")}


def test_template_links_repeated_openings_not_one_off_prompts():
    template = (
        "Solve the task. Then write out your complete internal reasoning inside think tags please"
    )
    reqs = requests(
        [
            {
                "account_id": a,
                "ts": T0 + timedelta(minutes=i),
                "prompt": f"Task number {i} about {w}. {template} variant {i % 3}",
            }
            for a in ("a", "b")
            for i, w in enumerate(["cats", "dogs", "trains", "maths", "rivers", "stars"] * 2)
        ]
        + [
            {"account_id": "c", "ts": T0 + timedelta(minutes=i), "prompt": p}
            for i, p in enumerate(
                ["what is love", "best pizza in rome", "fix my bike chain", "why is the sky blue"]
            )
        ]
    )
    assert edges_of(reqs, accounts([{"account_id": a} for a in "abc"]), "template") == {("a", "b")}


def test_synchrony_needs_shared_buckets_on_two_days():
    bursts = [T0 + timedelta(days=d, hours=h) for d in (0, 1) for h in (1, 5, 9)]
    together = [
        {"account_id": a, "ts": t + timedelta(minutes=k)}
        for a in ("a", "b")
        for t in bursts
        for k in (0, 2)
    ]
    one_day = [{"account_id": "c", "ts": t + timedelta(minutes=1)} for t in bursts[:3]]
    elsewhere = [{"account_id": "d", "ts": t + timedelta(hours=2)} for t in bursts]
    reqs = requests(together + one_day + elsewhere)
    assert edges_of(reqs, accounts([{"account_id": a} for a in "abcd"]), "synchrony") == {
        ("a", "b")
    }


def test_model_switch_links_same_hour_early_adopters():
    old = [r for a in "abcd" for r in spread(a, 1)]
    release = T0 + timedelta(days=2)
    new = [
        {"account_id": "a", "ts": release + timedelta(minutes=5), "request_model": "m-new"},
        {"account_id": "b", "ts": release + timedelta(minutes=40), "request_model": "m-new"},
        {"account_id": "c", "ts": release + timedelta(hours=30), "request_model": "m-new"},
        {
            "account_id": "d",
            "ts": release + timedelta(days=4, minutes=10),
            "request_model": "m-new",
        },
    ]
    assert edges_of(
        requests(old + new), accounts([{"account_id": a} for a in "abcd"]), "model_switch"
    ) == {("a", "b")}


def test_regression_model_first_seen_after_the_window_does_not_hide_switches():
    release = T0 + timedelta(days=2)
    reqs = requests(
        [r for a in "ab" for r in spread(a, 1)]
        + [
            {"account_id": "a", "ts": release + timedelta(minutes=5), "request_model": "m-new"},
            {"account_id": "b", "ts": release + timedelta(minutes=40), "request_model": "m-new"},
        ]
    )
    firsts = pl.DataFrame(
        {
            "request_model": ["m-old", "m-new", "m-later"],
            "first_t": [
                T0.timestamp(),
                (release + timedelta(minutes=5)).timestamp(),
                (T0 + timedelta(days=30)).timestamp(),
            ],
        }
    )
    con = duckdb.connect()
    register(con, request_signals(reqs), accounts([{"account_id": a} for a in "ab"]), firsts)
    out = link(con, pl.DataFrame(schema={"account_id": pl.String}), CFG, ("model_switch",))
    assert set(zip(out["src"], out["dst"])) == {("a", "b")}


def test_behaviour_edges_find_twins_not_strangers():
    rows = [
        {"account_id": "a", "x": 100.0, "y": 0.9, "z": 3.0},
        {"account_id": "b", "x": 101.0, "y": 0.9, "z": 3.0},
    ]
    rows += [
        {"account_id": f"o{i}", "x": float(i * 37 % 11), "y": (i % 7) / 7, "z": float(i % 5)}
        for i in range(30)
    ]
    out = behaviour_edges(
        pl.DataFrame(rows), ["x", "y", "z"], LinkConfig(behaviour_min_cos=0.9999, behaviour_k=1)
    )
    pairs = set(zip(out["src"], out["dst"]))
    assert ("a", "b") in pairs
    assert all(not ({"a", "b"} & {s, d}) or {s, d} == {"a", "b"} for s, d in pairs)


def test_every_edge_type_has_a_strength_and_meaning():
    assert all(0 < e.strength <= 1 and e.meaning for e in EDGE_TYPES.values())


def test_unknown_edge_type_is_refused():
    with pytest.raises(ValueError, match="edge types must be among"):
        link(duckdb.connect(), pl.DataFrame(), CFG, ("telepathy",))


def test_bad_link_config_is_refused():
    with pytest.raises(ValueError, match="multiple of band_rows"):
        LinkConfig(minhash_k=30, band_rows=4)
