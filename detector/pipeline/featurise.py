"""One window of a store, ready for a model: features, typed links, clusters and activity.

`score`, `train` and `nightly` all featurise through here, locally (`featurise`, DuckDB over
the store's cached signals) or on Spark (`featurise_spark`); `window_data` assembles either
engine's outputs the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from detector.linking import (
    ClusterConfig,
    Clusters,
    LinkConfig,
    cell_edges,
    cluster,
    link,
    link_with,
    lockstep,
    operations,
)
from detector.pipeline import surges
from features import pipeline
from features.timing import stage


@dataclass(frozen=True)
class WindowData:
    """Everything a model needs about one window."""

    window: pipeline.Window
    features: pl.DataFrame
    edges: pl.DataFrame
    clusters: Clusters
    activity: pl.DataFrame  # account_id, first_seen, last_seen, n_requests
    n_requests: int
    recent: pl.DataFrame | None = None  # surges.PER_ACCOUNT: the window's last hours
    elements: pl.DataFrame | None = None  # operations.ELEMENTS: fingerprint values shared
    minutes: pl.DataFrame | None = None  # lockstep.MINUTES: each account's active windows


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
        feats = pipeline.aggregate(con, window)
        edges = link(con, feats, link_cfg)
        with stage("activity"):
            activity = pl.from_arrow(con.sql(ACTIVITY_SQL).to_arrow_table())
        with stage("surges: recent activity"):
            recent = pl.from_arrow(
                con.sql(surges.account_sql(window.start_s, window.end_s)).to_arrow_table()
            )
        with stage("operations: fingerprint elements"):
            elements = pl.from_arrow(con.sql(elements_sql(link_cfg)).to_arrow_table())
        with stage("operations: active windows"):
            minutes = pl.from_arrow(
                con.sql(lockstep.minutes_sql(link_cfg.lockstep)).to_arrow_table()
            )
    return window_data(window, feats, edges, activity, cluster_cfg, recent, elements, minutes)


def elements_sql(cfg: LinkConfig) -> str:
    return operations.elements_sql(cfg.max_sharing, cfg.switch_max_lag_h)


ACTIVITY_SQL = (
    "SELECT account_id, min(t_s) AS first_s, max(t_s) AS last_s, count(*) AS n_requests "
    "FROM signals GROUP BY account_id"
)


def window_data(
    window,
    feats,
    edges,
    activity,
    cluster_cfg=ClusterConfig(),
    recent=None,
    elements=None,
    minutes=None,
) -> WindowData | None:
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
    with stage("clusters (Leiden) and evidence"):
        clusters = cluster(feats["account_id"], cell_edges(edges), cluster_cfg)
    return WindowData(
        window,
        feats,
        edges,
        clusters,
        activity,
        int(activity["n_requests"].sum()),
        recent,
        None if elements is None else elements.cast(operations.ELEMENTS),
        None if minutes is None else minutes.cast(lockstep.MINUTES),
    )


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
    recent = run(surges.account_sql(window.start_s, window.end_s))
    elements = run(elements_sql(link_cfg))
    minutes = run(lockstep.minutes_sql(link_cfg.lockstep))
    return window_data(window, feats, edges, activity, cluster_cfg, recent, elements, minutes)


__all__ = ["WindowData", "featurise", "featurise_spark", "span", "window_data"]
