"""How well clusters match known campaigns: purity per campaign and hard-negative merging."""

from __future__ import annotations

import polars as pl


def campaign_cohesion(members: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Per campaign: members, share in its largest cluster, and clusters it is spread over."""
    joined = members.join(labels, on="account_id").filter(pl.col("campaign").is_not_null())
    sizes = joined.group_by("campaign", "cluster").len()
    largest = (
        sizes.filter(pl.col("cluster").is_not_null())
        .group_by("campaign")
        .agg(pl.col("len").max().alias("in_largest"), pl.len().alias("n_clusters"))
    )
    total = joined.group_by("campaign").len().rename({"len": "members"})
    return (
        total.join(largest, on="campaign", how="left")
        .with_columns(
            pl.col("in_largest").fill_null(0),
            pl.col("n_clusters").fill_null(0),
            (pl.col("in_largest").fill_null(0) / pl.col("members")).alias("share_in_largest"),
        )
        .sort("campaign")
    )


def benign_in_campaign_clusters(members: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Legitimate accounts in clusters whose majority are campaign members, per archetype."""
    joined = members.join(labels, on="account_id").filter(pl.col("cluster").is_not_null())
    campaign_clusters = (
        joined.group_by("cluster")
        .agg(pl.col("label").mean().alias("campaign_share"))
        .filter(pl.col("campaign_share") > 0.5)["cluster"]
    )
    return (
        joined.filter(pl.col("cluster").is_in(campaign_clusters.implode()) & (pl.col("label") == 0))
        .group_by("archetype")
        .len()
        .sort("archetype")
    )
