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
    return _share_in_largest(total, largest, "n_clusters")


def _share_in_largest(total: pl.DataFrame, largest: pl.DataFrame, spread: str) -> pl.DataFrame:
    """Per campaign: `total` (campaign, members) with `largest` (campaign, in_largest, `spread`
    and any other columns; none for a campaign in no group) and the share in the largest."""
    return (
        total.join(largest, on="campaign", how="left")
        .with_columns(
            pl.col("in_largest").fill_null(0),
            pl.col(spread).fill_null(0),
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


def operation_quality(accounts: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Per planted campaign, against the predicted operations (`campaign_id` of scored
    accounts): members, share in its largest operation, operations it is spread over, and the
    purity of that largest operation (share of its accounts from this campaign)."""
    joined = accounts.select("account_id", "campaign_id").join(
        labels.select("account_id", "campaign"), on="account_id"
    )
    sizes = joined.filter(pl.col("campaign_id").is_not_null()).group_by("campaign_id").len("size")
    counts = (
        joined.filter(pl.col("campaign").is_not_null() & pl.col("campaign_id").is_not_null())
        .group_by("campaign", "campaign_id")
        .len()
        .join(sizes, on="campaign_id")
    )
    largest = (
        counts.sort(["campaign", "len", "campaign_id"], descending=[False, True, False])
        .group_by("campaign", maintain_order=True)
        .agg(
            pl.col("len").first().alias("in_largest"),
            (pl.col("len").first() / pl.col("size").first()).alias("purity"),
            pl.len().alias("n_operations"),
        )
    )
    total = joined.filter(pl.col("campaign").is_not_null()).group_by("campaign").len("members")
    return _share_in_largest(total, largest, "n_operations")


def legitimate_in_operations(accounts: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Legitimate accounts inside any predicted operation, per archetype."""
    return (
        accounts.filter(pl.col("campaign_id").is_not_null())
        .join(labels, on="account_id")
        .filter(pl.col("label") == 0)
        .group_by("archetype")
        .len()
        .sort("archetype")
    )
