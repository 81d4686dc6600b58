"""Linking straight from in-memory frames (tests, notebooks, evaluation) and from a store.

Both register the same relations on DuckDB (`signals`, `accounts`, `firsts`) and call `link`.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from detector.linking import ClusterConfig, Clusters, LinkConfig, cluster, link
from features.aggregate import feature_sql
from features.schema import ACCOUNTS, polars_schema
from features.signals import request_signals, subnet


def prepare_accounts(accounts: pl.DataFrame | None) -> pl.DataFrame:
    """The accounts table with its sign-up range (`signup_subnet`), empty when absent."""
    schema = polars_schema(ACCOUNTS)
    if accounts is None:
        accounts = pl.DataFrame(schema=schema)
    accounts = accounts.with_columns(
        pl.col(c).cast(t) if c in accounts.columns else pl.lit(None, t).alias(c)
        for c, t in schema.items()
    )
    return accounts.with_columns(subnet(pl.col("signup_ip")).alias("signup_subnet"))


def register(
    con: duckdb.DuckDBPyConnection, signals, accounts: pl.DataFrame | None, firsts=None
) -> None:
    """Register `signals` (a frame or a SQL relation text), `accounts` and `firsts`."""
    if isinstance(signals, pl.DataFrame):
        con.register("signals_frame", signals.to_arrow())
        con.execute("CREATE OR REPLACE TEMP VIEW signals AS SELECT * FROM signals_frame")
    else:
        con.execute(f"CREATE OR REPLACE TEMP VIEW signals AS SELECT * FROM {signals}")
    con.register("accounts_frame", prepare_accounts(accounts).to_arrow())
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
            con.sql(feature_sql("signals", "accounts", start_s, end_s, "firsts")).to_arrow_table()
        )
        edges = link(con, features, link_cfg)
    finally:
        con.close()
    return features, edges, cluster(features["account_id"], edges, cluster_cfg)


def signal_files(store: Path, dates) -> list[Path]:
    """Cached signal files of the store for these dates (computing any that are missing)."""
    from features.pipeline import partition_signals

    return [f for day in dates if (f := partition_signals(store, day))]
