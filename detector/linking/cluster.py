"""Campaign clusters: Leiden community detection on the weighted account graph, with evidence.

Edges of all types between the same two accounts add up; Leiden (igraph's implementation) finds
communities under the Constant Potts Model: a group stays together when its internal link weight
per pair of members exceeds the resolution. Unlike modularity, CPM has no resolution limit, so a
dense campaign of ten accounts is not swallowed by a large, loosely linked crowd. Accounts without
links stay alone (no cluster). Each cluster carries the link types that hold it together and the
values its members share.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import igraph as ig
import numpy as np
import polars as pl

EDGE_SCHEMA = {
    "src": pl.String,
    "dst": pl.String,
    "edge_type": pl.String,
    "weight": pl.Float64,
    "evidence": pl.String,
}


@dataclass(frozen=True)
class ClusterConfig:
    """Leiden settings. `resolution` is the CPM density a cluster must exceed (higher: smaller,
    tighter clusters); edges lighter than `min_weight` (after summing types) are left out."""

    resolution: float = 0.05
    min_weight: float = 0.15
    seed: int = 7
    iterations: int = 2

    def __post_init__(self) -> None:
        if self.resolution <= 0:
            raise ValueError(f"resolution must be positive, got {self.resolution}")


@dataclass(frozen=True)
class Clusters:
    """Cluster assignment (account_id, cluster, cluster_size) and per-cluster evidence."""

    members: pl.DataFrame
    evidence: pl.DataFrame


def ordered_sum(frame: pl.DataFrame, keys: list[str], value: str, *extra: pl.Expr) -> pl.DataFrame:
    """Sum of `value` per `keys` (with any `extra` aggregations), the same to the last bit on
    every run: each group's values are added in sorted order. A plain group-by sums in the
    order its threads happen to deliver rows, and float addition is not associative; reruns of
    a night then differed in the last digits of link weights."""
    return (
        frame.sort([*keys, value])
        .group_by(keys, maintain_order=True)
        .agg(pl.col(value).sum(), *extra)
    )


def combine(edges: pl.DataFrame) -> pl.DataFrame:
    """One row per account pair: summed weight and the types that link them."""
    return ordered_sum(
        edges, ["src", "dst"], "weight", pl.col("edge_type").unique().sort().alias("edge_types")
    )


def cluster(
    accounts: pl.Series, edges: pl.DataFrame, cfg: ClusterConfig = ClusterConfig()
) -> Clusters:
    """Leiden communities over `accounts` joined by `edges` (typed, possibly several per pair)."""
    ids = accounts.unique().sort()
    pairs = combine(edges).filter(pl.col("weight") >= cfg.min_weight)
    index = pl.DataFrame({"account_id": ids, "i": np.arange(len(ids), dtype=np.int64)})
    coded = pairs.join(index.rename({"account_id": "src", "i": "a"}), on="src").join(
        index.rename({"account_id": "dst", "i": "b"}), on="dst"
    )
    graph = ig.Graph(
        n=len(ids), edges=np.column_stack([coded["a"], coded["b"]]).tolist(), directed=False
    )
    graph.es["weight"] = coded["weight"].to_list()
    ig.set_random_number_generator(random.Random(cfg.seed))
    try:
        partition = graph.community_leiden(
            objective_function="CPM",
            weights="weight",
            resolution=cfg.resolution,
            n_iterations=cfg.iterations,
        )
    finally:
        ig.set_random_number_generator(random)
    membership = np.asarray(partition.membership)
    members = pl.DataFrame({"account_id": ids, "community": membership}).with_columns(
        pl.len().over("community").alias("cluster_size")
    )
    named = (
        members.filter(pl.col("cluster_size") > 1)
        .group_by("community")
        .agg(pl.col("account_id").min().alias("first"))
        .sort("first")
        .with_row_index("n")
        .select(
            "community", pl.format("c{}", pl.col("n").cast(pl.String).str.zfill(5)).alias("cluster")
        )
    )
    members = members.join(named, on="community", how="left").select(
        "account_id",
        "cluster",
        pl.when(pl.col("cluster").is_not_null()).then("cluster_size").otherwise(1),
    )
    return Clusters(members=members.sort("account_id"), evidence=evidence(members, edges))


def evidence(members: pl.DataFrame, edges: pl.DataFrame) -> pl.DataFrame:
    """Per cluster and link type: edges inside the cluster, their weight and top shared values."""
    inside = (
        edges.join(
            members.select("account_id", pl.col("cluster").alias("c1")),
            left_on="src",
            right_on="account_id",
        )
        .join(
            members.select("account_id", pl.col("cluster").alias("c2")),
            left_on="dst",
            right_on="account_id",
        )
        .filter(pl.col("c1").is_not_null() & (pl.col("c1") == pl.col("c2")))
    )
    inside = inside.rename({"c1": "cluster"})
    # the three most shared values, ties broken by value so reruns give the same evidence
    top = (
        inside.group_by("cluster", "edge_type", "evidence")
        .len()
        .sort(["cluster", "edge_type", "len", "evidence"], descending=[False, False, True, False])
        .group_by("cluster", "edge_type", maintain_order=True)
        .agg(pl.col("evidence").head(3).alias("top_values"))
    )
    return (
        ordered_sum(inside, ["cluster", "edge_type"], "weight", pl.len().alias("n_edges"))
        .select("cluster", "edge_type", "n_edges", "weight")
        .join(top, on=["cluster", "edge_type"], how="left")
        .sort(["cluster", "weight", "edge_type"], descending=[False, True, False])
    )
