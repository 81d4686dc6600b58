"""Linked accounts using the model as a reward model."""

import polars as pl

from detector.rules import Case, Rule


def condition(t):
    return (
        (pl.col("share_grading") >= t["min_grading_share"])
        & (pl.col("cluster_size") >= t["min_cluster"])
        & (pl.col("n_requests") >= t["min_requests"])
    )


RULE = Rule(
    id="rubric_grading_farm",
    title="Rubric grading across linked accounts",
    severity="medium",
    subject="account",
    table="accounts",
    thresholds={"min_grading_share": 0.5, "min_cluster": 3, "min_requests": 200},
    condition=condition,
    description=(
        "Rubric-based grading turns the model into a reward model for someone else's training. "
        "Fires on an account whose requests are at least `min_grading_share` grading against a "
        "rubric, with at least `min_requests` requests, in a cluster of at least `min_cluster`: "
        "one judge product is one account, a grading farm is many."
    ),
    runbook=(
        "Read the sample prompts: a judge product grades its own users' outputs on a few "
        "rubrics; a farm grades many task types with the same rubric wording across accounts."
    ),
    false_positives=("A labelling vendor that runs one workspace per client on one card",),
    gaps=("Low-and-slow graders that share nothing and paraphrase their rubrics",),
    version=1,
    mode="shadow",
    evidence=("share_grading", "cluster_size", "n_requests"),
    cases=(
        Case(
            "grading farm member",
            "fires",
            "campaign",
            {"share_grading": 0.8, "cluster_size": 12.0, "n_requests": 900},
        ),
        Case(
            "LLM-as-judge product",
            "quiet",
            "lookalike",
            {"share_grading": 0.9, "cluster_size": 1.0, "n_requests": 5000},
        ),
    ),
)
