"""The tables `distillguard demo` prints about its world: what tells the archetypes apart, how
the planted campaigns cluster, and what the shipped model flags. Frames in, frames out."""

from __future__ import annotations

import polars as pl

from detector.linking.quality import campaign_cohesion

TELLING = (
    "requests_per_active_day",
    "hour_entropy",
    "share_elicitation",
    "share_grading",
    "newest_model_lag_hours",
    "top_tail_share",
)
"""A few telling features the demo prints per archetype."""


def archetype_medians(features: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Accounts and the median of each telling feature, per archetype."""
    return (
        features.join(labels, on="account_id")
        .group_by("archetype")
        .agg(pl.len().alias("accounts"), *[pl.col(c).median().round(3) for c in TELLING])
        .sort("archetype")
    )


def cohesion(members: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Per planted campaign: the share of its members in its largest cluster."""
    return campaign_cohesion(members, labels)


def flagged_per_archetype(scores: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Accounts and flagged accounts per archetype."""
    return (
        scores.join(labels, on="account_id")
        .group_by("archetype")
        .agg(pl.len().alias("accounts"), pl.col("flagged").sum().alias("flagged"))
        .sort("archetype")
    )


def campaign_summary(campaigns: pl.DataFrame) -> pl.DataFrame:
    """Each campaign with its score, size and first reason."""
    return campaigns.select(
        "campaign_id",
        pl.col("score").round(3),
        "n_accounts",
        "n_flagged",
        pl.col("reasons").list.first().alias("first_reason"),
    )
