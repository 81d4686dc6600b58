"""Templated requests for written-out reasoning at volume."""

import polars as pl

from detector.rules import Case, Rule


def condition(t):
    asks = pl.col("share_elicitation") + pl.col("share_reconstruction")
    templated = (pl.col("near_dup_rate") >= t["min_templated"]) | (
        pl.col("top_head_share") >= t["min_templated"]
    )
    return (
        (asks >= t["min_reasoning_share"])
        & (pl.col("n_requests") >= t["min_requests"])
        & (templated)
    )


RULE = Rule(
    id="reasoning_trace_harvest",
    title="Templated reasoning-trace elicitation",
    severity="high",
    subject="account",
    table="accounts",
    thresholds={"min_reasoning_share": 0.4, "min_requests": 300, "min_templated": 0.3},
    condition=condition,
    description=(
        "Reasoning-trace elicitation ('write out your internal reasoning step by step') and "
        "trace reconstruction were the first targets the reports name. Fires on an account "
        "with at least `min_requests` requests, at least `min_reasoning_share` of them eliciting "
        "or reconstructing reasoning, sent from a template (near-duplicate rate or top opening "
        "share at least `min_templated`)."
    ),
    runbook=(
        "Read the sample prompts: one wrapper around many dataset items is harvesting; a "
        "research team's prompts vary and mostly ask about their own problems."
    ),
    false_positives=(
        "An evaluation harness running a chain-of-thought benchmark",
        "A tutoring product that wraps every question in a 'show your work' template",
    ),
    gaps=(
        "Harvests that paraphrase every prompt",
        "Traces requested through thinking budgets only",
    ),
    version=1,
    mode="shadow",
    evidence=("share_elicitation", "share_reconstruction", "near_dup_rate", "top_head_share"),
    cases=(
        Case(
            "templated elicitation",
            "fires",
            "campaign",
            {"share_elicitation": 0.7, "n_requests": 2000, "near_dup_rate": 0.6},
        ),
        Case(
            "research lab reasoning about its own problems",
            "quiet",
            "lookalike",
            {
                "share_elicitation": 0.5,
                "thinking_share": 0.9,
                "n_requests": 3000,
                "near_dup_rate": 0.05,
                "top_head_share": 0.1,
            },
        ),
        Case(
            "benchmark runner, few reasoning asks",
            "quiet",
            "lookalike",
            {"share_elicitation": 0.1, "n_requests": 8000, "near_dup_rate": 0.9},
        ),
    ),
)
