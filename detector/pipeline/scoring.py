"""Scores, flags, campaigns and reasons for one window, in the contract's shape.

The policy lives in rules (`detector.rules`): an enforced account rule that fires flags the
account beside the model's flags; a cluster is reported as a campaign when an enforced rule on
the `clusters` table fires (the shipped `campaign_report`: at least two members flagged, or one
and the campaign head scores the cluster above its own threshold). Shadow rules' hits are
returned in `Scored.rule_hits` with every other hit and change nothing. Every member of a reported
campaign carries its `campaign_id`, flagged or not, so the analyst sees who else is in it.
The id is derived from the campaign's members (the smallest account id); `nightly` maps it onto
the ids of earlier nights so a growing campaign keeps its name.

Two kinds of account the network would flag are held, not flagged (`status = "review"`,
`flagged` false, reasons that say why): wrongly banning a good customer is the expensive
mistake, and in both cases the network alone is not evidence enough.

- Not corroborated. The model's per-view heads (`detector.model.views`: what it asks, how it
  uses the API, who it is and who it is linked to) must each find the account suspicious too; a
  legitimate look-alike matches a campaign in one or two of these ways, a campaign in all three.
  Such an account is not counted as flagged anywhere (campaign reports included) and carries its
  campaign id when its cell is reported on other members' flags.
- Unfamiliar. An account whose inputs lie outside everything the model was trained on
  (`Preprocessor.unfamiliar`) and that is not a member of a reported campaign (no coordination
  evidence: shared payment or infrastructure, lockstep timing, shared templates linking it to
  other flagged accounts): the model is extrapolating.

An enforced account rule flags whatever the views say. Every other account the model flags is
`"flagged"`; the rest are `"clear"`. Only `"flagged"` accounts raise `account.flagged` alerts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from detector import rules
from detector.linking import EDGE_TYPES, lockstep, operations
from detector.linking.cluster import EDGE_SCHEMA
from detector.model import explain
from detector.model.graph import make_graph, structure
from detector.model.train import Fitted, predict, predict_views
from detector.model.views import disagreement
from detector.pipeline import surges
from detector.pipeline.featurise import WindowData
from features.pipeline import Window
from features.registry import NUMERIC
from features.timing import stage

ACCOUNT_SCORES = {
    "account_id": pl.String,
    "score": pl.Float64,
    "flagged": pl.Boolean,
    "status": pl.String,
    "campaign_id": pl.String,
    "reasons": pl.List(pl.String),
    "cluster": pl.String,
    "cell": pl.String,
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
    "n_cells": pl.Int64,
    "attribution": pl.List(pl.String),
}
CAMPAIGN_CELLS = {
    "campaign_id": pl.String,
    "cell": pl.String,
    "cluster": pl.String,
    "n_accounts": pl.Int64,
    "n_flagged": pl.Int64,
    "score": pl.Float64,
    "shares": pl.List(pl.String),
    "joined_by": pl.List(pl.String),
}
"""One row per cell of each campaign (operation): a reported link cluster, or a lone flagged
account the operation's fingerprint joined to it (`cluster` null)."""


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
    cells: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=CAMPAIGN_CELLS))
    links: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=EDGE_SCHEMA))
    """Links scoring found beyond the window's edges: lockstep among the accounts under review
    (`lockstep.focus_edges`); `merge_edges(data.edges, links)` is every link of the run."""


def merge_edges(edges: pl.DataFrame, more: pl.DataFrame) -> pl.DataFrame:
    """`edges` and `more` (both EDGE_SCHEMA), each (src, dst, edge_type) once."""
    return pl.concat([edges.cast(EDGE_SCHEMA), more.cast(EDGE_SCHEMA)]).unique(
        ["src", "dst", "edge_type"], keep="first", maintain_order=True
    )


def campaign_id(members: list[str], prefix: str = "cmp_") -> str:
    """A group's id, from its smallest member: stable while that member stays."""
    return prefix + hashlib.sha256(min(members).encode()).hexdigest()[:12]


def cell_id(members: list[str]) -> str:
    return campaign_id(members, prefix="cell_")


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
        elements=data.elements,
        minutes=data.minutes,
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
    elements: pl.DataFrame | None = None,
    minutes: pl.DataFrame | None = None,
    operation_cfg: operations.OperationConfig = operations.OperationConfig(),
) -> Scored:
    """Score a window. `activity`: account_id, first_seen, last_seen, n_requests. `ruleset`:
    the rules and their modes (default: the shipped rules in their default modes). `recent`:
    per-account surge inputs (`surges.account_sql`) of `window`; without both the
    `cluster_surges` rules see no rows. `elements`: the window's fingerprint elements
    (`operations.elements_sql`); without them every reported cell is its own campaign.
    `minutes`: each account's active windows (`lockstep.minutes_sql`), for the lockstep test
    among the accounts under review that joins their cells (`lockstep.focus_edges`)."""
    if features.is_empty():
        return Scored(
            pl.DataFrame(schema=ACCOUNT_SCORES),
            pl.DataFrame(schema=CAMPAIGNS),
            pl.DataFrame(schema=rules.HITS),
        )
    with stage("model: inputs and network"):
        frame = structure(features, edges, members)
        graph = make_graph(frame, edges, fitted.prep, with_labels=False)
        tensors = graph.tensors("cpu")
        account_logits, campaign_logits = predict(fitted.net, tensors)
        views = fitted.corroborated(predict_views(fitted.net, tensors))
    scores = fitted.account_calibration(account_logits)
    network = scores > fitted.threshold
    flagged = network & views.all(axis=1)
    uncorroborated = network & ~flagged
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
    uncorroborated &= ~ruled
    base = pl.DataFrame(
        {"account_id": graph.ids, "score": scores, "flagged": flagged, "cluster": clusters},
        schema_overrides={"cluster": pl.String},
    )
    clustered = base.filter(pl.col("cluster").is_not_null())
    tied = _tied(clustered, edges)  # the members a reported cell would put in its campaign
    per_cluster = (
        clustered.group_by("cluster")
        .agg(
            pl.col("flagged").sum().cast(pl.Int64).alias("n_flagged"),
            pl.len().cast(pl.Int64).alias("n_accounts"),
            pl.col("account_id"),
        )
        .join(tied.group_by("cluster").agg(pl.col("account_id").alias("tied")), on="cluster")
        .with_columns(
            pl.col("cluster")
            .replace_strict(cluster_scores, default=0.0, return_dtype=pl.Float64)
            .alias("campaign_score"),
            pl.col("tied").map_elements(campaign_id, return_dtype=pl.String).alias("campaign_id"),
        )
        .drop("tied")
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
    with stage("operations"):
        ops = _operations(features, base, tied, reported, edges, elements, minutes, operation_cfg)
    op_of = [ops.account_op.get(a) for a in graph.ids]
    status, held = _status(
        fitted,
        frame,
        flagged,
        [o is not None or r for o, r in zip(op_of, ruled)],
        uncorroborated,
        views,
    )
    everyone = np.flatnonzero(flagged | uncorroborated)
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
                [op_of[i] for i in targets],
                frame,
                _operation_evidence(evidence, ops.cell_op),
                fitted.prep.medians,
            )
        for i, text in zip(targets, texts, strict=True):
            reasons[i] = text
        for i in np.setdiff1d(everyone, targets):  # beyond the limit: the campaign's reasons
            shared = campaign_reasons.get(op_of[i], [])
            reasons[i] = [
                f"not explained alone ({everyone.size:,} flagged, limit {explain_limit:,})"
            ]
            reasons[i] += [f"campaign: {text}" for text in shared]
    for i, why in held.items():
        reasons[i] = [*why, *reasons[i]]
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
        pl.Series("campaign_id", op_of, dtype=pl.String),
        pl.Series("reasons", reasons, dtype=pl.List(pl.String)),
        pl.Series("cell", [ops.account_cell.get(a) for a in graph.ids], dtype=pl.String),
    ).select(list(ACCOUNT_SCORES))
    by_cell_id = {cid: ops.cell_op[c] for c, cid in reported.items()}
    for rid, cid, ev in (
        surge_hits.filter(pl.col("mode") == "enforce")
        .select("rule_id", "subject_id", "evidence")
        .iter_rows()
    ):
        campaign_reasons.setdefault(by_cell_id[cid], []).insert(0, rules.reason(titles[rid], ev))
    cells = _cells(ops, per_cluster, accounts, evidence)
    campaigns = _campaigns(cells, accounts, activity, campaign_reasons, ops.attribution)
    hits = pl.concat([account_hits, cluster_hits]).with_columns(
        pl.when(pl.col("subject_kind") == "campaign")
        .then(pl.col("subject_id").replace(by_cell_id))
        .otherwise("subject_id")
        .alias("subject_id")
    )
    return Scored(
        accounts.sort("score", descending=True),
        campaigns,
        # cells of one operation fire the same cluster rule: one hit per campaign, the first
        # evidence in a fixed order
        hits.sort(["rule_id", "subject_id", "evidence"]).unique(
            ["rule_id", "subject_id"], keep="first", maintain_order=True
        ),
        cells,
        ops.links,
    )


@dataclass(frozen=True)
class _Ops:
    account_op: dict[str, str]  # account -> its campaign (operation) id
    account_cell: dict[str, str]  # account -> its cell id
    cell_op: dict[str, str]  # reported cluster -> its campaign id
    units: pl.DataFrame  # unit, cluster (null for a lone account), campaign_id, cell, joined_by
    attribution: dict[str, list[str]]  # campaign id -> what joins its cells
    links: pl.DataFrame  # EDGE_SCHEMA: lockstep edges found among the accounts under review


def _operations(
    features: pl.DataFrame,
    base: pl.DataFrame,
    tied: pl.DataFrame,
    reported: dict[str, str],
    edges: pl.DataFrame,
    elements: pl.DataFrame | None,
    minutes: pl.DataFrame | None,
    cfg: operations.OperationConfig,
) -> _Ops:
    """Reported cells and lone flagged accounts joined into operations (`operations`), on
    their fingerprint elements and on lockstep among them (`lockstep.focus_edges`). A cell's
    members are its `tied` ones (`_tied`)."""
    in_cells = tied.filter(pl.col("cluster").is_in(list(reported))).select(
        pl.col("cluster").alias("unit"), "account_id"
    )
    lone = base.filter(
        pl.col("flagged") & ~pl.col("cluster").is_in(list(reported)).fill_null(False)
    )
    units = pl.concat(
        [in_cells, lone.select(pl.format("account:{}", "account_id").alias("unit"), "account_id")]
    )
    focus = pl.DataFrame(schema=EDGE_SCHEMA)
    if elements is None or units.is_empty():
        assignment = pl.DataFrame(
            {
                "unit": list(reported),
                "operation": list(reported),
                "joined_by": [[]] * len(reported),
            },
            schema={"unit": pl.String, "operation": pl.String, "joined_by": pl.List(pl.String)},
        )
        attribution: dict[str, list[str]] = {}
    else:
        columns = [c for c in NUMERIC if c in features.columns]
        vectors = operations.behaviour_vectors(features, columns, units["account_id"])
        if minutes is not None:
            with stage("operations: lockstep among the accounts under review"):
                focus = lockstep.focus_edges(
                    minutes, units["account_id"], cfg.lockstep, EDGE_TYPES["lockstep"].strength
                ).cast(EDGE_SCHEMA)
        ops = operations.join_units(
            units, set(reported), elements, merge_edges(edges, focus), vectors, cfg
        )
        assignment, attribution = ops.assignment, ops.attribution
    kept = units.join(assignment, on="unit")
    members = kept.group_by("operation").agg(pl.col("account_id"))
    op_id = {op: campaign_id(m) for op, m in members.iter_rows()}
    cell_members = kept.group_by("unit").agg(pl.col("account_id"))
    unit_cell = {u: cell_id(m) for u, m in cell_members.iter_rows()}
    account_op = {a: op_id[o] for a, o in kept.select("account_id", "operation").iter_rows()}
    account_cell = {a: unit_cell[u] for a, u in kept.select("account_id", "unit").iter_rows()}
    cell_op = {
        u: op_id[o] for u, o in assignment.select("unit", "operation").iter_rows() if u in reported
    }
    unit_rows = assignment.select(
        "unit",
        pl.when(pl.col("unit").is_in(list(reported))).then("unit").alias("cluster"),
        pl.col("operation").replace_strict(op_id, return_dtype=pl.String).alias("campaign_id"),
        pl.col("unit").replace_strict(unit_cell, return_dtype=pl.String).alias("cell"),
        "joined_by",
    )
    return _Ops(
        account_op,
        account_cell,
        cell_op,
        unit_rows,
        {op_id[o]: lines for o, lines in attribution.items()},
        focus,
    )


def _tied(cells: pl.DataFrame, edges: pl.DataFrame) -> pl.DataFrame:
    """The members of reported cells (`cells`: account_id, flagged, cluster) that belong to
    their campaign: the flagged ones, and those the model does not flag with a link to a
    flagged member of their cell that is more than corroborating (`EdgeType.corroborating`:
    a common client string and sign-up day, a model-switch hour or a behaviour vector alone
    put a customer beside a campaign, not in it). A cell with no flagged member (reported on
    cluster evidence alone) keeps every member."""
    strong = [name for name, e in EDGE_TYPES.items() if not e.corroborating]
    links = edges.filter(pl.col("edge_type").is_in(strong)).select("src", "dst")
    both = pl.concat([links, links.select(pl.col("dst").alias("src"), pl.col("src").alias("dst"))])
    flagged = cells.filter(pl.col("flagged")).select(
        pl.col("account_id").alias("dst"), pl.col("cluster").alias("dst_cluster")
    )
    tied = (
        both.join(flagged, on="dst")
        .join(cells.select(pl.col("account_id").alias("src"), "cluster"), on="src")
        .filter(pl.col("cluster") == pl.col("dst_cluster"))["src"]
        .unique()
    )
    has_flagged = cells.group_by("cluster").agg(pl.col("flagged").any().alias("any_flagged"))
    return cells.join(has_flagged, on="cluster").filter(
        pl.col("flagged") | pl.col("account_id").is_in(tied.implode()) | ~pl.col("any_flagged")
    )


def _operation_evidence(evidence: pl.DataFrame, cell_op: dict[str, str]) -> pl.DataFrame:
    """Cluster evidence summed per operation (so a campaign's reasons cover all its cells)."""
    inside = evidence.filter(pl.col("cluster").is_in(list(cell_op)))
    if inside.is_empty():
        return evidence.clear()
    return (
        inside.with_columns(pl.col("cluster").replace_strict(cell_op, return_dtype=pl.String))
        .group_by("cluster", "edge_type")
        .agg(
            pl.col("n_edges").sum(),
            pl.col("weight").sum(),
            pl.col("top_values")
            .list.explode(keep_nulls=False, empty_as_null=False)
            .unique(maintain_order=True)
            .head(3),
        )
        .select(evidence.columns)
        .sort(["cluster", "weight", "edge_type"], descending=[False, True, False])
    )


DRIFT_RATIO = 3.0
"""`traffic_warning` fires when the share flagged is this many times the validation share."""
REVIEW_WARN_SHARE = 0.005
"""... or when more than this share of the scored accounts is held for review (and more than
`DRIFT_RATIO` times the share validation held)."""


def traffic_warning(fitted: Fitted, accounts: pl.DataFrame) -> str | None:
    """A warning when a run looks unlike what the model was validated on: far more accounts
    flagged than in validation, or many held for review (inputs outside the training range, or
    views that disagree far more often than in validation).
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
    usual = fitted.validation.get("review_share") or 0.0
    if review and review / n > max(REVIEW_WARN_SHARE, DRIFT_RATIO * usual):
        notes.append(
            f"{review:,} accounts ({review / n:.2%}) held for review (validation: {usual:.2%})"
        )
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
    fitted: Fitted,
    frame: pl.DataFrame,
    flagged: np.ndarray,
    in_campaign: list[bool],
    uncorroborated: np.ndarray,
    views: np.ndarray,
) -> tuple[np.ndarray, dict[int, list[str]]]:
    """Each account's status, and why each held one is held (by row): the views that find it
    ordinary, or what is unfamiliar about it."""
    status = np.where(flagged, "flagged", "clear").astype(object)
    names = [name for name, _ in fitted.net.config.views]
    abstains = [t == -np.inf for t in fitted.view_thresholds]
    held = {
        int(i): [disagreement(views[i].tolist(), names, abstains)]
        for i in np.flatnonzero(uncorroborated)
    }
    candidates = np.flatnonzero(flagged & ~np.asarray(in_campaign, dtype=bool))
    if candidates.size:
        why = fitted.prep.unfamiliar(frame[candidates.tolist()])
        for i, w in zip(candidates, why, strict=True):
            if w:
                held[int(i)] = [f"held for review, unfamiliar: {text}" for text in w] + [
                    "held for review: no coordination evidence (in no reported campaign)"
                ]
    status[list(held)] = "review"
    return status, held


def _cells(
    ops: _Ops, per_cluster: pl.DataFrame, accounts: pl.DataFrame, evidence: pl.DataFrame
) -> pl.DataFrame:
    """CAMPAIGN_CELLS: each campaign's cells, what each shares and how each joins the rest."""
    if ops.units.is_empty():
        return pl.DataFrame(schema=CAMPAIGN_CELLS)
    counts = (
        accounts.filter(pl.col("cell").is_not_null())
        .group_by("cell")
        .agg(
            pl.len().cast(pl.Int64).alias("n_accounts"),
            pl.col("flagged").sum().cast(pl.Int64).alias("n_flagged"),
            pl.col("score").max().alias("top_account_score"),
        )
    )
    shares = (
        evidence.filter(pl.col("cluster").is_in(ops.units["cluster"].drop_nulls().implode()))
        .with_columns(
            pl.format(
                "{} link(s): {}{}",
                "n_edges",
                pl.col("edge_type"),
                pl.when(pl.col("top_values").list.len() > 0)
                .then(pl.format(" ({})", pl.col("top_values").list.head(2).list.join(", ")))
                .otherwise(pl.lit("")),
            ).alias("line")
        )
        .group_by("cluster", maintain_order=True)
        .agg(pl.col("line").alias("shares"))
    )
    head = per_cluster.select("cluster", pl.col("campaign_score").alias("head"))
    return (
        ops.units.join(counts, on="cell", how="left")
        .join(shares, on="cluster", how="left")
        .join(head, on="cluster", how="left")
        .select(
            "campaign_id",
            "cell",
            "cluster",
            pl.col("n_accounts").fill_null(0),
            pl.col("n_flagged").fill_null(0),
            pl.coalesce("head", "top_account_score").alias("score"),
            pl.col("shares").fill_null([]),
            "joined_by",
        )
        .cast(CAMPAIGN_CELLS)
        .sort(["campaign_id", "n_accounts", "cell"], descending=[False, True, False])
    )


def _campaigns(
    cells: pl.DataFrame,
    accounts: pl.DataFrame,
    activity: pl.DataFrame,
    reasons: dict[str, list[str]],
    attribution: dict[str, list[str]],
) -> pl.DataFrame:
    if cells.is_empty():
        return pl.DataFrame(schema=CAMPAIGNS)
    stats = (
        accounts.filter(pl.col("campaign_id").is_not_null())
        .join(activity, on="account_id", how="left")
        .group_by("campaign_id")
        .agg(
            pl.len().cast(pl.Int64).alias("n_accounts"),
            pl.col("flagged").sum().cast(pl.Int64).alias("n_flagged"),
            pl.col("first_seen").min(),
            pl.col("last_seen").max(),
            pl.col("n_requests").sum().cast(pl.Int64),
        )
    )
    # the campaign's score is its strongest cell's; `cluster` is its largest cell's
    per_op = (
        cells.filter(pl.col("cluster").is_not_null())
        .sort(["campaign_id", "n_accounts", "cluster"], descending=[False, True, False])
        .group_by("campaign_id", maintain_order=True)
        .agg(pl.col("score").max(), pl.col("cluster").first())
        .join(cells.group_by("campaign_id").len("n_cells"), on="campaign_id")
    )
    return (
        per_op.with_columns(
            pl.col("campaign_id")
            .replace_strict(attribution, default=[], return_dtype=pl.List(pl.String))
            .alias("attribution"),
            pl.col("n_cells").cast(pl.Int64),
        )
        .with_columns(
            pl.concat_list(
                "attribution",
                pl.col("campaign_id").replace_strict(
                    reasons, default=[], return_dtype=pl.List(pl.String)
                ),
            ).alias("reasons")
        )
        .join(stats, on="campaign_id")
        .select(list(CAMPAIGNS))
        .sort("score", descending=True)
    )
