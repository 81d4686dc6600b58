"""Fresh accounts from an abused education or startup sign-up path, harvesting together."""

import polars as pl

from detector.rules import Case, Rule
from detector.rules.expressions import distillation_share, in_list


def condition(t):
    return (
        in_list("signup_channel", t["channels"])
        & (pl.col("account_age_days") <= t["max_age_days"])
        & (pl.col("deg_signup_subnet") > 0)
        & (pl.col("cluster_size") >= t["min_cluster"])
        & (distillation_share() >= t["min_distillation_share"])
    )


RULE = Rule(
    id="education_signup_farm",
    title="Sign-up farm on an education or startup path",
    severity="high",
    subject="account",
    table="accounts",
    thresholds={
        "channels": "education,startup_program",
        "max_age_days": 30,
        "min_cluster": 5,
        "min_distillation_share": 0.3,
    },
    condition=condition,
    description=(
        "The reports describe education and startup sign-up paths abused to open many fresh "
        "accounts. Fires on an account at most `max_age_days` old from one of `channels`, "
        "signed up from a range shared with others (a cluster of at least `min_cluster`), that "
        "sends at least `min_distillation_share` distillation-style requests."
    ),
    runbook=(
        "Check the sign-up evidence (shared range, creation times) on the campaign page, then "
        "whether the institution exists and the traffic is coursework; a class does homework, "
        "a farm harvests reasoning traces and grades at volume."
    ),
    false_positives=(
        "A university class that signs up together behind the campus NAT and practises "
        "step-by-step reasoning",
        "A startup programme cohort onboarding on one demo day",
    ),
    gaps=("Farms that age their accounts past `max_age_days` before use",),
    version=1,
    mode="shadow",
    evidence=("signup_channel", "account_age_days", "cluster_size", "deg_signup_subnet"),
    cases=(
        Case(
            "education farm",
            "fires",
            "campaign",
            {
                "signup_channel": "education",
                "account_age_days": 4.0,
                "deg_signup_subnet": 6.0,
                "cluster_size": 50.0,
                "share_reconstruction": 0.4,
            },
        ),
        Case(
            "university class behind one NAT",
            "quiet",
            "lookalike",
            {
                "signup_channel": "education",
                "account_age_days": 10.0,
                "deg_signup_subnet": 8.0,
                "cluster_size": 40.0,
                "share_elicitation": 0.1,
            },
        ),
        Case(
            "old education account",
            "quiet",
            "ordinary",
            {"signup_channel": "education", "cluster_size": 9.0, "share_grading": 0.5},
        ),
    ),
)
