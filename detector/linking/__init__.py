"""Account linking and campaign clustering.

`link(con, features, cfg)` builds typed edges from the relations `signals` (the window's
request signals), `accounts` and `firsts` (each model's first appearance) registered on a DuckDB
connection, plus the feature table; `cluster(...)` groups accounts with Leiden.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import polars as pl

from detector.linking import lockstep
from detector.linking.cluster import EDGE_SCHEMA, ClusterConfig, Clusters, cluster, combine
from detector.linking.edges import (
    EDGE_TYPES,
    LinkConfig,
    behaviour_edges,
    minhash_sql,
    set_queries,
    shared_value_sql,
    value_queries,
)
from features.aggregate import newest_model_sql
from features.registry import NUMERIC
from features.timing import stage

NEWEST = "CREATE OR REPLACE TEMP VIEW newest AS " + newest_model_sql(
    "firsts", "(SELECT max(t_s) + 1 FROM signals)"
)


def edge_queries(cfg: LinkConfig) -> dict[str, str]:
    """SQL per edge type (all but behaviour), over `signals`, `accounts`, `newest`."""
    queries = {
        name: shared_value_sql(q, EDGE_TYPES[name], cfg) for name, q in value_queries(cfg).items()
    }
    for name, (q, rule) in set_queries(cfg).items():
        queries[name] = minhash_sql(q, EDGE_TYPES[name], cfg, rule)
    return queries


def link(
    con: duckdb.DuckDBPyConnection,
    features: pl.DataFrame,
    cfg: LinkConfig = LinkConfig(),
    types: tuple[str, ...] = tuple(EDGE_TYPES),
) -> pl.DataFrame:
    """All typed edges (src, dst, edge_type, weight, evidence) between accounts, in DuckDB."""

    def run(sql: str) -> pl.DataFrame | None:
        relation = con.sql(sql)
        return None if relation is None else pl.from_arrow(relation.to_arrow_table())

    return link_with(run, features, cfg, types)


def link_with(
    run: Callable[[str], pl.DataFrame | None],
    features: pl.DataFrame,
    cfg: LinkConfig = LinkConfig(),
    types: tuple[str, ...] = tuple(EDGE_TYPES),
) -> pl.DataFrame:
    """`link` on any engine: `run` executes one statement of the DuckDB-dialect SQL (Spark's
    transpiles it) over `signals`, `accounts` and `firsts`, returning its rows."""
    unknown = set(types) - set(EDGE_TYPES)
    if unknown:
        raise ValueError(f"edge types must be among {sorted(EDGE_TYPES)}, got {sorted(unknown)}")
    run(NEWEST)
    frames = []
    for name, sql in edge_queries(cfg).items():
        if name in types:
            with stage(f"links: {name}"):
                frames.append(run(sql).cast(EDGE_SCHEMA))
    if "lockstep" in types:
        with stage("links: lockstep"):
            found = run(lockstep.candidates_sql(cfg.lockstep))
            frames.append(
                lockstep.edges_from(found, cfg.lockstep, EDGE_TYPES["lockstep"].strength).cast(
                    EDGE_SCHEMA
                )
            )
    if "behaviour" in types:
        columns = [c for c in NUMERIC if c in features.columns]
        with stage("links: behaviour"):
            frames.append(behaviour_edges(features, columns, cfg).cast(EDGE_SCHEMA))
    return pl.concat(frames) if frames else pl.DataFrame(schema=EDGE_SCHEMA)


def cell_edges(edges: pl.DataFrame) -> pl.DataFrame:
    """The edges cells are clustered on (`EdgeType.cell_input`). Lockstep joins cells into
    operations instead: on our simulator's bursty legitimate customers (proxy companies,
    education platforms) it links too much to shape cells and the model inputs they give."""
    kinds = [name for name, e in EDGE_TYPES.items() if e.cell_input]
    return edges.filter(pl.col("edge_type").is_in(kinds))


__all__ = [
    "cell_edges",
    "EDGE_TYPES",
    "ClusterConfig",
    "Clusters",
    "LinkConfig",
    "cluster",
    "combine",
    "link",
    "link_with",
]
