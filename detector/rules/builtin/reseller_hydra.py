"""A reseller's hydra: many linked accounts sending distillation-style traffic."""

import polars as pl

from detector.rules import Case, Rule
from detector.rules.expressions import distillation_share


def condition(t):
    linked = (pl.col("deg_payment") > 0) | (pl.col("deg_source_subnet") > 0)
    via_reseller = pl.col("signup_channel") == "reseller"
    return (
        (linked | via_reseller)
        & (pl.col("cluster_size") >= t["min_cluster"])
        & (distillation_share() >= t["min_distillation_share"])
    )


RULE = Rule(
    id="reseller_hydra",
    title="Hydra: linked accounts harvesting outputs",
    severity="high",
    subject="account",
    table="accounts",
    thresholds={"min_cluster": 5, "min_distillation_share": 0.3},
    condition=condition,
    description=(
        "The reports describe reseller proxies running thousands of accounts on shared payment "
        "methods and proxy ranges, load-balancing distillation traffic across them. Fires on an "
        "account that shares a payment method or source range with others (or came through a "
        "reseller), sits in a cluster of at least `min_cluster`, and sends at least "
        "`min_distillation_share` of its requests as reasoning elicitation, trace "
        "reconstruction, grading, rewrites or self-instruct generation."
    ),
    runbook=(
        "Open the account's campaign: the payment and range evidence name what is shared. "
        "Check that the traffic is harvesting (sample prompts ask for step-by-step reasoning or "
        "scores) rather than the customer's product, then confirm the campaign."
    ),
    false_positives=(
        "A company with several workspaces on one card running reasoning-heavy evaluations",
        "A reseller whose end users happen to be data-labelling shops",
    ),
    gaps=(
        "Hydras on residential proxies with one card per account share no link",
        "Cover traffic that keeps the distillation share under the threshold",
    ),
    version=1,
    mode="shadow",
    evidence=("cluster_size", "deg_payment", "deg_source_subnet", "signup_channel"),
    cases=(
        Case(
            "hydra member on a shared card",
            "fires",
            "campaign",
            {"deg_payment": 4.0, "cluster_size": 120.0, "share_elicitation": 0.6},
        ),
        Case(
            "reseller sign-up, grading traffic",
            "fires",
            "campaign",
            {"signup_channel": "reseller", "cluster_size": 30.0, "share_grading": 0.5},
        ),
        Case(
            "company workspaces on one card",
            "quiet",
            "lookalike",
            {"deg_payment": 3.0, "cluster_size": 6.0, "share_agentic": 0.7, "share_grading": 0.02},
        ),
        Case(
            "reseller proxying many end users",
            "quiet",
            "lookalike",
            {"signup_channel": "reseller", "cluster_size": 8.0, "end_user_share": 0.9},
        ),
        Case("lone account", "quiet", "ordinary", {"share_elicitation": 0.5}),
    ),
)
