"""What the nightly job keeps for analysts beside the scores: the case file of each night.

The dashboard never recomputes features and never reads the raw store, so everything it shows
is written here, bounded in size: requests per account on the run date (every account), hourly
activity over the window (flagged accounts and campaign members only), the links among each
campaign's members, a few redacted sample prompts per campaign, and the tactics each campaign
shows (what it elicits and how its accounts are tied together).
"""

from __future__ import annotations

import polars as pl

from detector.linking.edges import EDGE_TYPES
from detector.redact import redact
from features import store
from features.pipeline import Window

SAMPLES_PER_ACCOUNT = 2
SAMPLES_PER_CAMPAIGN = 24
SAMPLE_CHARS = 20_000
"""Stored sample prompts are cut here; the stored `prompt_chars` keeps the full length."""
TARGET_SHARE = 0.1
"""A campaign is tagged with a target (grading, agentic, ...) when its members' median share of
such requests reaches this; a display tag for filtering, not a detection threshold."""
TARGETS = {
    "share_elicitation": "reasoning elicitation",
    "share_reconstruction": "trace reconstruction",
    "share_grading": "rubric grading",
    "share_rewrite": "censorship-safe rewrite",
    "share_agentic": "agentic / tool use",
    "share_self_instruct": "self-instruct generation",
}


def _files(store_path, window: Window) -> list[str]:
    return [
        str(f)
        for day in window.dates
        for f in sorted((store_path / "requests" / f"dt={day.isoformat()}").glob("*.parquet"))
    ]


def _scan(store_path, window: Window, sql: str, params: list) -> pl.DataFrame:
    files = _files(store_path, window)
    if not files:
        return pl.DataFrame()
    con = store.connect()
    try:
        # window bounds are numbers the code computed, never user text
        con.read_parquet(files, union_by_name=True).filter(
            f"epoch(ts) >= {window.start_s!r} AND epoch(ts) < {window.end_s!r}"
        ).create_view("requests")
        return pl.from_arrow(con.sql(sql, params=params).to_arrow_table())
    finally:
        con.close()


def daily_requests(store_path, window: Window) -> pl.DataFrame:
    """account_id, n_requests, n_tokens on the window's last day, every account that sent one."""
    last = Window(window.end, 1)
    frame = _scan(
        store_path,
        last,
        "SELECT account_id, count(*) AS n_requests, "
        "coalesce(sum(usage_input_tokens), 0) + coalesce(sum(usage_output_tokens), 0) AS n_tokens "
        "FROM requests GROUP BY account_id ORDER BY account_id",
        [],
    )
    if frame.is_empty():
        return pl.DataFrame(
            schema={"account_id": pl.String, "n_requests": pl.Int64, "n_tokens": pl.Int64}
        )
    return frame.with_columns(pl.col("n_requests", "n_tokens").cast(pl.Int64))


def hourly_activity(store_path, window: Window, accounts: list[str]) -> pl.DataFrame:
    """account_id, hour (UTC), n_requests over the window, for the given accounts."""
    schema = {"account_id": pl.String, "hour": pl.Datetime("us", "UTC"), "n_requests": pl.Int64}
    if not accounts:
        return pl.DataFrame(schema=schema)
    frame = _scan(
        store_path,
        window,
        "SELECT account_id, date_trunc('hour', ts) AS hour, count(*) AS n_requests "
        "FROM requests WHERE list_contains(?, account_id) GROUP BY ALL ORDER BY ALL",
        [accounts],
    )
    if frame.is_empty():
        return pl.DataFrame(schema=schema)
    return frame.cast(schema)


def samples(store_path, window: Window, members: pl.DataFrame) -> pl.DataFrame:
    """Up to SAMPLES_PER_ACCOUNT requests of each member, at most SAMPLES_PER_CAMPAIGN per
    campaign, picked by a hash of the request id (the same on a rerun), redacted and cut."""
    schema = {
        "campaign_id": pl.String,
        "account_id": pl.String,
        "request_id": pl.String,
        "ts": pl.Datetime("us", "UTC"),
        "request_model": pl.String,
        "prompt": pl.String,
        "prompt_chars": pl.Int64,
        "response": pl.String,
    }
    if members.is_empty():
        return pl.DataFrame(schema=schema)
    picked = _scan(
        store_path,
        window,
        "SELECT account_id, request_id, ts, request_model, prompt, response FROM requests "
        "WHERE list_contains(?, account_id) "
        "QUALIFY row_number() OVER "
        "(PARTITION BY account_id ORDER BY hash(request_id), request_id) <= ?",
        [members["account_id"].to_list(), SAMPLES_PER_ACCOUNT],
    )
    if picked.is_empty():
        return pl.DataFrame(schema=schema)
    picked = (
        members.select("campaign_id", "account_id")
        .join(picked, on="account_id")
        .sort("campaign_id", "account_id", "request_id")
        .group_by("campaign_id", maintain_order=True)
        .head(SAMPLES_PER_CAMPAIGN)
    )
    cut = pl.col("prompt").fill_null("")
    return (
        picked.with_columns(
            cut.str.len_chars().cast(pl.Int64).alias("prompt_chars"),
            cut.str.slice(0, SAMPLE_CHARS)
            .map_elements(redact, return_dtype=pl.String)
            .alias("prompt"),
            pl.col("response")
            .str.slice(0, SAMPLE_CHARS)
            .map_elements(redact, return_dtype=pl.String, skip_nulls=True),
        )
        .select(list(schema))
        .cast(schema)
    )


def campaign_links(edges: pl.DataFrame, members: pl.DataFrame) -> pl.DataFrame:
    """The typed links with both ends in the same campaign: campaign_id, src, dst, edge_type,
    weight, evidence."""
    ends = members.select("campaign_id", "account_id")
    return (
        edges.join(ends.rename({"account_id": "src"}), on="src")
        .join(ends.rename({"account_id": "dst", "campaign_id": "c2"}), on="dst")
        .filter(pl.col("campaign_id") == pl.col("c2"))
        .select("campaign_id", "src", "dst", "edge_type", "weight", "evidence")
        .sort("campaign_id", "src", "dst", "edge_type")
    )


def tactics(features: pl.DataFrame, members: pl.DataFrame, links: pl.DataFrame) -> pl.DataFrame:
    """campaign_id, tactics: the targets its members' median shares reach and the link types
    (readable names) that tie its members together."""
    shares = [c for c in TARGETS if c in features.columns]
    medians = (
        members.select("campaign_id", "account_id")
        .join(features.select("account_id", *shares), on="account_id", how="left")
        .group_by("campaign_id")
        .agg(pl.col(shares).median())
    )
    tags: dict[str, list[str]] = {}
    for row in medians.iter_rows(named=True):
        tags[row["campaign_id"]] = [TARGETS[c] for c in shares if (row[c] or 0.0) >= TARGET_SHARE]
    for cid, kind in links.select("campaign_id", "edge_type").unique().sort(pl.all()).iter_rows():
        tags.setdefault(cid, []).append(EDGE_TYPES[kind].meaning)
    return pl.DataFrame(
        {"campaign_id": list(tags), "tactics": list(tags.values())},
        schema={"campaign_id": pl.String, "tactics": pl.List(pl.String)},
    )
