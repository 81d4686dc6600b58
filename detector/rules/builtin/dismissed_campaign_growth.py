"""When a campaign an analyst dismissed has grown enough to be looked at again."""

import polars as pl

from detector.rules import Case, Rule
from detector.rules.expressions import grew_by


def condition(t):
    return pl.col("known") & pl.col("dismissed") & grew_by(t["growth"])


RULE = Rule(
    id="dismissed_campaign_growth",
    title="Dismissed campaign grew a lot",
    severity="medium",
    subject="campaign",
    table="campaign_history",
    thresholds={"growth": 0.5},
    condition=condition,
    description=(
        "A campaign whose current verdict is `dismissed` raises `campaign.updated` only when it "
        "has at least `growth` (a share) more members than on its previous night: an analyst "
        "judged it legitimate, so ordinary growth is not news, but doubling is."
    ),
    runbook=(
        "Read the dismissal's reason (Decisions page), then the new members: when they share "
        "the campaign's links but not the customer's ordinary traffic, reopen it."
    ),
    false_positives=("A dismissed company that doubles its workspaces in a reorganisation",),
    gaps=("A dismissed campaign that is taken over by an operator without growing",),
    version=1,
    mode="enforce",
    evidence=("n_accounts", "previous_n_accounts"),
    cases=(
        Case(
            "dismissed, then doubled",
            "fires",
            "campaign",
            {"known": True, "dismissed": True, "n_accounts": 21, "previous_n_accounts": 10},
        ),
        Case(
            "dismissed company, ordinary growth",
            "quiet",
            "lookalike",
            {"known": True, "dismissed": True, "n_accounts": 13, "previous_n_accounts": 10},
        ),
    ),
)
