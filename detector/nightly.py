"""The nightly job: one day's store -> features -> links -> scores -> campaigns -> warehouse.

`run_date` scores the window ending on a date and replaces that date's results in the warehouse
in one transaction, with its alerts queued in the outbox of the same transaction; alerts are
sent after the commit. Event ids derive from what the event is about, so a rerun queues nothing
new and a receiver never sees a rerun as news.

What is alerted: a campaign id seen for the first time (`campaign.detected`); a known campaign
for which an enforced rule on the `campaign_history` table fires (`campaign.updated`; the shipped
`campaign_growth`: at least 20% more members than its previous night, and
`dismissed_campaign_growth`: 50% for one an analyst dismissed); an account newly flagged that is
not on the allow-list (`account.flagged`). Every rule hit of the night (enforced or shadow) is
written to `rule_hits` with the rule's id, version and mode; rule modes are the analysts'
(`rule_modes`) over the rule files' defaults.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

import polars as pl

from detector import rules, warehouse
from detector.alerts import webhooks
from detector.model import artifact
from detector.pipeline import casefile, featurise, scoring
from features import failpoints, pipeline
from features.timing import stage
from features.version import FEATURE_SET


class NoData(RuntimeError):
    """No requests stored for the date."""


@dataclass(frozen=True)
class Outcome:
    run_date: date
    n_accounts: int
    n_flagged: int
    n_review: int  # held for review: not corroborated by every view, or unfamiliar and unlinked
    n_campaigns: int
    n_alerts: int
    seconds: float
    warning: str | None = None  # `scoring.traffic_warning`: the night looks unlike validation
    n_new_alerts: int = 0  # events no earlier run (hourly or nightly) had raised


def local_store(store: Path | str) -> Path | None:
    """The store as a local folder, or None for a URI only Spark reads (hdfs://, s3a://, ...)."""
    text = str(store)
    if text.startswith("file://"):
        return Path(text.removeprefix("file://"))
    return None if "://" in text else Path(text)


def run_date(
    store: Path | str,
    day: date,
    warehouse_path: Path,
    window_days: int = 7,
    model: Path | None = None,
    endpoints: list[webhooks.Endpoint] | None = None,
    progress=None,
    spark=None,
    rules_dir: Path | None = None,
) -> Outcome:
    """Score one date into the warehouse. Raises NoData when the date has no requests.

    With a SparkSession `spark`, features and link candidates are computed by Spark from
    `store` (a folder or any Hadoop-compatible URI); the case file's raw-request parts (daily
    and hourly counts, sample prompts) are read from the store only when it is a local folder.
    `rules_dir`: a folder of the provider's own rule files, beside the shipped rules.
    """
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    folder = local_store(store)
    if folder is not None and not any(
        (folder / "requests" / f"dt={day.isoformat()}").glob("*.parquet")
    ):
        raise NoData(f"{store}: no requests stored for {day}")
    endpoints = endpoints or []
    try:
        fitted, _ = artifact.load(model)
        ruleset = rules.load(rules_dir, warehouse.rule_modes(warehouse_path))
        window = pipeline.Window(day, window_days)
        if spark is None:
            data = featurise.featurise(folder, window, progress)
        else:
            data = featurise.featurise_spark(spark, str(store), window)
        if data is None:
            raise NoData(f"{store}: no requests between {window.dates[0]} and {day}")
        scored = scoring.score_data(fitted, data, ruleset=ruleset)
        with stage("case file (daily and hourly activity, samples)"):
            case = _case_file(folder, window, data, scored)
        failpoints.hit("nightly.scored")
    except NoData:
        raise
    except Exception as exc:
        record_failure(warehouse_path, day, started_at, f"{type(exc).__name__}: {exc}", endpoints)
        raise
    with warehouse.locked(warehouse_path):
        con = warehouse.open_waiting(warehouse_path, read_only=False, wait_s=120)
        try:
            con.execute("BEGIN TRANSACTION")
            at = datetime.combine(day, dtime(23, 59, 59), UTC)
            history = History.load(con, day, at + timedelta(seconds=1), True, alerted_before=at)
            accounts, campaigns, members, rename = stable_ids(history.members, scored)
            campaigns = campaigns.join(
                case.pop("tactics").with_columns(rename), on="campaign_id", how="left"
            )
            hits = renamed(scored.rule_hits, rename)
            events, growth_hits = events_of(
                con, day, at, accounts, campaigns, history, ruleset, hits
            )
            frames = _frames(accounts, campaigns, members, data)
            frames["campaign_cells"] = scored.cells.with_columns(rename)
            frames["rule_hits"] = pl.concat([hits, growth_hits])
            frames |= {
                name: frame.with_columns(rename) if "campaign_id" in frame.columns else frame
                for name, frame in case.items()
            }
            with stage("warehouse: replace the night"):
                replace_night(con, day, frames)
            n_new = webhooks.remember(con, events, at, "nightly")
            webhooks.enqueue(con, endpoints, events, at)
            warehouse.upsert(
                con,
                "runs",
                {"run_date": day, "status": "ok"}
                | run_row(started_at, model, window_days, data, accounts, campaigns)
                | {"n_alerts": len(events), "seconds": time.perf_counter() - started},
            )
            failpoints.hit("nightly.before_commit")
            con.execute("COMMIT")
            failpoints.hit("nightly.committed")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()
    n_alerts = len(events)
    return Outcome(
        day,
        accounts.height,
        int(accounts["flagged"].sum()),
        int((accounts["status"] == "review").sum()),
        campaigns.height,
        n_alerts,
        time.perf_counter() - started,
        scoring.traffic_warning(fitted, accounts),
        n_new,
    )


def record_failure(
    warehouse_path: Path,
    day: date,
    started_at: datetime,
    error: str,
    endpoints: list[webhooks.Endpoint],
    hour: datetime | None = None,
) -> None:
    """Mark the date's run (the hour's, for the hourly job) failed, its earlier results kept,
    and queue `run.failed`."""
    now = datetime.now(UTC)
    row = {"status": "failed", "started_at": started_at, "finished_at": now}
    row |= {"feature_set": FEATURE_SET, "error": error[:2000]}
    data = {"run_date": day.isoformat(), "error": error[:500]}
    if hour is None:
        table, row, key = "runs", {"run_date": day} | row, f"{day.isoformat()}:"
    else:
        table, row = "hourly_runs", {"hour": hour, "run_date": day} | row
        data, key = data | {"hour": hour.isoformat()}, f"hourly:{hour.isoformat()}:"
    with warehouse.locked(warehouse_path):
        con = warehouse.open_waiting(warehouse_path, read_only=False, wait_s=120)
        try:
            con.execute("BEGIN TRANSACTION")
            warehouse.upsert(con, table, row)
            eid, body = webhooks.event("run.failed", data, key + started_at.isoformat(), now)
            webhooks.enqueue(con, endpoints, [(eid, "run.failed", body)], now)
            con.execute("COMMIT")
        finally:
            con.close()


def stable_ids(previous: pl.DataFrame, scored: scoring.Scored):
    """Scored accounts, campaigns and members under the ids earlier runs gave their campaigns
    (`warehouse.match_ids` against `previous`), and the renaming expression. Campaigns gain
    `merged_from` and `split_from` (`warehouse.lineage`) when operations merged or split."""
    members = scored.accounts.filter(pl.col("campaign_id").is_not_null()).select(
        "campaign_id", "account_id"
    )
    mapping = warehouse.match_ids(members, previous)
    rename = pl.col("campaign_id").replace(mapping)
    members = members.with_columns(rename)
    campaigns = scored.campaigns.with_columns(rename).join(
        warehouse.lineage(members, previous), on="campaign_id", how="left"
    )
    return scored.accounts.with_columns(rename), campaigns, members, rename


def _case_file(
    store: Path | None, window: pipeline.Window, data, scored
) -> dict[str, pl.DataFrame]:
    """The bounded extras the dashboard shows (see `detector.pipeline.casefile`), by tonight's raw ids;
    without a local store, only what the features and links give."""
    members = scored.accounts.filter(pl.col("campaign_id").is_not_null()).select(
        "campaign_id", "account_id"
    )
    watched = scored.accounts.filter(pl.col("flagged") | pl.col("campaign_id").is_not_null())[
        "account_id"
    ].to_list()
    links = casefile.campaign_links(scoring.merge_edges(data.edges, scored.links), members)
    case = {
        "account_features": data.features.drop("feature_set", strict=False),
        "campaign_links": links,
        "tactics": casefile.tactics(data.features, members, links),
    }
    if store is not None:
        case |= {
            "daily_requests": casefile.daily_requests(store, window),
            "hourly_requests": casefile.hourly_activity(store, window, watched),
            "samples": casefile.samples(store, window, members),
        }
    return case


def renamed(hits: pl.DataFrame, rename: pl.Expr) -> pl.DataFrame:
    """Campaign hits under the campaign ids the warehouse keeps across nights (`rename` is an
    expression over `campaign_id`)."""
    return (
        hits.with_columns(pl.col("subject_id").alias("campaign_id"))
        .with_columns(rename)
        .with_columns(
            pl.when(pl.col("subject_kind") == "campaign")
            .then(pl.col("campaign_id"))
            .otherwise(pl.col("subject_id"))
            .alias("subject_id")
        )
        .drop("campaign_id")
    )


def events_of(
    con,
    day: date,
    at: datetime,
    accounts: pl.DataFrame,
    campaigns: pl.DataFrame,
    history: History,
    ruleset: rules.RuleSet,
    surge_hits: pl.DataFrame,
) -> tuple[list[tuple[str, str, str]], pl.DataFrame]:
    """Alert events of a run whose alerts carry the date `day` (the nightly job's and the hourly
    job's alike, so an alert one of them queued is the same event to the other), and the hits of
    the `campaign_history` rules. `surge_hits`: hits on `cluster_surges` under the kept ids."""
    dismissed = {
        r[0]
        for r in con.execute(
            f"SELECT subject_id FROM ({warehouse.CURRENT_VERDICTS}) WHERE subject_kind = 'campaign' "
            "AND verdict = 'dismissed'"
        ).fetchall()
    }
    allowed = {
        r[0]
        for r in con.execute(
            f"SELECT account_id FROM ({warehouse.CURRENT_ALLOWLIST}) "
            "WHERE expires_at IS NULL OR expires_at > ?",
            [at],
        ).fetchall()
    }
    table = rules.tables.campaign_history(campaigns, history.sizes, dismissed, history.known)
    growth_hits = ruleset.run("campaign_history", table)
    fired: dict[str, set[str]] = {}
    for hits in (growth_hits, surge_hits):
        for rid, cid in (
            hits.filter(pl.col("mode") == "enforce").select("rule_id", "subject_id").iter_rows()
        ):
            fired.setdefault(cid, set()).add(rid)
    before = day.isoformat()
    out = []
    for row in campaigns.iter_rows(named=True):
        cid = row["campaign_id"]
        data = {
            "campaign_id": cid,
            "score": row["score"],
            "n_accounts": row["n_accounts"],
            "n_flagged": row["n_flagged"],
            "run_date": before,
            "reasons": row["reasons"],
        }
        if row.get("split_from") is not None:  # a new campaign: detected, with its origin
            data["split_from"] = row["split_from"]
        merged = row.get("merged_from")
        if cid not in history.known:
            eid, body = webhooks.event("campaign.detected", data, cid, at)
            out.append((eid, "campaign.detected", body))
        elif cid in fired or merged:
            data |= {
                "previous_n_accounts": history.sizes.get(cid),
                "rules": sorted(fired.get(cid, ())),
            }
            if merged:
                data["merged_from"] = merged
            eid, body = webhooks.event("campaign.updated", data, f"{cid}:{before}", at)
            out.append((eid, "campaign.updated", body))
    for row in accounts.filter("flagged").iter_rows(named=True):
        account = row["account_id"]
        if account in allowed or account in history.flagged:
            continue
        if history.confirmed is not None and account not in history.confirmed:
            continue  # flagged in this hour's run only: alerted if the next run agrees
        data = {
            "account_id": account,
            "score": row["score"],
            "campaign_id": row["campaign_id"],
            "run_date": before,
            "reasons": row["reasons"],
        }
        eid, body = webhooks.event("account.flagged", data, f"{account}:{before}", at)
        out.append((eid, "account.flagged", body))
    return out, growth_hits


@dataclass(frozen=True)
class History:
    """What earlier runs knew, as a run ending at `until` sees it."""

    members: pl.DataFrame  # latest membership of every campaign (nights and hourly runs)
    sizes: dict[str, int]  # each campaign's size on its previous night
    known: set[str]  # campaigns reported by an earlier night or hourly run
    flagged: set[str]  # accounts already alerted for this date or the day before
    confirmed: set[str] | None = None  # hourly: accounts the previous run flagged too (None:
    # every flagged account is confirmed, as at night)

    @classmethod
    def load(cls, con, day: date, until: datetime, inclusive: bool, alerted_before=None) -> History:
        """As of `until` (hourly runs at it included when `inclusive`); alerts raised before
        `alerted_before` (default `until`) count as sent."""
        members = warehouse.members_as_of(con, day, until, inclusive)
        nights = warehouse.previous_members(con, day.isoformat())
        return cls(
            members,
            dict(nights.group_by("campaign_id").len().iter_rows()),
            set(members["campaign_id"].to_list()),
            warehouse.recently_flagged(con, day, alerted_before or until),
        )


def _frames(accounts, campaigns, members, data) -> dict[str, pl.DataFrame]:
    evidence = data.clusters.evidence
    return {
        "account_scores": accounts.select(
            "account_id", "score", "flagged", "campaign_id", "reasons", "cluster", "status", "cell"
        ),
        "campaigns": campaigns.select(warehouse.CAMPAIGN_COLUMNS),
        "campaign_members": members.select("campaign_id", "account_id"),
        "evidence": evidence.select(
            "cluster", "edge_type", pl.col("n_edges").cast(pl.Int64), "weight", "top_values"
        ),
    }


def replace_night(con, day: date, frames: dict[str, pl.DataFrame]) -> None:
    """Replace the date's rows of every per-date table with `frames` (table -> rows), inside
    the caller's transaction."""
    for table in warehouse.PER_DATE:
        con.execute(f"DELETE FROM {table} WHERE run_date = ?", [day])
    warehouse.insert_frames(con, "run_date", day, frames)


def run_row(started_at, model, window_days, data, accounts, campaigns) -> dict:
    """The manifest columns a night's and an hour's run rows share."""
    return {
        "started_at": started_at,
        "finished_at": datetime.now(UTC),
        "model": str(model or "shipped default"),
        "feature_set": FEATURE_SET,
        "window_days": window_days,
        "n_requests": data.n_requests,
        "n_accounts": accounts.height,
        "n_flagged": int(accounts["flagged"].sum()),
        "n_review": int((accounts["status"] == "review").sum()),
        "n_campaigns": campaigns.height,
        "error": None,
    }
