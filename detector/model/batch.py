"""The steps `score`, `train` and `nightly` share: logs -> store -> window -> scored window.

`score` and `train` take log files, not a store: they ingest them into a private store first
(the same validation, deduplication and quarantine as `distillguard ingest`, so every input
format works and bad rows are counted and kept, never fatal), then featurise the window that
spans all the days in it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from detector.linking import ClusterConfig, Clusters, LinkConfig, cluster, link, link_with
from features import ingest as ingest_mod
from features import pipeline
from features.aggregate import feature_sql

LABEL_COLUMNS = {"account_id": pl.String, "label": pl.Int8, "campaign": pl.String}


@dataclass(frozen=True)
class WindowData:
    """Everything a model needs about one window."""

    window: pipeline.Window
    features: pl.DataFrame
    edges: pl.DataFrame
    clusters: Clusters
    activity: pl.DataFrame  # account_id, first_seen, last_seen, n_requests
    n_requests: int


def load_logs(
    requests: list[Path],
    accounts: list[Path],
    store: Path,
    progress: Callable[[int], None] | None = None,
) -> dict[str, ingest_mod.Counts]:
    """Ingest request and account files into `store`; the per-table counts. Raises
    `features.sources.SourceError` (or ValueError) naming an unreadable path or wrong schema."""
    counts: dict[str, ingest_mod.Counts] = {}
    for table, paths in (("requests", requests), ("accounts", accounts)):
        if not paths:
            continue
        opts = ingest_mod.Options(table=table)
        planned = ingest_mod.plan(paths, opts)
        report = ingest_mod.run(paths, store, opts, progress, planned=planned)
        counts[table] = report.counts[table]
    return counts


def span(store: Path) -> pipeline.Window | None:
    """The window covering every day partition of the store's requests (None when empty)."""
    days = sorted(
        date.fromisoformat(p.name.removeprefix("dt="))
        for p in (store / "requests").glob("dt=*")
        if any(p.glob("*.parquet"))
    )
    if not days:
        return None
    return pipeline.Window(days[-1], (days[-1] - days[0]).days + 1)


def featurise(
    store: Path,
    window: pipeline.Window,
    progress: Callable[[int], None] | None = None,
    link_cfg: LinkConfig = LinkConfig(),
    cluster_cfg: ClusterConfig = ClusterConfig(),
) -> WindowData | None:
    """Features, typed links, clusters and activity of one window (None without requests)."""
    with pipeline.window_relations(store, window, progress) as con:
        if con is None:
            return None
        sql = feature_sql("signals", "accounts", window.start_s, window.end_s, "firsts")
        feats = pl.from_arrow(con.sql(sql).to_arrow_table())
        edges = link(con, feats, link_cfg)
        activity = pl.from_arrow(con.sql(ACTIVITY_SQL).to_arrow_table())
    return window_data(window, feats, edges, activity, cluster_cfg)


ACTIVITY_SQL = (
    "SELECT account_id, min(t_s) AS first_s, max(t_s) AS last_s, count(*) AS n_requests "
    "FROM signals GROUP BY account_id"
)


def window_data(window, feats, edges, activity, cluster_cfg=ClusterConfig()) -> WindowData | None:
    """Clusters the linked accounts and assembles the window (any engine's outputs)."""
    if feats.is_empty():
        return None
    activity = activity.select(
        "account_id",
        *(
            pl.from_epoch((pl.col(f"{end}_s") * 1e6).round().cast(pl.Int64), "us")
            .dt.replace_time_zone("UTC")
            .alias(f"{end}_seen")
            for end in ("first", "last")
        ),
        pl.col("n_requests").cast(pl.Int64),
    ).sort("account_id")
    clusters = cluster(feats["account_id"], edges, cluster_cfg)
    return WindowData(window, feats, edges, clusters, activity, int(activity["n_requests"].sum()))


def featurise_spark(
    spark,
    store_uri: str,
    window: pipeline.Window,
    link_cfg: LinkConfig = LinkConfig(),
    cluster_cfg: ClusterConfig = ClusterConfig(),
) -> WindowData | None:
    """`featurise` with the features and link candidates computed by Spark from a store at any
    Hadoop-compatible path; clustering and everything after run here on the (small) edges."""
    from features import spark as engine

    feats = engine.features(spark, store_uri, window)
    if feats.is_empty():
        return None

    def run(sql: str) -> pl.DataFrame:
        return engine.collect(spark.sql(engine.to_spark(sql)))

    edges = link_with(run, feats, link_cfg)
    activity = run(ACTIVITY_SQL)
    return window_data(window, feats, edges, activity, cluster_cfg)


def read_labels(path: Path) -> pl.DataFrame:
    """The labels table (Parquet or JSON Lines): account_id, label (0/1), optional campaign.
    Raises ValueError naming the file and what is wrong; rows with a missing account or a label
    other than 0/1 are dropped; the last row of a repeated account wins."""
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    try:
        if path.suffix in (".jsonl", ".json", ".ndjson"):
            frame = pl.read_ndjson(path, infer_schema_length=None)
        else:
            frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several error types for unreadable input
        raise ValueError(f"{path}: cannot read labels ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in ("account_id", "label") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: labels table lacks column(s) {missing}; has {frame.columns}")
    if "campaign" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("campaign"))
    frame = frame.select(
        pl.col("account_id").cast(pl.String),
        pl.col("label").cast(pl.Int8, strict=False),
        pl.col("campaign").cast(pl.String),
    )
    good = frame.filter(pl.col("account_id").is_not_null() & pl.col("label").is_in([0, 1]))
    return good.unique("account_id", keep="last", maintain_order=True)


__all__ = ["WindowData", "featurise", "load_logs", "read_labels", "span"]
