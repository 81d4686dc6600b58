"""A linked group moving to a newly released model within a day."""

import polars as pl

from detector.rules import Case, Rule


def condition(t):
    return (
        (pl.col("newest_model_lag_hours") < t["max_lag_hours"])
        & (pl.col("newest_model_share") >= t["min_newest_share"])
        & (pl.col("cluster_size") >= t["min_cluster"])
    )


RULE = Rule(
    id="new_model_rush",
    title="Linked group rushing to a new model",
    severity="medium",
    subject="account",
    table="accounts",
    thresholds={"max_lag_hours": 24.0, "min_newest_share": 0.4, "min_cluster": 5},
    condition=condition,
    description=(
        "One campaign moved half its traffic to a newly released model within 24 hours. Fires "
        "on an account that first used the newest model within `max_lag_hours` of its release "
        "for at least `min_newest_share` of its traffic, in a cluster of at least `min_cluster`."
    ),
    runbook=(
        "Compare the cluster's timeline around the release: a campaign pivots together, in "
        "lockstep, with the same prompts; a product team switches one integration."
    ),
    false_positives=(
        "A benchmark vendor evaluating a new model on release day from several workspaces",
    ),
    gaps=("Campaigns that pivot gradually over a week",),
    version=1,
    mode="shadow",
    evidence=("newest_model_lag_hours", "newest_model_share", "cluster_size"),
    cases=(
        Case(
            "campaign pivot",
            "fires",
            "campaign",
            {"newest_model_lag_hours": 6.0, "newest_model_share": 0.5, "cluster_size": 40.0},
        ),
        Case(
            "benchmark runner on release day",
            "quiet",
            "lookalike",
            {"newest_model_lag_hours": 2.0, "newest_model_share": 0.9, "cluster_size": 1.0},
        ),
        Case("never used the newest model", "quiet", "ordinary", {"cluster_size": 40.0}),
    ),
)
