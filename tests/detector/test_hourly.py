"""The hourly job from cron on a growing store: alerts within the day, never again at night;
incremental signals; late rows; skipped hours; killed and rerun; the surge table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from detector import simulate as sim
from detector import warehouse as wh
from detector.cli import app
from detector.pipeline import surges
from features import ingest
from tests.detector.alerts.test_webhooks import SECRET, Receiver

runner = CliRunner()
STEP = timedelta(hours=6)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("hourly")
    world = sim.simulate(sim.scenario("default", accounts=200, days=6, seed=31, volume_scale=0.4))
    world.accounts.write_parquet(root / "accounts.parquet")
    return world, root


def _grow(world, root: Path, store: Path, start: datetime, end: datetime) -> Path:
    """Ingest the world's requests in [start, end) into `store` as one new file."""
    chunk = world.requests.filter(pl.col("ts") >= start, pl.col("ts") < end)
    name = root / f"requests-{start:%Y%m%dT%H}-{end:%Y%m%dT%H}-{store.name}.parquet"
    chunk.write_parquet(name)
    ingest.run([name], store)
    return name


def _fresh_store(world, root: Path, name: str, until: datetime) -> Path:
    store = root / name
    ingest.run([root / "accounts.parquet"], store, ingest.Options(table="accounts"))
    _grow(world, root, store, world.config.start, until)
    return store


def _hourly(store, at, warehouse, *extra):
    return runner.invoke(
        app,
        [
            "hourly",
            "--store",
            str(store),
            "--at",
            at.isoformat(),
            "--warehouse",
            str(warehouse),
            *map(str, extra),
        ],
    )


def _signal_files(store: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (store / "_derived").rglob("signals-*.parquet")}


def test_hourly_from_cron_alerts_within_the_day_and_never_again_at_night(world, tmp_path):
    world, root = world
    start = world.config.start
    first = start + timedelta(days=2)
    store = _fresh_store(world, root, "cron", first)
    warehouse = tmp_path / "w.duckdb"
    alerts = tmp_path / "alerts.toml"
    with Receiver() as rx:
        alerts.write_text(f'[webhooks.case]\nurl = "{rx.url}"\ntimeout_s = 5\n')
        os.environ["DISTILLGUARD_WEBHOOK_SECRET_CASE"] = SECRET
        try:
            at = first
            while at <= start + timedelta(days=5):
                before = _signal_files(store)
                if at > first:
                    _grow(world, root, store, at - STEP, at)
                result = _hourly(store, at, warehouse, "--alerts", alerts)
                assert result.exit_code == 0, result.output
                after = _signal_files(store)
                # incremental: only the file ingested for this hour had its signals computed
                assert all(after.get(p) == stamp for p, stamp in before.items() if p in after)
                assert len(set(after) - set(before)) <= (1 if at > first else 10)
                at += STEP
            hourly_ids = set(rx.events)
            nights = [
                "nightly", "--store", store, "--date", (start + timedelta(days=2)).date(),
                "--until", (start + timedelta(days=4)).date(), "--warehouse", warehouse,
                "--alerts", alerts,
            ]  # fmt: skip
            result = runner.invoke(app, list(map(str, nights)))
            assert result.exit_code == 0, result.output
        finally:
            os.environ.pop("DISTILLGUARD_WEBHOOK_SECRET_CASE")
    assert rx.duplicates == 0 and rx.rejected == 0
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        runs = con.execute(
            "SELECT count(*), sum(n_alerts) FROM runs WHERE status = 'ok'"
        ).fetchone()
        hours = con.execute("SELECT count(*) FROM hourly_runs WHERE status = 'ok'").fetchone()[0]
        detected = con.execute(
            "SELECT subject_id, source, first_at FROM alert_events "
            "WHERE type = 'campaign.detected' ORDER BY first_at"
        ).fetchall()
        night_campaigns = {
            r[0] for r in con.execute("SELECT DISTINCT campaign_id FROM campaigns").fetchall()
        }
        flagged = con.execute(
            "SELECT subject_id, count(*) FROM alert_events WHERE type = 'account.flagged' "
            "GROUP BY 1 HAVING count(*) > 1"
        ).fetchall()
    finally:
        con.close()
    assert hours == 13 and runs[0] == 3
    # the nights raised alerts, but every one of them had been sent within the day already
    assert runs[1] > 0
    assert set(rx.events) == hourly_ids
    # campaigns were detected by the hourly job, once each, and the nights kept their ids
    assert detected and all(source == "hourly" for _, source, _ in detected)
    assert len({cid for cid, _, _ in detected}) == len(detected)
    assert night_campaigns <= {cid for cid, _, _ in detected}
    # an account flagged on consecutive days is alerted once
    assert flagged == []
    sent = [e["type"] for e in rx.events.values()]
    assert sent.count("campaign.detected") == len(detected) and "account.flagged" in sent


def test_an_hour_with_nothing_new_is_skipped_and_late_rows_are_counted(world, tmp_path):
    world, root = world
    start = world.config.start
    at = start + timedelta(days=3)
    store = _fresh_store(world, root, "late", at - timedelta(days=1))
    warehouse = tmp_path / "w.duckdb"
    assert _hourly(store, at, warehouse).exit_code == 0
    again = _hourly(store, at, warehouse)
    assert again.exit_code == 0 and "skipped" in again.output
    n_before = _n_requests(warehouse, at)
    # the last day arrives late, after the hour was scored: a new file in an earlier partition
    late = _grow(world, root, store, at - timedelta(days=1), at)
    cached = _signal_files(store)
    result = _hourly(store, at, warehouse)
    assert result.exit_code == 0 and "skipped" not in result.output
    assert _n_requests(warehouse, at) == n_before + pl.read_parquet(late).height
    assert len(set(_signal_files(store)) - set(cached)) >= 1
    assert all(_signal_files(store).get(p) == t for p, t in cached.items())


def _n_requests(warehouse: Path, at: datetime) -> int:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute("SELECT n_requests FROM hourly_runs WHERE hour = ?", [at]).fetchone()[0]
    finally:
        con.close()


CLI = str(Path(sys.executable).with_name("distillguard"))


def test_an_hour_killed_before_commit_then_rerun_equals_a_clean_run(world, tmp_path):
    world, root = world
    at = world.config.start + timedelta(days=3, hours=7)
    store = _fresh_store(world, root, "killed", at)
    clean, killed = tmp_path / "clean.duckdb", tmp_path / "killed.duckdb"
    assert _hourly(store, at, clean).exit_code == 0
    args = [CLI, "hourly", "--store", store, "--at", at.isoformat(), "--warehouse", killed]
    for point in ("hourly.scored", "hourly.before_commit"):
        env = os.environ | {"DISTILLGUARD_FAILPOINT": point}
        done = subprocess.run(list(map(str, args)), env=env, capture_output=True)
        assert done.returncode == -signal.SIGKILL, point
        if killed.exists():  # nothing of the killed hour was kept
            con = duckdb.connect(str(killed), read_only=True)
            assert con.execute("SELECT count(*) FROM hourly_runs").fetchone()[0] == 0
            con.close()
    assert subprocess.run(list(map(str, args)), capture_output=True).returncode == 0
    assert wh.contents(killed) == wh.contents(clean)


def test_hourly_cli_errors(world, tmp_path):
    world, root = world
    store = _fresh_store(world, root, "errors", world.config.start + timedelta(days=1))
    warehouse = tmp_path / "w.duckdb"
    future = datetime.now(UTC) + timedelta(days=2)
    cases = [
        (["--at", "yesterday"], 2, "Invalid isoformat"),
        (["--at", future.isoformat()], 2, "in the future"),
        (["--window-days", "0"], 2, "at least 1"),
    ]
    for extra, code, message in cases:
        result = runner.invoke(
            app, ["hourly", "--store", str(store), "--warehouse", str(warehouse), *extra]
        )
        assert result.exit_code == code and message in result.output, (extra, result.output)
    result = runner.invoke(app, ["hourly", "--store", str(tmp_path), "--at", "2026-02-03T05:00"])
    assert result.exit_code == 2 and "not a store" in result.output
    empty = _hourly(store, world.config.start + timedelta(days=30), warehouse, "--window-days", 1)
    assert empty.exit_code == 99 and "no requests" in empty.output
    # a time without a zone is UTC, floored to its hour
    result = _hourly(store, datetime(2026, 2, 2, 20, 41), warehouse)
    assert result.exit_code == 0 and "2026-02-02 20:00Z" in result.output


def _accounts(rows: list[tuple[str, float | None, int, int]]) -> pl.DataFrame:
    """(account, first use of the newest model, recent requests, earlier requests)."""
    frame = pl.DataFrame(
        {
            "account_id": [r[0] for r in rows],
            "newest_first_s": [0.0] * len(rows),
            "first_newest_s": [r[1] for r in rows],
            "recent_n": [r[2] for r in rows],
            "before_n": [r[3] for r in rows],
        }
    )
    missing = [pl.lit(0).alias(c) for c in surges.PER_ACCOUNT if c not in frame.columns]
    grading = pl.col("account_id").str.starts_with("g")
    return frame.with_columns(missing).with_columns(
        pl.when(grading).then(pl.col("recent_n")).otherwise(0).alias("recent_marker_grading"),
        pl.when(grading).then(10).otherwise(4).alias("hour_n"),
        pl.when(grading).then(6).otherwise(0).alias("hour_newest_n"),
    )


def test_surge_table_measures_adoption_rate_and_marker_rise():
    end = 48 * 3600.0
    rows = [(f"g{i}", 40 * 3600.0 + i * 600, 50, 10) for i in range(6)]  # pivot within an hour
    rows += [(f"u{i}", 2 * 3600.0 + i * 7200, 2, 20) for i in range(6)]  # adoption over a day
    rows += [(f"n{i}", None, 1, 30) for i in range(4)]  # never adopted
    members = pl.DataFrame(
        {
            "campaign_id": ["A"] * 6 + ["B"] * 6 + ["C"] * 4,
            "cluster": ["a"] * 6 + ["b"] * 6 + ["c"] * 4,
            "account_id": [r[0] for r in rows],
            "flagged": [True] * 3 + [False] * 13,
        }
    )
    table = {
        r["campaign_id"]: r for r in surges.table(members, _accounts(rows), end, 48.0).to_dicts()
    }
    a, b, c = table["A"], table["B"], table["C"]
    assert (a["n_adopters"], a["adopter_share"], a["n_flagged"]) == (6, 1.0, 3)
    assert a["adoption_spread_hours"] == pytest.approx(4 * 600 / 3600)
    assert b["adoption_spread_hours"] > 6 and c["n_adopters"] == 0
    assert a["newest_model_age_hours"] == pytest.approx(48.0)
    # A: 300 recent requests in 6 h against 60 in 42 h
    assert a["rate_ratio"] == pytest.approx((300 / 6) / (61 / 42))
    assert a["marker_family"] == "grading" and a["marker_rise"] == pytest.approx(1.0)
    assert a["marker_accounts"] == 6 and b["marker_rise"] == pytest.approx(0.0)
    assert b["marker_family"] is None
    # A sent 36 of its last hour's 60 requests to the new model
    assert a["last_hour_newest_share"] == pytest.approx(0.6) and b["last_hour_newest_share"] == 0


def test_an_hourly_alert_needs_the_previous_run_to_agree(tmp_path):
    from dataclasses import replace

    from detector import nightly, rules

    con = wh.connect(tmp_path / "w.duckdb")
    at = datetime(2026, 3, 2, 14, tzinfo=UTC)
    assert wh.flagged_by_previous_run(con, at) is None  # nothing to confirm against
    con.execute(
        "INSERT INTO runs (run_date, status) VALUES ('2026-03-01', 'ok');"
        "INSERT INTO account_scores (run_date, account_id, flagged) VALUES "
        "('2026-03-01', 'night', true), ('2026-03-01', 'a2', false)"
    )
    assert wh.flagged_by_previous_run(con, at) == {"night"}
    con.execute(
        "INSERT INTO hourly_runs (hour, run_date, status) VALUES "
        "('2026-03-02 13:00:00+00', '2026-03-02', 'ok'), "
        "('2026-03-02 12:00:00+00', '2026-03-02', 'ok');"
        "INSERT INTO hourly_scores (hour, account_id, flagged) VALUES "
        "('2026-03-02 13:00:00+00', 'a1', true), ('2026-03-02 12:00:00+00', 'a2', true)"
    )
    assert wh.flagged_by_previous_run(con, at) == {"a1"}  # the latest hourly run, not older
    later = at + timedelta(days=2)
    assert wh.flagged_by_previous_run(con, later) == {"night"}  # hours older than a day
    accounts = pl.DataFrame(
        {
            "account_id": ["a1", "a2"],
            "flagged": [True, True],
            "score": [0.9, 0.9],
            "campaign_id": [None, None],
            "reasons": [["r"], ["r"]],
        },
        schema_overrides={"campaign_id": pl.String},
    )
    campaigns = pl.DataFrame(
        schema={
            "campaign_id": pl.String,
            "score": pl.Float64,
            "n_accounts": pl.Int64,
            "n_flagged": pl.Int64,
            "reasons": pl.List(pl.String),
        }
    )
    history = replace(
        nightly.History.load(con, at.date(), at, inclusive=False),
        confirmed=wh.flagged_by_previous_run(con, at),
    )
    events, _ = nightly.events_of(
        con,
        at.date(),
        at,
        accounts,
        campaigns,
        history,
        rules.load(),
        pl.DataFrame(schema=rules.HITS),
    )
    assert [json.loads(b)["data"]["account_id"] for _, _, b in events] == ["a1"]
    # at night: a1 was alerted within the day; a2 was only ever flagged in one hour, never
    # alerted, so the night may alert it
    from detector.alerts import webhooks

    webhooks.remember(con, events, at, "hourly")
    night = datetime(2026, 3, 2, 23, 59, 59, tzinfo=UTC)
    assert wh.recently_flagged(con, at.date(), night) == {"a1", "night"}  # and last night's
    con.close()
