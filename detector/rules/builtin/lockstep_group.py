"""Accounts dispatched in lockstep, sending distillation-style traffic."""

import polars as pl

from detector.rules import Case, Rule
from detector.rules.expressions import distillation_share


def condition(t):
    return (
        (pl.col("deg_synchrony") > 0)
        & (pl.col("cluster_size") >= t["min_cluster"])
        & (distillation_share() >= t["min_distillation_share"])
    )


RULE = Rule(
    id="lockstep_group",
    title="Lockstep group harvesting outputs",
    severity="medium",
    subject="account",
    table="accounts",
    thresholds={"min_cluster": 5, "min_distillation_share": 0.2},
    condition=condition,
    description=(
        "Synchronised timing across accounts is one of the tactics reported. Fires on an "
        "account linked to others by synchronous activity, in a cluster of at least "
        "`min_cluster`, with at least `min_distillation_share` distillation-style requests."
    ),
    runbook=(
        "Open the account's hours heatmap beside its campaign's: lockstep accounts light the "
        "same hours; then read the samples for harvesting."
    ),
    false_positives=(
        "CI pipelines of one company that run on the same schedule and grade test outputs",
    ),
    gaps=("Swarms whose pairs share only a few percent of their bursts",),
    version=1,
    mode="shadow",
    evidence=("deg_synchrony", "cluster_size"),
    cases=(
        Case(
            "lockstep swarm member",
            "fires",
            "campaign",
            {"deg_synchrony": 3.0, "cluster_size": 25.0, "share_elicitation": 0.4},
        ),
        Case(
            "nightly CI jobs on one schedule",
            "quiet",
            "lookalike",
            {"deg_synchrony": 5.0, "cluster_size": 8.0, "share_agentic": 0.8},
        ),
    ),
)
