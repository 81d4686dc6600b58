"""Scores, flags, campaigns and reasons for one window, in the contract's shape.

The policy lives in rules (`detector.rules`): an enforced account rule that fires flags the
account beside the model's flags; a cluster is reported as a campaign when an enforced rule on
the `clusters` table fires (the shipped `campaign_report`: at least two members flagged, or one
and the campaign head scores the cluster above its own threshold). Shadow rules' hits are
returned in `Scored.rule_hits` with every other hit and change nothing. Every member of a reported
campaign carries its `campaign_id`, flagged or not, so the analyst sees who else is in it.
The id is derived from the campaign's members (the smallest account id); `nightly` maps it onto
the ids of earlier nights so a growing campaign keeps its name.

Unfamiliar accounts are held, not flagged. An account the model would flag whose inputs lie
outside everything it was trained on (`Preprocessor.unfamiliar`) and that is not a member of a
reported campaign (no coordination evidence: shared payment or infrastructure, lockstep timing,
shared templates linking it to other flagged accounts) gets `status = "review"`, `flagged`
false, and reasons that say what is unfamiliar: the model is extrapolating, and wrongly banning a
good customer is the expensive mistake. Every other account the model flags is `"flagged"`;
the rest are `"clear"`. Only `"flagged"` accounts raise `account.flagged` alerts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import polars as pl

from detector import rules
from detector.model import explain
from detector.model.graph import make_graph, structure
from detector.model.train import Fitted, predict
from detector.pipeline import surges
from detector.pipeline.featurise import WindowData
from features.pipeline import Window
from features.timing import stage

ACCOUNT_SCORES = {
    "account_id": pl.String,
    "score": pl.Float64,
    "flagged": pl.Boolean,
    "status": pl.String,
    "campaign_id": pl.String,
    "reasons": pl.List(pl.String),
    "cluster": pl.String,
}
CAMPAIGNS = {
    "campaign_id": pl.String,
    "score": pl.Float64,
    "n_accounts": pl.Int64,
    "n_flagged": pl.Int64,
    "first_seen": pl.Datetime("us", "UTC"),
    "last_seen": pl.Datetime("us", "UTC"),
    "n_requests": pl.Int64,
    "reasons": pl.List(pl.String),
    "cluster": pl.String,
}


EXPLAIN_LIMIT = 2000
"""Occlusion reasons are computed for at most this many flagged accounts, highest scores first
(about 3 ms each on two cores); the rest carry their campaign's reasons."""


ACTIVITY = {
    "account_id": pl.String,
    "first_seen": pl.Datetime("us", "UTC"),
    "last_seen": pl.Datetime("us", "UTC"),
    "n_requests": pl.Int64,
}
"""What `score_window` needs to know of each account's requests (for campaign rows)."""


@dataclass(frozen=True)
class Scored:
    accounts: pl.DataFrame  # ACCOUNT_SCORES columns
    campaigns: pl.DataFrame  # CAMPAIGNS columns
    rule_hits: pl.DataFrame  # rules.HITS columns: every rule that fired (enforced or shadow)


def campaign_id(members: list[str]) -> str:
    return "cmp_" + hashlib.sha256(min(members).encode()).hexdigest()[:12]


def score_data(fitted: Fitted, data: WindowData, **options) -> Scored:
    """`score_window` over what `batch.featurise` returns."""
    return score_window(
        fitted,
        data.features,
        data.edges,
        data.clusters.members,
        data.clusters.evidence,
        data.activity,
        recent=data.recent,
        window=data.window,
        **options,
    )


def score_window(
    fitted: Fitted,
    features: pl.DataFrame,
    edges: pl.DataFrame,
    members: pl.DataFrame,
    evidence: pl.DataFrame,
    activity: pl.DataFrame,
    explain_flagged: bool = True,
    explain_limit: int = EXPLAIN_LIMIT,
    ruleset: rules.RuleSet | None = None,
    recent: pl.DataFrame | None = None,
    window: Window | None = None,
) -> Scored:
    """Score a window. `activity`: account_id, first_seen, last_seen, n_requests. `ruleset`:
    the rules and their modes (default: the shipped rules in their default modes). `recent`:
    per-account surge inputs (`surges.account_sql`) of `window`; without both the
    `cluster_surges` rules see no rows."""
    if features.is_empty():
        return Scored(
            pl.DataFrame(schema=ACCOUNT_SCORES),
            pl.DataFrame(schema=CAMPAIGNS),
            pl.DataFrame(schema=rules.HITS),
        )
    with stage("model: inputs and network"):
        frame = structure(features, edges, members)
        graph = make_graph(frame, edges, fitted.prep, with_labels=False)
        account_logits, campaign_logits = predict(fitted.net, graph.tensors("cpu"))
    scores = fitted.account_calibration(account_logits)
    flagged = scores > fitted.threshold
    cluster_scores = dict(
        zip(graph.cluster_names, fitted.campaign_calibration(campaign_logits).tolist(), strict=True)
    )
    clusters = frame["cluster"].to_list()
    ruleset = rules.load() if ruleset is None else ruleset
    with stage("rules"):
        account_hits = ruleset.run(
            "accounts",
            frame.with_columns(
                pl.Series("model_score", scores, dtype=pl.Float64),
                pl.Series("model_flagged", flagged, dtype=pl.Boolean),
            ),
        )
    by_rule = ruleset.enforced(account_hits)
    ruled = np.fromiter((a in by_rule for a in graph.ids), dtype=bool, count=len(graph.ids))
    flagged = flagged | ruled
    base = pl.DataFrame(
        {"account_id": graph.ids, "score": scores, "flagged": flagged, "cluster": clusters},
        schema_overrides={"cluster": pl.String},
    )
    per_cluster = (
        base.filter(pl.col("cluster").is_not_null())
        .group_by("cluster")
        .agg(
            pl.col("flagged").sum().cast(pl.Int64).alias("n_flagged"),
            pl.len().cast(pl.Int64).alias("n_accounts"),
            pl.col("account_id"),
        )
        .with_columns(
            pl.col("cluster")
            .replace_strict(cluster_scores, default=0.0, return_dtype=pl.Float64)
            .alias("campaign_score"),
            pl.col("account_id")
            .map_elements(campaign_id, return_dtype=pl.String)
            .alias("campaign_id"),
        )
        .sort("cluster")
    )
    cluster_hits = ruleset.run(
        "clusters",
        per_cluster.select(
            "campaign_id",
            "cluster",
            "n_accounts",
            "n_flagged",
            pl.col("campaign_score").alias("head_score"),
            pl.lit(float(fitted.campaign_threshold), dtype=pl.Float64).alias("head_threshold"),
        ),
    )
    with stage("rules: surges"):
        surge_hits = _surge_hits(ruleset, per_cluster, base, recent, window)
    cluster_hits = pl.concat([cluster_hits, surge_hits])
    per_cluster = per_cluster.filter(
        pl.col("campaign_id").is_in(sorted(ruleset.enforced(cluster_hits)))
    ).drop("n_accounts")
    reported = dict(zip(per_cluster["cluster"], per_cluster["campaign_id"], strict=True))
    status, held = _status(
        fitted, frame, flagged, [c in reported or r for c, r in zip(clusters, ruled)]
    )
    everyone = np.flatnonzero(flagged)
    targets = everyone[np.argsort(-scores[everyone], kind="stable")[:explain_limit]]
    reasons: list[list[str]] = [[] for _ in graph.ids]
    campaign_reasons: dict[str, list[str]] = {}
    if explain_flagged and targets.size:
        with stage("reasons: occlusion"):
            attr = explain.attribute(fitted, graph, targets)
        with stage("reasons: texts"):
            texts = explain.account_reasons(attr, frame, edges, fitted.prep.medians)
            campaign_reasons = explain.campaign_reasons(
                attr,
                [clusters[i] if clusters[i] in reported else None for i in targets],
                frame,
                evidence,
                fitted.prep.medians,
            )
        for i, text in zip(targets, texts, strict=True):
            reasons[i] = text
        for i in np.setdiff1d(everyone, targets):  # beyond the limit: the campaign's reasons
            shared = campaign_reasons.get(clusters[i], [])
            reasons[i] = [
                f"not explained alone ({everyone.size:,} flagged, limit {explain_limit:,})"
            ]
            reasons[i] += [f"campaign: {text}" for text in shared]
    for i, why in held.items():
        reasons[i] = [f"held for review, unfamiliar: {text}" for text in why] + [
            "held for review: no coordination evidence (in no reported campaign)",
            *reasons[i],
        ]
    row = {a: i for i, a in enumerate(graph.ids)}
    titles = {r.id: r for r in ruleset.rules}
    for rid, account, ev in (
        account_hits.filter(pl.col("mode") == "enforce")
        .select("rule_id", "subject_id", "evidence")
        .iter_rows()
    ):
        reasons[row[account]].insert(0, rules.reason(titles[rid], ev))
    accounts = base.with_columns(
        pl.Series("flagged", status == "flagged"),
        pl.Series("status", status, dtype=pl.String),
        pl.col("cluster")
        .replace_strict(reported, default=None, return_dtype=pl.String)
        .alias("campaign_id"),
        pl.Series("reasons", reasons, dtype=pl.List(pl.String)),
    ).select(list(ACCOUNT_SCORES))
    for rid, cid, ev in (
        surge_hits.filter(pl.col("mode") == "enforce")
        .select("rule_id", "subject_id", "evidence")
        .iter_rows()
    ):
        cluster = next(c for c, reported_id in reported.items() if reported_id == cid)
        campaign_reasons.setdefault(cluster, []).insert(0, rules.reason(titles[rid], ev))
    campaigns = _campaigns(per_cluster, accounts, activity, campaign_reasons)
    hits = pl.concat([account_hits, cluster_hits]).sort(["rule_id", "subject_id"])
    return Scored(accounts.sort("score", descending=True), campaigns, hits)


DRIFT_RATIO = 3.0
"""`traffic_warning` fires when the share flagged is this many times the validation share."""
REVIEW_WARN_SHARE = 0.005
"""... or when more than this share of the scored accounts is held for review."""


def traffic_warning(fitted: Fitted, accounts: pl.DataFrame) -> str | None:
    """A warning when a run looks unlike what the model was validated on: far more accounts
    flagged than in validation, or many held for review (inputs outside the training range).
    Both say the provider's traffic differs from the model's training data, and the remedy is
    the same: `distillguard train` on the provider's own labels."""
    n = accounts.height
    if n == 0:
        return None
    flagged = int(accounts["flagged"].sum())
    review = int((accounts["status"] == "review").sum())
    expected = fitted.validation.get("flagged_share")
    notes = []
    if expected is not None and flagged >= 10 and flagged / n > DRIFT_RATIO * expected:
        notes.append(
            f"{flagged / n:.2%} of accounts flagged, {flagged / n / max(expected, 1e-9):.0f}x "
            f"the {expected:.2%} the model flagged in validation"
        )
    if review and review / n > REVIEW_WARN_SHARE:
        notes.append(f"{review:,} accounts ({review / n:.2%}) held for review as unfamiliar")
    if not notes:
        return None
    return (
        "; ".join(notes)
        + ": this traffic differs from what the model was trained on. Treat flags as leads, "
        "label a sample and run `distillguard train` on your own labels."
    )


def _surge_hits(
    ruleset: rules.RuleSet,
    per_cluster: pl.DataFrame,
    base: pl.DataFrame,
    recent: pl.DataFrame | None,
    window: Window | None,
) -> pl.DataFrame:
    """Hits of the rules on `cluster_surges` (none without the window's recent activity)."""
    if recent is None or window is None or per_cluster.is_empty():
        return pl.DataFrame(schema=rules.HITS)
    members = per_cluster.select("campaign_id", "cluster").join(
        base.select("cluster", "account_id", "flagged"), on="cluster"
    )
    table = surges.table(members, recent, window.end_s, window.days * 24.0)
    return ruleset.run("cluster_surges", table)


def _status(
    fitted: Fitted, frame: pl.DataFrame, flagged: np.ndarray, in_campaign: list[bool]
) -> tuple[np.ndarray, dict[int, list[str]]]:
    """Each account's status, and what is unfamiliar about each held one (by row)."""
    status = np.where(flagged, "flagged", "clear").astype(object)
    candidates = np.flatnonzero(flagged & ~np.asarray(in_campaign, dtype=bool))
    held: dict[int, list[str]] = {}
    if candidates.size:
        why = fitted.prep.unfamiliar(frame[candidates.tolist()])
        held = {int(i): w for i, w in zip(candidates, why, strict=True) if w}
        status[list(held)] = "review"
    return status, held


def _campaigns(
    per_cluster: pl.DataFrame,
    accounts: pl.DataFrame,
    activity: pl.DataFrame,
    reasons: dict[str, list[str]],
) -> pl.DataFrame:
    if per_cluster.is_empty():
        return pl.DataFrame(schema=CAMPAIGNS)
    stats = (
        accounts.filter(pl.col("campaign_id").is_not_null())
        .join(activity, on="account_id", how="left")
        .group_by("campaign_id")
        .agg(
            pl.len().cast(pl.Int64).alias("n_accounts"),
            pl.col("first_seen").min(),
            pl.col("last_seen").max(),
            pl.col("n_requests").sum().cast(pl.Int64),
        )
    )
    return (
        per_cluster.select(
            "campaign_id",
            pl.col("campaign_score").alias("score"),
            pl.col("n_flagged").cast(pl.Int64),
            "cluster",
            pl.col("cluster")
            .replace_strict(reasons, default=[], return_dtype=pl.List(pl.String))
            .alias("reasons"),
        )
        .join(stats, on="campaign_id")
        .select(list(CAMPAIGNS))
        .sort("score", descending=True)
    )
