"""One distillation marker family rising suddenly across linked accounts."""

import polars as pl

from detector.rules import Case, Rule


def condition(t):
    return (
        (pl.col("marker_rise") >= t["min_rise"])
        & (pl.col("marker_accounts") >= t["min_accounts"])
        & (pl.col("recent_requests") >= t["min_recent_requests"])
    )


RULE = Rule(
    id="marker_family_surge",
    title="Marker family surging across a linked group",
    severity="medium",
    subject="campaign",
    table="cluster_surges",
    thresholds={"min_rise": 0.4, "min_accounts": 5, "min_recent_requests": 100},
    condition=condition,
    description=(
        "A linked group whose share of one marker family (reasoning elicitation, trace "
        "reconstruction, rubric grading, rewrites, agentic transcripts, self-instruct) rose by "
        "at least `min_rise` in the window's last hours against its own earlier traffic, with "
        "at least `min_accounts` members sending it and `min_recent_requests` recent requests: "
        "a harvest switching targets, or a new cell starting one."
    ),
    runbook=(
        "Read the cluster's recent sample prompts: one operator sends one template family from "
        "many accounts; a product launch changes what one integration sends. Compare with the "
        "members' earlier weeks."
    ),
    false_positives=(
        "An evaluation vendor starting a new reasoning benchmark from its workspaces",
        "A course whose students all start the same chain-of-thought assignment",
    ),
    gaps=("A campaign that mixes its target families steadily from the start",),
    version=1,
    mode="shadow",
    evidence=("marker_family", "marker_rise", "marker_accounts", "recent_requests", "n_accounts"),
    cases=(
        Case(
            "cell switches to rubric grading",
            "fires",
            "campaign",
            {
                "n_accounts": 30,
                "marker_family": "grading",
                "marker_rise": 0.7,
                "marker_accounts": 25,
                "recent_requests": 2400,
            },
        ),
        Case(
            "two colleagues trying a reasoning prompt",
            "quiet",
            "lookalike",
            {
                "n_accounts": 3,
                "marker_family": "elicitation",
                "marker_rise": 0.8,
                "marker_accounts": 2,
                "recent_requests": 40,
            },
        ),
        Case("steady traffic", "quiet", "ordinary", {"n_accounts": 30, "recent_requests": 900}),
    ),
)
