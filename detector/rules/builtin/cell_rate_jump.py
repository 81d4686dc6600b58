"""A linked cluster's request rate jumping several-fold against its own history."""

import polars as pl

from detector.rules import Case, Rule


def condition(t):
    return (
        (pl.col("rate_ratio") >= t["min_ratio"])
        & (pl.col("recent_requests") >= t["min_recent_requests"])
        & (pl.col("n_accounts") >= t["min_accounts"])
    )


RULE = Rule(
    id="cell_rate_jump",
    title="Linked cluster's rate jumped",
    severity="low",
    subject="campaign",
    table="cluster_surges",
    thresholds={"min_ratio": 5.0, "min_recent_requests": 500, "min_accounts": 3},
    condition=condition,
    description=(
        "A cluster of at least `min_accounts` linked accounts sending, in the window's last "
        "hours, at least `min_ratio` times its own earlier hourly rate and at least "
        "`min_recent_requests` requests: a cell brought online or scaled up. A brand-new "
        "cluster's earlier rate is zero, so a new cell with enough traffic fires too."
    ),
    runbook=(
        "Look at the cluster's members and what links them, then at its model's verdicts: a "
        "jump alone is common (batch jobs, term starts, product launches); it matters beside "
        "flagged members or a marker surge."
    ),
    false_positives=(
        "A company's nightly batch job on its workspaces",
        "A university class starting an assignment behind one NAT",
        "CI pipelines running a templated suite on release",
    ),
    gaps=("Campaigns that ramp up slowly over days",),
    version=1,
    mode="shadow",
    evidence=("rate_ratio", "recent_requests", "n_accounts", "n_flagged"),
    cases=(
        Case(
            "new hydra cell online",
            "fires",
            "campaign",
            {"n_accounts": 50, "rate_ratio": 40.0, "recent_requests": 6000},
        ),
        Case(
            "a small team's busy afternoon",
            "quiet",
            "lookalike",
            {"n_accounts": 4, "rate_ratio": 6.0, "recent_requests": 120},
        ),
        Case(
            "steady cluster",
            "quiet",
            "ordinary",
            {"n_accounts": 40, "rate_ratio": 1.1, "recent_requests": 3000},
        ),
    ),
)
