"""The hourly job: early warning between nights.

`run_hour` scores the trailing window ending at an hour (`--window-days` times 24 hours, 7 days
by default: the nightly job's window, so the model sees what it was validated on and flags at the
nightly rate) from the store's cached signals (cached per ingested file, so only files ingested
since the last run are read), and writes the hour's scores, campaigns, members and rule hits
into the warehouse's `hourly_*` tables together with an `hourly_runs` row and its alerts, in one
transaction under the nightly job's lock. The nightly tables are not touched: they stay the
record of each day.

Alerts are the nightly job's events with the nightly job's ids (`nightly.events_of`, dated by
the day the window's last hour falls in), so an alert sent within the day is never sent again at
night: campaign ids carry over between hourly runs and nights in both directions
(`warehouse.members_as_of`), `campaign.detected` is keyed by the campaign, `campaign.updated`
and `account.flagged` by subject and date, and an account alerted by an hourly run of the day
before is not alerted again. An hourly run alerts `account.flagged` only for accounts the
previous run flagged too (the latest hourly run of the past day, else the latest night): an
account flagged in one hour alone is one hour's noise, since more runs give a legitimate
account more chances to cross the threshold. Campaigns are alerted at once. The
`cluster_surges` rules (a linked group pivoting to a new model, a marker family surging, a
cell's rate jumping) run here like every other rule.

A rerun of an hour replaces that hour's rows and queues nothing new; a run killed at any point
leaves the hour's old rows or its new ones. When nothing was ingested into the window since an
hour's successful run, running that hour again does nothing (`Outcome.skipped`).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from detector import nightly, rules, warehouse
from detector.alerts import webhooks
from detector.model import artifact
from detector.pipeline import featurise, scoring
from features import failpoints, pipeline
from features import store as stored
from features.timing import stage


@dataclass(frozen=True)
class Outcome:
    at: datetime
    n_accounts: int
    n_flagged: int
    n_review: int
    n_campaigns: int
    n_new_campaigns: int
    n_alerts: int
    seconds: float
    skipped: bool = False  # nothing ingested into the window since this hour's last run
    warning: str | None = None


def hour_of(at: datetime | None) -> datetime:
    """`at` (default: now) floored to its hour, in UTC; a time without a zone is UTC (the
    store's and the warehouse's clock)."""
    at = datetime.now(UTC) if at is None else at
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def store_key(store: Path, window: pipeline.Window) -> str:
    """What the window's request files are (names, sizes, times): equal keys, equal inputs."""
    h = hashlib.sha256()
    for day in window.dates:
        for f in sorted((store / "requests" / f"dt={day.isoformat()}").glob("*.parquet")):
            st = f.stat()
            h.update(f"{f.parent.name}/{f.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    accounts = stored.latest_accounts_file(store)
    if accounts is not None:
        h.update(f"accounts:{accounts.name}".encode())
    return h.hexdigest()[:16]


def run_hour(
    store: Path,
    at: datetime,
    warehouse_path: Path,
    window_days: int = 7,
    model: Path | None = None,
    endpoints: list[webhooks.Endpoint] | None = None,
    rules_dir: Path | None = None,
    progress=None,
) -> Outcome:
    """Score the window ending at the hour `at` into the warehouse's hourly tables. Raises
    nightly.NoData when the window holds no requests."""
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    at = hour_of(at)
    window = pipeline.Window.ending(at, window_days)
    day = window.end
    endpoints = endpoints or []
    key = store_key(store, window)
    if _done(warehouse_path, at, key):
        return Outcome(at, 0, 0, 0, 0, 0, 0, time.perf_counter() - started, skipped=True)
    try:
        fitted, _ = artifact.load(model)
        ruleset = rules.load(rules_dir, warehouse.rule_modes(warehouse_path))
        data = featurise.featurise(store, window, progress)
        if data is None:
            raise nightly.NoData(f"{store}: no requests in the {window_days * 24} h before {at}")
        scored = scoring.score_data(fitted, data, ruleset=ruleset)
        failpoints.hit("hourly.scored")
    except nightly.NoData:
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        nightly.record_failure(warehouse_path, day, started_at, error, endpoints, hour=at)
        raise
    with warehouse.locked(warehouse_path):
        con = warehouse.open_waiting(warehouse_path, read_only=False, wait_s=120)
        try:
            con.execute("BEGIN TRANSACTION")
            history = replace(
                nightly.History.load(con, day, at, inclusive=False),
                confirmed=warehouse.flagged_by_previous_run(con, at),
            )
            accounts, campaigns, members, rename = nightly.stable_ids(history.members, scored)
            hits = nightly.renamed(scored.rule_hits, rename)
            events, growth_hits = nightly.events_of(
                con, day, at, accounts, campaigns, history, ruleset, hits
            )
            new = set(campaigns["campaign_id"].to_list()) - history.known
            frames = {
                "hourly_scores": accounts.filter(
                    (pl.col("status") != "clear") | pl.col("campaign_id").is_not_null()
                ).select("account_id", "score", "flagged", "status", "campaign_id", "reasons"),
                "hourly_campaigns": campaigns.select(
                    [c for c in warehouse.CAMPAIGN_COLUMNS if c != "tactics"]
                ).with_columns(pl.col("campaign_id").is_in(sorted(new)).alias("new")),
                "hourly_members": members.select("campaign_id", "account_id"),
                "hourly_rule_hits": pl.concat([hits, growth_hits]),
            }
            with stage("warehouse: replace the hour"):
                _replace_hour(con, at, frames)
            webhooks.remember(con, events, at, "hourly")
            webhooks.enqueue(con, endpoints, events, at)
            # the events this hour raised first (a rerun of the hour counts them again)
            (n_alerts,) = con.execute(
                "SELECT count(*) FROM alert_events WHERE source = 'hourly' AND first_at = ?", [at]
            ).fetchone()
            row = nightly.run_row(started_at, model, window_days, data, accounts, campaigns)
            warehouse.upsert(
                con,
                "hourly_runs",
                {"hour": at, "run_date": day, "status": "ok"}
                | row
                | {"n_new_campaigns": len(new), "n_alerts": n_alerts, "store_key": key}
                | {"seconds": time.perf_counter() - started},
            )
            failpoints.hit("hourly.before_commit")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()
    return Outcome(
        at,
        accounts.height,
        row["n_flagged"],
        row["n_review"],
        campaigns.height,
        len(new),
        n_alerts,
        time.perf_counter() - started,
        warning=scoring.traffic_warning(fitted, accounts),
    )


def _done(warehouse_path: Path, at: datetime, key: str) -> bool:
    """Whether the hour was scored successfully from exactly these request files."""
    if not warehouse_path.exists():
        return False
    con = warehouse.open_waiting(warehouse_path, read_only=True, wait_s=120)
    try:
        row = con.execute(
            "SELECT status, store_key FROM hourly_runs WHERE hour = ?", [at]
        ).fetchone()
    except duckdb.CatalogException:  # a warehouse from before the hourly job: no hourly_runs
        return False
    finally:
        con.close()
    return row is not None and row[0] == "ok" and row[1] == key


def _replace_hour(con, at: datetime, frames: dict[str, pl.DataFrame]) -> None:
    """Replace the hour's rows of every hourly table and prune what is older than
    `warehouse.HOURLY_KEEP_DAYS`, inside the caller's transaction."""
    horizon = at - timedelta(days=warehouse.HOURLY_KEEP_DAYS)
    for table in warehouse.PER_HOUR:
        con.execute(f"DELETE FROM {table} WHERE hour = ? OR hour < ?", [at, horizon])
    con.execute("DELETE FROM hourly_runs WHERE hour < ?", [horizon])
    warehouse.insert_frames(con, "hour", at, frames)
