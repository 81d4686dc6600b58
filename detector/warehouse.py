"""The DuckDB warehouse the nightly job writes and the dashboard reads.

One file. Per-date tables (`account_scores`, `campaigns`, `campaign_members`, `evidence`) are
replaced whole for a date inside one transaction together with its `runs` row and its alert
outbox rows, so a rerun replaces and a run killed at any point leaves either the old or the new
results for that date, never a mix. Analysts' tables (`verdicts`, `allowlist`, `assignments`,
`rule_modes`, `audit_log`) are never touched by the job; `detector.decisions` is their only writer.

Campaign identity: a new night's campaign takes the id of the most recent earlier campaign
with which it shares at least half of the smaller one's members (best overlap first, each
earlier id to one campaign at most), so a campaign that grows keeps its id; otherwise it gets a
fresh id, never one an earlier campaign had (when a campaign splits, the half that did not
inherit the id gets a new one).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from detector.alerts.webhooks import OUTBOX_DDL
from features import failpoints
from features.registry import FEATURES

DDL = """
CREATE TABLE IF NOT EXISTS runs (
    run_date DATE PRIMARY KEY, status VARCHAR, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
    model VARCHAR, feature_set VARCHAR, window_days INTEGER, n_requests BIGINT,
    n_accounts BIGINT, n_flagged BIGINT, n_campaigns BIGINT, n_alerts BIGINT, seconds DOUBLE,
    error VARCHAR
);
CREATE TABLE IF NOT EXISTS account_scores (
    run_date DATE, account_id VARCHAR, score DOUBLE, flagged BOOLEAN, campaign_id VARCHAR,
    reasons VARCHAR[], cluster VARCHAR
);
CREATE TABLE IF NOT EXISTS campaigns (
    run_date DATE, campaign_id VARCHAR, score DOUBLE, n_accounts BIGINT, n_flagged BIGINT,
    first_seen TIMESTAMPTZ, last_seen TIMESTAMPTZ, n_requests BIGINT, reasons VARCHAR[],
    cluster VARCHAR
);
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS tactics VARCHAR[];
ALTER TABLE account_scores ADD COLUMN IF NOT EXISTS status VARCHAR;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS n_review BIGINT;
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS n_cells BIGINT;
ALTER TABLE campaigns ADD COLUMN IF NOT EXISTS attribution VARCHAR[];
ALTER TABLE account_scores ADD COLUMN IF NOT EXISTS cell VARCHAR;
CREATE TABLE IF NOT EXISTS campaign_cells (
    run_date DATE, campaign_id VARCHAR, cell VARCHAR, cluster VARCHAR, n_accounts BIGINT,
    n_flagged BIGINT, score DOUBLE, shares VARCHAR[], joined_by VARCHAR[]
);
CREATE TABLE IF NOT EXISTS campaign_members (run_date DATE, campaign_id VARCHAR, account_id VARCHAR);
CREATE TABLE IF NOT EXISTS campaign_links (
    run_date DATE, campaign_id VARCHAR, src VARCHAR, dst VARCHAR, edge_type VARCHAR, weight DOUBLE,
    evidence VARCHAR
);
CREATE TABLE IF NOT EXISTS samples (
    run_date DATE, campaign_id VARCHAR, account_id VARCHAR, request_id VARCHAR, ts TIMESTAMPTZ,
    request_model VARCHAR, prompt VARCHAR, prompt_chars BIGINT, response VARCHAR
);
CREATE TABLE IF NOT EXISTS daily_requests (run_date DATE, account_id VARCHAR, n_requests BIGINT, n_tokens BIGINT);
CREATE TABLE IF NOT EXISTS hourly_requests (run_date DATE, account_id VARCHAR, hour TIMESTAMPTZ, n_requests BIGINT);
CREATE TABLE IF NOT EXISTS evidence (
    run_date DATE, cluster VARCHAR, edge_type VARCHAR, n_edges BIGINT, weight DOUBLE,
    top_values VARCHAR[]
);
CREATE TABLE IF NOT EXISTS verdicts (
    subject_kind VARCHAR, subject_id VARCHAR, verdict VARCHAR, reason VARCHAR,
    analyst VARCHAR, decided_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS allowlist (
    account_id VARCHAR, reason VARCHAR, analyst VARCHAR, added_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS assignments (
    campaign_id VARCHAR, analyst VARCHAR, assigned_by VARCHAR, assigned_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS rule_hits (
    run_date DATE, rule_id VARCHAR, rule_version BIGINT, mode VARCHAR, subject_kind VARCHAR,
    subject_id VARCHAR, evidence VARCHAR
);
CREATE TABLE IF NOT EXISTS rule_modes (
    rule_id VARCHAR, mode VARCHAR, reason VARCHAR, analyst VARCHAR, changed_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS rule_backtest (
    night DATE, rule_id VARCHAR, rule_version BIGINT, mode VARCHAR, hits BIGINT,
    hits_campaign BIGINT, hits_legit BIGINT, precision DOUBLE, model_overlap DOUBLE,
    backtested_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS hourly_runs (
    hour TIMESTAMPTZ PRIMARY KEY, run_date DATE, status VARCHAR, started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ, model VARCHAR, feature_set VARCHAR, window_days INTEGER,
    n_requests BIGINT, n_accounts BIGINT, n_flagged BIGINT, n_review BIGINT, n_campaigns BIGINT,
    n_new_campaigns BIGINT, n_alerts BIGINT, seconds DOUBLE, store_key VARCHAR, error VARCHAR
);
CREATE TABLE IF NOT EXISTS hourly_scores (
    hour TIMESTAMPTZ, account_id VARCHAR, score DOUBLE, flagged BOOLEAN, status VARCHAR,
    campaign_id VARCHAR, reasons VARCHAR[]
);
CREATE TABLE IF NOT EXISTS hourly_campaigns (
    hour TIMESTAMPTZ, campaign_id VARCHAR, score DOUBLE, n_accounts BIGINT, n_flagged BIGINT,
    first_seen TIMESTAMPTZ, last_seen TIMESTAMPTZ, n_requests BIGINT, reasons VARCHAR[],
    cluster VARCHAR, new BOOLEAN
);
ALTER TABLE hourly_campaigns ADD COLUMN IF NOT EXISTS n_cells BIGINT;
ALTER TABLE hourly_campaigns ADD COLUMN IF NOT EXISTS attribution VARCHAR[];
CREATE TABLE IF NOT EXISTS hourly_members (hour TIMESTAMPTZ, campaign_id VARCHAR, account_id VARCHAR);
CREATE TABLE IF NOT EXISTS hourly_rule_hits (
    hour TIMESTAMPTZ, rule_id VARCHAR, rule_version BIGINT, mode VARCHAR, subject_kind VARCHAR,
    subject_id VARCHAR, evidence VARCHAR
);
CREATE TABLE IF NOT EXISTS audit_log (
    logged_at TIMESTAMPTZ, actor VARCHAR, action VARCHAR, subject_kind VARCHAR, subject_id VARCHAR,
    before VARCHAR, after VARCHAR
);
"""
FEATURES_DDL = (
    "CREATE TABLE IF NOT EXISTS account_features (run_date DATE, account_id VARCHAR, "
    + ", ".join(f"{f.name} {f.dtype}" for f in FEATURES)
    + ")"
)
CAMPAIGN_COLUMNS = (
    "campaign_id",
    "score",
    "n_accounts",
    "n_flagged",
    "first_seen",
    "last_seen",
    "n_requests",
    "reasons",
    "cluster",
    "tactics",
    "n_cells",
    "attribution",
)
"""The columns of `campaigns` besides run_date, in table order."""
PER_DATE = (
    "account_scores",
    "campaigns",
    "campaign_members",
    "campaign_cells",
    "evidence",
    "account_features",
    "campaign_links",
    "samples",
    "daily_requests",
    "hourly_requests",
    "rule_hits",
)
PER_HOUR = ("hourly_scores", "hourly_campaigns", "hourly_members", "hourly_rule_hits")
"""The hourly job's tables, replaced per run (`hour`) and pruned after `HOURLY_KEEP_DAYS`."""
HOURLY_KEEP_DAYS = 14
CURRENT_VERDICTS = (
    "SELECT * FROM verdicts QUALIFY row_number() OVER "
    "(PARTITION BY subject_kind, subject_id ORDER BY decided_at DESC) = 1"
)
"""Verdicts are appended, never updated: a subject's verdict is its latest row."""
CURRENT_ALLOWLIST = (
    "SELECT * FROM allowlist QUALIFY row_number() OVER "
    "(PARTITION BY account_id ORDER BY added_at DESC) = 1"
)
"""Allow-list rows are appended: an account's entry is its latest (removal = expiry now)."""
CURRENT_RULE_MODES = (
    "SELECT * FROM rule_modes QUALIFY row_number() OVER "
    "(PARTITION BY rule_id ORDER BY changed_at DESC) = 1"
)
"""A rule's mode as an analyst last set it (rules nobody changed keep their file's default)."""
DECISIONS = ("verdicts", "allowlist", "assignments", "rule_modes", "audit_log")
"""The analysts' tables: written by the dashboard only, never by the nightly job."""
MIN_OVERLAP = 0.5


class WarehouseLocked(RuntimeError):
    """Another nightly run holds the warehouse's lock."""


@contextmanager
def locked(path: Path):
    """Hold the warehouse's exclusive lock (a `.lock` file beside it) for a run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise WarehouseLocked(f"{path}: another nightly run holds the lock") from exc
        yield


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only)
    if not read_only:
        con.execute(DDL)
        con.execute(FEATURES_DDL)
        con.execute(OUTBOX_DDL)
    return con


class WarehouseBusy(RuntimeError):
    """Another process holds DuckDB's write lock on the warehouse for longer than we waited."""


def open_waiting(path: Path, read_only: bool, wait_s: float = 10.0) -> duckdb.DuckDBPyConnection:
    """`connect`, waiting up to `wait_s` while another process holds the file (the nightly job
    writing a night, an analyst's decision, a dashboard page reading), or while this process
    has it open in the other mode. Raises WarehouseBusy after that, naming which of the two it
    was, and FileNotFoundError when a read-only open finds no warehouse."""
    if read_only and not path.exists():
        raise FileNotFoundError(f"{path}: no warehouse here (run `distillguard nightly` first)")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return connect(path, read_only=read_only)
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            text = str(exc)
            here = "different configuration" in text
            if "lock" not in text.lower() and not here:
                raise
            if time.monotonic() >= deadline:
                holder = (
                    "this process has it open in the other mode (another session's page run)"
                    if here
                    else "another process holds its lock (the nightly job, a decision from "
                    "another server, or a reader)"
                )
                raise WarehouseBusy(f"{path}: busy after {wait_s:.0f} s: {holder}") from exc
            time.sleep(0.1)


def upsert(con: duckdb.DuckDBPyConnection, table: str, row: dict) -> None:
    """INSERT OR REPLACE one row (column -> value) into `table` (a run's manifest row)."""
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    con.execute(f"INSERT OR REPLACE INTO {table} ({columns}) VALUES ({marks})", list(row.values()))


def insert_frames(
    con: duckdb.DuckDBPyConnection, key: str, value, frames: dict[str, pl.DataFrame]
) -> None:
    """Insert each frame into its table (table -> rows) with the column `key` set to `value`
    (a night's run_date, an hour), inside the caller's transaction. Floats are kept to 12
    significant digits: a backstop for sums a parallel engine (DuckDB's aggregates) may add in
    any order, whatever the magnitude."""
    for table, frame in frames.items():
        frame = frame.with_columns(pl.col(pl.Float64).round_sig_figs(12))
        con.register("incoming", frame.with_columns(pl.lit(value).alias(key)).to_arrow())
        columns = ", ".join([key, *frame.columns])
        con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming")
        con.unregister("incoming")


def rule_modes(path: Path) -> dict[str, str]:
    """Rule id -> mode as analysts set them (empty when there is no warehouse yet)."""
    if not path.exists():
        return {}
    con = open_waiting(path, read_only=True, wait_s=120)
    try:
        return dict(con.execute(f"SELECT rule_id, mode FROM ({CURRENT_RULE_MODES})").fetchall())
    except duckdb.CatalogException:  # a warehouse written before rules existed
        return {}
    finally:
        con.close()


def previous_members(con: duckdb.DuckDBPyConnection, before: str) -> pl.DataFrame:
    """campaign_id, account_id of each campaign's most recent night before `before`."""
    return pl.from_arrow(
        con.sql(
            "SELECT campaign_id, account_id FROM campaign_members m WHERE run_date = ("
            "SELECT max(run_date) FROM campaign_members p WHERE p.campaign_id = m.campaign_id "
            "AND p.run_date < ?) ",
            params=[before],
        ).to_arrow_table()
    )


def members_as_of(
    con: duckdb.DuckDBPyConnection, nights_before: date, hours_until, inclusive: bool
):
    """campaign_id, account_id of each campaign's latest membership among the nights before
    `nights_before` and the hourly runs at or before `hours_until` (before it, unless
    `inclusive`). A night counts as of its end (the next midnight, UTC), so a campaign an hourly
    run found keeps its id when the night scores it, and the reverse."""
    hours = "<=" if inclusive else "<"
    return pl.from_arrow(
        con.sql(
            f"""WITH m AS (
                SELECT campaign_id, account_id,
                    (run_date + 1)::TIMESTAMP AT TIME ZONE 'UTC' AS as_of
                FROM campaign_members WHERE run_date < ?
                UNION ALL
                SELECT campaign_id, account_id, hour AS as_of FROM hourly_members WHERE hour {hours} ?
            ), latest AS (SELECT campaign_id, max(as_of) AS as_of FROM m GROUP BY campaign_id)
            SELECT DISTINCT m.campaign_id, m.account_id FROM m JOIN latest USING (campaign_id, as_of)
            ORDER BY 1, 2""",
            params=[nights_before, hours_until],
        ).to_arrow_table()
    )


def recently_flagged(con: duckdb.DuckDBPyConnection, day: date, alerted_before) -> set[str]:
    """Accounts not to alert again as flagged for `day` (an account.flagged alert's id carries
    its date, so these would otherwise alert twice): flagged by the latest night before `day`;
    alerted (`alert_events`) for `day - 1` or `day`; or flagged by an hourly run of those days
    and alerted for an earlier date (flagged on and on since). Only what runs raised before the
    instant `alerted_before` counts: a rerun raises its own alerts again."""
    return {
        r[0]
        for r in con.execute(
            """WITH alerted AS (
                SELECT subject_id AS account_id, run_date FROM alert_events
                WHERE type = 'account.flagged' AND first_at < $before
            )
            SELECT account_id FROM account_scores WHERE flagged AND run_date =
                (SELECT max(run_date) FROM runs WHERE run_date < $day)
            UNION
            SELECT account_id FROM alerted WHERE run_date BETWEEN $day - 1 AND $day
            UNION
            (SELECT s.account_id FROM hourly_scores s JOIN hourly_runs r USING (hour)
                WHERE s.flagged AND r.status = 'ok' AND r.run_date BETWEEN $day - 1 AND $day
                    AND s.hour < $before
             INTERSECT
             SELECT account_id FROM alerted WHERE run_date < $day - 1)""",
            {"day": day, "before": alerted_before},
        ).fetchall()
    }


def flagged_by_previous_run(con: duckdb.DuckDBPyConnection, before) -> set[str] | None:
    """Accounts flagged by the latest successful run before the instant `before`: an hourly run
    of the 24 hours before it, else the latest night that ended by then; None when there is
    neither (nothing to confirm against)."""
    hour = con.execute(
        "SELECT max(hour) FROM hourly_runs WHERE status = 'ok' AND hour < ? "
        "AND hour >= ?::TIMESTAMPTZ - INTERVAL 24 HOUR",
        [before, before],
    ).fetchone()[0]
    if hour is not None:
        query, params = "SELECT account_id FROM hourly_scores WHERE flagged AND hour = ?", [hour]
    else:
        night = con.execute(
            "SELECT max(run_date) FROM runs WHERE status = 'ok' "
            "AND (run_date + 1)::TIMESTAMP AT TIME ZONE 'UTC' <= ?",
            [before],
        ).fetchone()[0]
        if night is None:
            return None
        query = "SELECT account_id FROM account_scores WHERE flagged AND run_date = ?"
        params = [night]
    return {r[0] for r in con.execute(query, params).fetchall()}


def match_ids(current: pl.DataFrame, previous: pl.DataFrame) -> dict[str, str]:
    """Map tonight's campaign ids to earlier ids by member overlap (>= half of the smaller)."""
    if current.is_empty() or previous.is_empty():
        return {}
    sizes_now = current.group_by("campaign_id").len().rename({"len": "n_now"})
    sizes_then = (
        previous.group_by("campaign_id").len().rename({"campaign_id": "old", "len": "n_then"})
    )
    overlap = (
        current.join(previous.rename({"campaign_id": "old"}), on="account_id")
        .group_by("campaign_id", "old")
        .len()
        .join(sizes_now, on="campaign_id")
        .join(sizes_then, on="old")
        .with_columns((pl.col("len") / pl.min_horizontal("n_now", "n_then")).alias("share"))
        .filter(pl.col("share") >= MIN_OVERLAP)
        .sort(["share", "len", "campaign_id", "old"], descending=[True, True, False, False])
    )
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for new, old in overlap.select("campaign_id", "old").iter_rows():
        if new not in mapping and old not in taken:
            mapping[new] = old
            taken.add(old)
    # a campaign that did not inherit an id keeps its own unless that id is an earlier
    # campaign's (a split: both halves share the smallest member); then it gets a fresh one
    earlier = set(previous["campaign_id"].unique().to_list())
    for new in sorted(set(current["campaign_id"].unique().to_list()) - set(mapping)):
        if new in earlier:
            mapping[new] = "cmp_" + hashlib.sha256(f"split:{new}".encode()).hexdigest()[:12]
    return mapping


def lineage(current: pl.DataFrame, previous: pl.DataFrame) -> pl.DataFrame:
    """How tonight's campaigns (`current`, under their kept ids) descend from earlier ones
    (`previous`, the latest membership of each): `merged_from`, the earlier campaigns that no
    longer go on under their own id and most of whose members (>= MIN_OVERLAP) are now in this
    one; `split_from`, for a campaign under a new id, the earlier campaign most of its members
    (>= MIN_OVERLAP) came from while that campaign goes on under its own id. One row per
    campaign with either."""
    schema = {"campaign_id": pl.String, "merged_from": pl.List(pl.String), "split_from": pl.String}
    if current.is_empty() or previous.is_empty():
        return pl.DataFrame(schema=schema)
    ongoing = set(current["campaign_id"].unique().to_list())
    earlier = set(previous["campaign_id"].unique().to_list())
    overlap = (
        current.join(previous.rename({"campaign_id": "old"}), on="account_id")
        .group_by("campaign_id", "old")
        .len()
        .join(current.group_by("campaign_id").len("n_now"), on="campaign_id")
        .join(
            previous.group_by("campaign_id").len("n_then").rename({"campaign_id": "old"}), on="old"
        )
    )
    merged = (
        overlap.filter(
            (pl.col("old") != pl.col("campaign_id"))
            & ~pl.col("old").is_in(list(ongoing))
            & (pl.col("len") >= MIN_OVERLAP * pl.col("n_then"))
        )
        .group_by("campaign_id")
        .agg(pl.col("old").sort().alias("merged_from"))
    )
    split = (
        overlap.filter(
            ~pl.col("campaign_id").is_in(list(earlier))
            & pl.col("old").is_in(list(ongoing))
            & (pl.col("len") >= MIN_OVERLAP * pl.col("n_now"))
        )
        .sort(["campaign_id", "len", "old"], descending=[False, True, False])
        .group_by("campaign_id", maintain_order=True)
        .agg(pl.col("old").first().alias("split_from"))
    )
    return (
        merged.join(split, on="campaign_id", how="full", coalesce=True)
        .select(list(schema))
        .cast(schema)
        .sort("campaign_id")
    )


RUN_TIMINGS = {
    "runs": ("started_at", "finished_at", "seconds"),
    "hourly_runs": ("started_at", "finished_at", "seconds"),
}
"""Columns that record when a run happened and how long it took, not what it found."""


def contents(path: Path, exclude: dict[str, tuple[str, ...]] = RUN_TIMINGS) -> dict[str, list]:
    """Every table's rows in a total order (ORDER BY ALL), without the `exclude`d columns: two
    warehouses hold the same results exactly when their contents are equal."""
    con = connect(path, read_only=True)
    try:
        names = [
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        ]
        out = {}
        for name in sorted(names):
            drop = exclude.get(name)
            select = f"SELECT * EXCLUDE ({', '.join(drop)})" if drop else "SELECT *"
            out[name] = con.execute(f"{select} FROM {name} ORDER BY ALL").fetchall()
        return out
    finally:
        con.close()


def export_parquet(path: Path, out: Path) -> list[Path]:
    """Every table as OUT/<table>.parquet (written beside, then renamed into place)."""
    out.mkdir(parents=True, exist_ok=True)
    con = connect(path, read_only=True)
    written = []
    try:
        names = [
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        ]
        for i, name in enumerate(sorted(names)):
            if i == len(names) // 2:
                failpoints.hit("warehouse.export_half")
            target = out / f"{name}.parquet"
            tmp = out / f".{name}.parquet.tmp"
            con.execute(f"COPY {name} TO '{tmp}' (FORMAT parquet)")
            os.replace(tmp, target)
            written.append(target)
    finally:
        con.close()
    return written
