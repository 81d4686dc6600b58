"""The nightly job: idempotent per date, stable campaign ids, alerts once, survives SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from detector import rules
from detector import simulate as sim
from detector import warehouse as wh
from detector.cli import app
from detector.pipeline import scoring
from tests.conftest import ingest_world

runner = CliRunner()
TABLES = (*wh.PER_DATE, "alert_outbox")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("nightly")
    world = sim.simulate(sim.scenario("default", accounts=200, days=6, seed=31, volume_scale=0.4))
    first = world.config.start.date()
    return ingest_world(world, root), first, first + timedelta(days=5), root


def _snapshot(path: Path) -> dict:
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for table in TABLES:
            frame = pl.from_arrow(con.sql(f"SELECT * FROM {table}").to_arrow_table())
            frame = frame.drop([c for c in ("created_at", "next_attempt_at") if c in frame.columns])
            out[table] = frame.sort(frame.columns[:3], nulls_last=True).to_dicts()
        runs = con.execute(
            "SELECT run_date, status, n_accounts, n_flagged, n_campaigns, n_alerts FROM runs ORDER BY 1"
        ).fetchall()
        out["runs"] = runs
        return out
    finally:
        con.close()


def _nightly(store_path, first, last, warehouse, *extra):
    return runner.invoke(
        app,
        [
            "nightly",
            "--store",
            str(store_path),
            "--date",
            first.isoformat(),
            "--until",
            last.isoformat(),
            "--warehouse",
            str(warehouse),
            *map(str, extra),
        ],
    )


def test_backfill_then_rerun_gives_the_same_warehouse(store, tmp_path):
    store_path, first, last, root = store
    alerts = tmp_path / "alerts.toml"
    alerts.write_text('[webhooks.case]\nurl = "http://127.0.0.1:9/hook"\ntimeout_s = 0.5\n')
    env = {"DISTILLGUARD_WEBHOOK_SECRET_CASE": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    os.environ.update(env)
    try:
        result = _nightly(
            store_path, last - timedelta(days=2), last, tmp_path / "w.duckdb", "--alerts", alerts
        )
        assert result.exit_code == 0, result.output
        before = _snapshot(tmp_path / "w.duckdb")
        result = _nightly(
            store_path, last - timedelta(days=2), last, tmp_path / "w.duckdb", "--alerts", alerts
        )
        assert result.exit_code == 0, result.output
    finally:
        for k in env:
            os.environ.pop(k)
    after = _snapshot(tmp_path / "w.duckdb")
    for table in TABLES:
        if table == "alert_outbox":  # a rerun queues nothing new; attempts may have grown
            key = lambda rows: sorted((r["event_id"], r["type"], r["body"]) for r in rows)  # noqa: E731
            assert key(after[table]) == key(before[table])
        else:
            assert after[table] == before[table], table
    assert len(after["runs"]) == 3 and all(r[1] == "ok" for r in after["runs"])
    types = {r["type"] for r in after["alert_outbox"]}
    assert "campaign.detected" in types and "account.flagged" in types
    # campaign ids are stable from night to night and each is detected once
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    per_night = con.execute(
        "SELECT run_date, list(campaign_id ORDER BY campaign_id) FROM campaigns GROUP BY 1 ORDER BY 1"
    ).fetchall()
    detected = con.execute(
        "SELECT count(*), count(DISTINCT body) FROM alert_outbox WHERE type = 'campaign.detected'"
    ).fetchone()
    con.close()
    # the first night's campaigns are all still there, under the same ids, on the last night
    assert set(per_night[0][1]) <= set(per_night[-1][1]) and len(per_night[0][1]) >= 2
    assert all(len(ids) == len(set(ids)) for _, ids in per_night)  # never two under one id
    assert detected[0] == detected[1] == len({c for _, ids in per_night for c in ids})
    # every score row has a status; flags are exactly the "flagged" rows; runs count the held
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    statuses = con.execute(
        "SELECT r.run_date, r.n_flagged, r.n_review, "
        "count(*) FILTER (WHERE s.status = 'flagged'), count(*) FILTER (WHERE s.status = 'review'), "
        "count(*) FILTER (WHERE s.flagged <> (s.status = 'flagged') OR s.status IS NULL), "
        "count(*) FILTER (WHERE s.status NOT IN ('flagged', 'review', 'clear')) "
        "FROM runs r JOIN account_scores s USING (run_date) GROUP BY ALL"
    ).fetchall()
    alerted, on_flags = con.execute(
        # never alerted on the night it was held (a later or earlier night may flag it)
        "SELECT count(*) FILTER (WHERE s.status = 'review'), "
        "count(*) FILTER (WHERE s.status = 'flagged') "
        "FROM alert_outbox o JOIN alert_events e USING (event_id) "
        "JOIN account_scores s ON s.account_id = json_extract_string(o.body, '$.data.account_id') "
        "AND s.run_date = e.run_date WHERE o.type = 'account.flagged'"
    ).fetchone()
    con.close()
    assert all(r[1] == r[3] and r[2] == r[4] and r[5] == 0 and r[6] == 0 for r in statuses)
    assert alerted == 0 and on_flags > 0


def test_case_file_is_written_for_the_dashboard(store, tmp_path):
    from detector import nightly as job

    store_path, first, last, _ = store
    path = tmp_path / "w.duckdb"
    job.run_date(store_path, last, path)
    con = duckdb.connect(str(path), read_only=True)

    def one(sql):
        return con.execute(sql).fetchall()

    scored, featured = one(
        "SELECT (SELECT count(*) FROM account_scores), (SELECT count(*) FROM account_features)"
    )[0]
    assert scored == featured > 0
    watched = {
        r[0]
        for r in one(
            "SELECT account_id FROM account_scores WHERE flagged OR campaign_id IS NOT NULL"
        )
    }
    hourly = {r[0] for r in one("SELECT DISTINCT account_id FROM hourly_requests")}
    assert hourly and hourly <= watched
    # links only join members of the same campaign
    assert one(
        "SELECT count(*) FROM campaign_links l JOIN campaign_members a ON a.account_id = l.src "
        "JOIN campaign_members b ON b.account_id = l.dst WHERE a.campaign_id <> b.campaign_id"
    ) == [(0,)]
    samples = one("SELECT campaign_id, prompt, prompt_chars FROM samples")
    campaigns = {r[0] for r in one("SELECT campaign_id FROM campaigns")}
    assert {s[0] for s in samples} == campaigns
    assert all(len(p) <= n for _, p, n in samples)
    assert not any(
        "@" in p and "." in p.split("@")[-1][:30] for _, p, _ in samples if "[email]" not in p
    )
    tactics = one("SELECT tactics FROM campaigns")
    assert all(t and len(t) >= 1 for (t,) in tactics)
    daily = one("SELECT count(*), sum(n_requests) FROM daily_requests")[0]
    assert daily[0] > 0 and daily[1] > 0
    con.close()


def test_no_data_exits_99_and_bad_usage_2(store, tmp_path):
    store_path, first, last, _ = store
    result = _nightly(store_path, date(2020, 1, 1), date(2020, 1, 2), tmp_path / "w.duckdb")
    assert result.exit_code == 99 and "no requests" in result.output
    result = _nightly(store_path, last, first, tmp_path / "w.duckdb")
    assert result.exit_code == 2
    result = runner.invoke(
        app, ["nightly", "--store", str(tmp_path / "nope"), "--date", "2026-02-02"]
    )
    assert result.exit_code == 2 and "not a store" in result.output


def test_match_ids_keeps_a_growing_campaign():
    before = pl.DataFrame(
        {"campaign_id": ["old1"] * 4 + ["old2"] * 3, "account_id": list("abcd") + list("xyz")}
    )
    now = pl.DataFrame(
        {"campaign_id": ["n1"] * 6 + ["n2"] * 2, "account_id": list("abcdef") + ["p", "q"]}
    )
    assert wh.match_ids(now, before) == {"n1": "old1"}


def test_a_split_campaign_never_gives_two_campaigns_one_id():
    # old1 splits: tonight's "old1" (raw id from its smallest member a) keeps a and b, while
    # n2 holds most of the rest and inherits old1; the first half must not keep "old1"
    before = pl.DataFrame({"campaign_id": ["old1"] * 6, "account_id": list("abcdef")})
    now = pl.DataFrame({"campaign_id": ["old1"] * 3 + ["n2"] * 4, "account_id": list("abxcdef")})
    mapping = wh.match_ids(now, before)
    assert mapping["n2"] == "old1"
    assert mapping["old1"] not in {"old1", "n2"} and mapping["old1"].startswith("cmp_")
    assert mapping == wh.match_ids(now, before)  # deterministic


def test_allow_listed_accounts_are_not_alerted(store, tmp_path):
    store_path, first, last, _ = store
    path = tmp_path / "w.duckdb"
    con = wh.connect(path)
    labels = pl.read_parquet(store[3] / "labels.parquet").filter(pl.col("label") == 1)
    allowed = labels["account_id"].to_list()
    con.executemany(
        "INSERT INTO allowlist VALUES (?, 'test', 'analyst', now(), NULL)", [[a] for a in allowed]
    )
    con.close()
    from detector import nightly as job
    from detector.alerts.webhooks import Endpoint

    ep = Endpoint("case", "http://127.0.0.1:9/x", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    job.run_date(store_path, last, path, endpoints=[ep])
    con = duckdb.connect(str(path), read_only=True)
    bodies = [
        r[0]
        for r in con.execute(
            "SELECT body FROM alert_outbox WHERE type = 'account.flagged'"
        ).fetchall()
    ]
    con.close()
    assert not any(a in b for a in allowed for b in bodies)


def test_sigkill_mid_run_then_rerun_equals_a_clean_run(store, tmp_path):
    store_path, first, last, _ = store
    clean = tmp_path / "clean.duckdb"
    assert _nightly(store_path, last - timedelta(days=1), last, clean).exit_code == 0
    killed = tmp_path / "killed.duckdb"
    argv = [
        sys.executable,
        "-m",
        "detector.cli",
        "nightly",
        "--store",
        str(store_path),
        "--date",
        (last - timedelta(days=1)).isoformat(),
        "--until",
        last.isoformat(),
        "--warehouse",
        str(killed),
    ]
    for delay in (2.0, 6.0, 10.0):
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    rerun = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert _snapshot(killed) == _snapshot(clean)


def test_a_failed_run_is_recorded_and_alerted(store, tmp_path):
    store_path, first, last, _ = store
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "model.json").write_text("{}")
    (broken / "model.pt").write_bytes(b"")
    from detector import nightly as job
    from detector.alerts.webhooks import Endpoint

    ep = Endpoint("case", "http://127.0.0.1:9/x", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    with pytest.raises(Exception, match="format"):
        job.run_date(store_path, last, tmp_path / "w.duckdb", model=broken, endpoints=[ep])
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    status = con.execute("SELECT status, error FROM runs").fetchone()
    kinds = [r[0] for r in con.execute("SELECT type FROM alert_outbox").fetchall()]
    con.close()
    assert status[0] == "failed" and "format" in status[1]
    assert kinds == ["run.failed"]


NO_ACCOUNTS = pl.DataFrame(
    schema={
        "account_id": pl.String,
        "flagged": pl.Boolean,
        "score": pl.Float64,
        "campaign_id": pl.String,
        "reasons": pl.List(pl.String),
    }
)
"""No flagged accounts: the events of a night that only has campaigns."""


def test_dismissed_campaign_is_re_alerted_only_after_material_growth(tmp_path):
    from detector import nightly as job

    path = tmp_path / "w.duckdb"
    con = wh.connect(path)
    con.executemany(
        "INSERT INTO campaign_members VALUES (DATE '2026-03-01', 'cmp_x', ?)",
        [[f"a{i}"] for i in range(10)],
    )
    con.execute(
        "INSERT INTO verdicts VALUES ('campaign', 'cmp_x', 'dismissed', 'benchmark vendor', 'ana', now())"
    )

    def alerts(n_accounts):
        campaigns = pl.DataFrame(
            {
                "campaign_id": ["cmp_x"],
                "score": [0.9],
                "n_accounts": [n_accounts],
                "n_flagged": [2],
                "reasons": [["r"]],
            }
        )
        accounts = NO_ACCOUNTS
        day = date(2026, 3, 2)
        at = datetime(2026, 3, 2, 23, 59, 59, tzinfo=UTC)
        history = job.History.load(con, day, at, inclusive=True)
        no_surges = pl.DataFrame(schema=rules.HITS)
        return [
            e[1]
            for e in job.events_of(
                con, day, at, accounts, campaigns, history, rules.load(), no_surges
            )[0]
        ]

    assert alerts(13) == []  # +30%: would update an open campaign, not a dismissed one
    assert alerts(15) == ["campaign.updated"]  # +50%: material
    con.execute("DELETE FROM verdicts")
    assert alerts(12) == ["campaign.updated"]
    assert alerts(11) == []
    # regression: a later verdict supersedes the dismissal (verdicts are appended, latest wins)
    con.execute(
        "INSERT INTO verdicts VALUES ('campaign', 'cmp_x', 'dismissed', 'b', 'ana', now() - INTERVAL 1 DAY), "
        "('campaign', 'cmp_x', 'reopened', 'new evidence', 'bo', now())"
    )
    assert alerts(12) == ["campaign.updated"]
    con.close()


def test_an_enforced_surge_on_a_known_campaign_is_one_update_naming_the_rule(tmp_path):
    import json

    from detector import nightly as job
    from detector.alerts import webhooks

    con = wh.connect(tmp_path / "w.duckdb")
    con.executemany(
        "INSERT INTO campaign_members VALUES (DATE '2026-03-01', 'cmp_x', ?)",
        [[f"a{i}"] for i in range(10)],
    )
    campaigns = pl.DataFrame(
        {
            "campaign_id": ["cmp_x", "cmp_new"],
            "score": [0.9, 0.8],
            "n_accounts": [10, 6],
            "n_flagged": [4, 3],
            "reasons": [["r"], ["s"]],
        }
    )
    accounts = NO_ACCOUNTS
    surge = pl.DataFrame(
        {
            "rule_id": ["model_release_surge", "model_release_surge", "cell_rate_jump"],
            "rule_version": [1, 1, 1],
            "mode": ["enforce", "enforce", "shadow"],
            "subject_kind": ["campaign"] * 3,
            "subject_id": ["cmp_x", "cmp_new", "cmp_x"],
            "evidence": ["{}"] * 3,
        },
        schema=rules.HITS,
    )
    day = date(2026, 3, 2)
    at = datetime(2026, 3, 2, 14, tzinfo=UTC)
    history = job.History.load(con, day, at, inclusive=False)
    events, _ = job.events_of(con, day, at, accounts, campaigns, history, rules.load(), surge)
    kinds = {json.loads(body)["data"]["campaign_id"]: (kind, eid) for eid, kind, body in events}
    assert kinds["cmp_new"][0] == "campaign.detected"  # new: detected, not updated
    assert kinds["cmp_x"][0] == "campaign.updated"
    body = json.loads(next(b for e, k, b in events if k == "campaign.updated"))
    assert body["data"]["rules"] == ["model_release_surge"]  # the shadow hit changes nothing
    assert body["data"]["previous_n_accounts"] == 10
    # the night raises the same update under the same id: it is sent once
    night = datetime(2026, 3, 2, 23, 59, 59, tzinfo=UTC)
    again, _ = job.events_of(
        con,
        day,
        night,
        accounts,
        campaigns,
        job.History.load(con, day, night, True),
        rules.load(),
        surge,
    )
    assert {e[0] for e in again} == {e[0] for e in events}
    assert webhooks.remember(con, events, at, "hourly") == 2
    assert webhooks.remember(con, again, night, "nightly") == 0
    con.close()


def test_lineage_names_merged_and_split_operations():
    before = pl.DataFrame(
        {
            "campaign_id": ["A"] * 4 + ["B"] * 3 + ["C"] * 6,
            "account_id": list("abcd") + list("xyz") + list("pqrstu"),
        }
    )
    # A and B became one operation (kept as A); C split: C goes on, a new id holds the rest
    now = pl.DataFrame({"campaign_id": ["A"] * 7, "account_id": list("abcdxyz")})
    now = pl.concat(
        [
            now,
            pl.DataFrame({"campaign_id": ["C"] * 3, "account_id": list("pqr")}),
            pl.DataFrame({"campaign_id": ["N"] * 3, "account_id": list("stu")}),
        ]
    )
    rows = {r["campaign_id"]: r for r in wh.lineage(now, before).to_dicts()}
    assert rows["A"]["merged_from"] == ["B"] and rows["A"]["split_from"] is None
    assert rows["N"]["split_from"] == "C" and rows["N"]["merged_from"] is None
    assert "C" not in rows  # it goes on under its own id: neither merged nor split off
    assert wh.lineage(now, before.clear()).is_empty()


def test_merged_operations_are_updates_and_split_offs_are_detected_with_their_origin(tmp_path):
    import json

    from detector import nightly as job

    con = wh.connect(tmp_path / "w.duckdb")
    for cid, accounts in {"cmp_a": "abcd", "cmp_b": "xyz", "cmp_c": "pqrstu"}.items():
        con.executemany(
            "INSERT INTO campaign_members VALUES (DATE '2026-03-01', ?, ?)",
            [[cid, a] for a in accounts],
        )
    day = date(2026, 3, 2)
    at = datetime(2026, 3, 2, 23, 59, 59, tzinfo=UTC)
    history = job.History.load(con, day, at, inclusive=True)
    raw = {"cmp_a": "abcdxyz", "cmp_c": "pqr", "cmp_s": "stu"}
    accounts = pl.DataFrame(
        [(a, 0.9, True, "flagged", cid, ["r"]) for cid, m in raw.items() for a in m],
        schema=["account_id", "score", "flagged", "status", "campaign_id", "reasons"],
        orient="row",
    )
    campaigns = pl.DataFrame(
        {
            "campaign_id": list(raw),
            "score": [0.9] * 3,
            "n_accounts": [len(m) for m in raw.values()],
            "n_flagged": [len(m) for m in raw.values()],
            "reasons": [["r"]] * 3,
        }
    )
    scored = scoring.Scored(accounts, campaigns, pl.DataFrame(schema=rules.HITS))
    _, kept, _, _ = job.stable_ids(history.members, scored)
    events, _ = job.events_of(
        con, day, at, NO_ACCOUNTS, kept, history, rules.load(), pl.DataFrame(schema=rules.HITS)
    )
    sent = {json.loads(b)["data"]["campaign_id"]: (k, json.loads(b)["data"]) for _, k, b in events}
    kind, data = sent["cmp_a"]
    assert kind == "campaign.updated" and data["merged_from"] == ["cmp_b"]
    split = next(v for c, v in sent.items() if c not in {"cmp_a", "cmp_c"})
    assert split[0] == "campaign.detected" and split[1]["split_from"] == "cmp_c"
    assert "cmp_c" not in sent  # shrank, nothing fired: no event
    con.close()
