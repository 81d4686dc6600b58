"""A linked group moving its traffic to a just-released model."""

import polars as pl

from detector.rules import Case, Rule


def condition(t):
    return (
        (pl.col("newest_model_age_hours") <= t["max_release_age_hours"])
        & (pl.col("last_hour_newest_share") >= t["min_hour_share"])
        & (pl.col("n_adopters") >= t["min_adopters"])
        & (pl.col("n_flagged") >= t["min_flagged"])
    )


RULE = Rule(
    id="model_release_surge",
    title="Linked group pivoting to a new model",
    severity="high",
    subject="campaign",
    table="cluster_surges",
    thresholds={
        "max_release_age_hours": 48.0,
        "min_hour_share": 0.4,
        "min_adopters": 5,
        "min_flagged": 2,
    },
    condition=condition,
    description=(
        "The reported campaigns moved half their traffic to a newly released model within 24 "
        "hours. Fires on a link cluster that sent at least `min_hour_share` of its requests of "
        "the window's last hour to a model released at most `max_release_age_hours` ago, from "
        "at least `min_adopters` members, with at least `min_flagged` members flagged (so the "
        "cluster is a campaign by `campaign_report` too, and the rule adds no campaign the model "
        "does not back). A campaign reported on an earlier run raises `campaign.updated` with "
        "this evidence, once a day; the hourly job reads it within hours of the pivot."
    ),
    runbook=(
        "Open the campaign's hourly timeline around the release: an operator's proxy switches "
        "every account within minutes (`adoption_spread_hours` small) and keeps the same "
        "prompts; a company switches one integration and its traffic stays its product's. "
        "Check the flagged members' reasons."
    ),
    false_positives=(
        "A company with several workspaces on one card switching its integration on release "
        "day while two heavy evaluation workspaces are flagged",
        "An evaluation vendor benchmarking a new model from linked accounts",
    ),
    gaps=(
        "A campaign that pivots gradually over days",
        "A pivot by accounts that share no link (their accounts are still scored)",
    ),
    version=1,
    mode="enforce",
    evidence=(
        "last_hour_newest_share",
        "n_adopters",
        "adoption_spread_hours",
        "newest_model_age_hours",
        "n_accounts",
        "n_flagged",
    ),
    cases=(
        Case(
            "hydra cell pivots on release day",
            "fires",
            "campaign",
            {
                "n_accounts": 40,
                "n_flagged": 12,
                "n_adopters": 30,
                "last_hour_newest_share": 0.55,
                "adoption_spread_hours": 0.5,
                "newest_model_age_hours": 10.0,
            },
        ),
        Case(
            "company workspaces switch the integration, nobody flagged",
            "quiet",
            "lookalike",
            {
                "n_accounts": 8,
                "n_adopters": 8,
                "last_hour_newest_share": 1.0,
                "adoption_spread_hours": 0.2,
                "newest_model_age_hours": 5.0,
            },
        ),
        Case(
            "evaluation vendor on release day, one workspace flagged",
            "quiet",
            "lookalike",
            {
                "n_accounts": 6,
                "n_flagged": 1,
                "n_adopters": 6,
                "last_hour_newest_share": 0.9,
                "adoption_spread_hours": 4.7,
                "newest_model_age_hours": 23.0,
            },
        ),
        Case(
            "a campaign trying the new model on a few requests",
            "quiet",
            "ordinary",
            {
                "n_accounts": 40,
                "n_flagged": 12,
                "n_adopters": 6,
                "last_hour_newest_share": 0.05,
                "newest_model_age_hours": 20.0,
            },
        ),
        Case(
            "a model released weeks ago",
            "quiet",
            "ordinary",
            {
                "n_accounts": 40,
                "n_flagged": 12,
                "n_adopters": 30,
                "last_hour_newest_share": 0.6,
                "newest_model_age_hours": 500.0,
            },
        ),
    ),
)
