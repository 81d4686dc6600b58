"""When a link cluster is reported as a campaign."""

import polars as pl

from detector.rules import Case, Rule


def condition(t):
    flagged = pl.col("n_flagged")
    head = pl.col("head_score") > pl.col("head_threshold")
    return (flagged >= t["min_flagged"]) | ((flagged >= t["min_flagged_with_head"]) & head)


RULE = Rule(
    id="campaign_report",
    title="Linked cluster with flagged members",
    severity="high",
    subject="campaign",
    table="clusters",
    thresholds={"min_flagged": 2, "min_flagged_with_head": 1},
    condition=condition,
    description=(
        "A cluster of accounts joined by shared payment, sign-up or source ranges, templates or "
        "timing is reported as a campaign when at least `min_flagged` of its members are flagged, "
        "or `min_flagged_with_head` is and the model's campaign head scores the whole cluster "
        "above its own threshold. Every member carries the campaign id, flagged or not."
    ),
    runbook=(
        "Open the campaign page: read what links the members (evidence by link type), the "
        "sample prompts and the timeline. Confirm when the shared infrastructure and the "
        "traffic both point at one operator harvesting outputs; dismiss when the link is "
        "ordinary (one company's workspaces, a university NAT) and the traffic is the product's."
    ),
    false_positives=(
        "A company with several workspaces on one card where two members run heavy eval jobs",
        "A university behind one NAT where a lab's accounts are flagged",
    ),
    gaps=(
        "Operations spread over cells that share nothing are reported cell by cell",
        "A campaign whose accounts share no link is not reported (its accounts still are)",
    ),
    version=1,
    mode="enforce",
    evidence=("n_accounts", "n_flagged", "head_score"),
    cases=(
        Case("hydra cell, many flagged", "fires", "campaign", {"n_accounts": 40, "n_flagged": 31}),
        Case(
            "one flagged member, head sure of the cluster",
            "fires",
            "campaign",
            {"n_accounts": 6, "n_flagged": 1, "head_score": 0.9, "head_threshold": 0.5},
        ),
        Case(
            "company workspaces on one card, one heavy user flagged",
            "quiet",
            "lookalike",
            {"n_accounts": 5, "n_flagged": 1, "head_score": 0.1, "head_threshold": 0.5},
        ),
        Case("university NAT, nobody flagged", "quiet", "lookalike", {"n_accounts": 300}),
    ),
)
