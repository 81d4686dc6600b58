"""When a known campaign has grown enough to alert again."""

import polars as pl

from detector.rules import Case, Rule
from detector.rules.expressions import grew_by


def condition(t):
    return pl.col("known") & ~pl.col("dismissed") & grew_by(t["growth"])


RULE = Rule(
    id="campaign_growth",
    title="Known campaign grew",
    severity="medium",
    subject="campaign",
    table="campaign_history",
    thresholds={"growth": 0.2},
    condition=condition,
    description=(
        "A campaign reported on an earlier night raises `campaign.updated` when tonight it has "
        "at least `growth` (a share) more members than on its previous night. Campaigns an "
        "analyst dismissed follow `dismissed_campaign_growth` instead."
    ),
    runbook=(
        "Compare the campaign's nights (campaign page, members per night): new members on the "
        "same payment or ranges mean the operator is adding accounts; act on the new ones."
    ),
    false_positives=(
        "A company onboarding a new team onto its shared card",
        "A class starting its term behind the university's NAT",
    ),
    gaps=("A campaign that replaces accounts one for one never grows",),
    version=1,
    mode="enforce",
    evidence=("n_accounts", "previous_n_accounts"),
    cases=(
        Case(
            "hydra adding accounts",
            "fires",
            "campaign",
            {"known": True, "n_accounts": 60, "previous_n_accounts": 40},
        ),
        Case(
            "steady company workspaces",
            "quiet",
            "lookalike",
            {"known": True, "n_accounts": 11, "previous_n_accounts": 10},
        ),
        Case("new campaign (alerted as detected)", "quiet", "ordinary", {"n_accounts": 30}),
        Case(
            "dismissed and grown a little",
            "quiet",
            "lookalike",
            {"known": True, "dismissed": True, "n_accounts": 13, "previous_n_accounts": 10},
        ),
    ),
)
