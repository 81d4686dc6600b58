"""Linking straight from in-memory frames (tests, notebooks, evaluation).

It registers the relations `features.pipeline.window_relations` gives a store (`signals`,
`accounts`, `firsts`) on DuckDB, then calls `link`.
"""

from __future__ import annotations

import duckdb
import polars as pl

from detector.linking import ClusterConfig, Clusters, LinkConfig, cell_edges, cluster, link
from features.aggregate import feature_sql
from features.signals import request_signals, with_signup_subnet


def register(
    con: duckdb.DuckDBPyConnection, signals, accounts: pl.DataFrame | None, firsts=None
) -> None:
    """Register `signals` (a frame or a SQL relation text), `accounts` and `firsts`."""
    if isinstance(signals, pl.DataFrame):
        con.register("signals_frame", signals.to_arrow())
        con.execute("CREATE OR REPLACE TEMP VIEW signals AS SELECT * FROM signals_frame")
    else:
        con.execute(f"CREATE OR REPLACE TEMP VIEW signals AS SELECT * FROM {signals}")
    con.register("accounts_frame", with_signup_subnet(accounts).to_arrow())
    con.execute("CREATE OR REPLACE TEMP VIEW accounts AS SELECT * FROM accounts_frame")
    if firsts is None:
        con.execute(
            "CREATE OR REPLACE TEMP VIEW firsts AS "
            "SELECT request_model, min(t_s) AS first_t FROM signals GROUP BY request_model"
        )
    else:
        con.register("firsts_frame", firsts.to_arrow())
        con.execute("CREATE OR REPLACE TEMP VIEW firsts AS SELECT * FROM firsts_frame")


def link_frames(
    requests: pl.DataFrame,
    accounts: pl.DataFrame | None,
    start_s: float,
    end_s: float,
    link_cfg: LinkConfig = LinkConfig(),
    cluster_cfg: ClusterConfig = ClusterConfig(),
) -> tuple[pl.DataFrame, pl.DataFrame, Clusters]:
    """Features, edges and clusters of in-memory canonical tables over [start_s, end_s)."""
    con = duckdb.connect()
    try:
        signals = request_signals(requests).filter(
            pl.col("t_s").is_between(start_s, end_s, closed="left")
        )
        register(con, signals, accounts)
        features = pl.from_arrow(
            con.sql(
                feature_sql("signals", "accounts", start_s, end_s, "firsts", duckdb=True)
            ).to_arrow_table()
        )
        edges = link(con, features, link_cfg)
    finally:
        con.close()
    return features, edges, cluster(features["account_id"], cell_edges(edges), cluster_cfg)
