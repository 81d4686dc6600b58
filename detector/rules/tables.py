"""The tables rules read: what each row is, its key, and its columns.

A rule reads exactly one table and returns the rows (subjects) that fire:

- `accounts`: one row per account scored in the window; the feature table (FEATURES.md) with
  the link-graph columns (`deg_*`, `cluster_size`), the population percentiles (`pct_*`) and the
  model's verdict (`model_score`, `model_flagged`). Subject: the account.
- `clusters`: one row per link cluster of the window: `n_accounts`, `n_flagged` (accounts
  flagged by the model or an enforced account rule), `head_score` (the model's campaign head)
  and `head_threshold` (the head's own threshold, from the model card). Subject: the campaign
  the cluster would be reported as.
- `cluster_surges`: one row per link cluster of the window: what changed in its last hours
  (`detector.pipeline.surges`): how many members adopted a model released
  `newest_model_age_hours` ago and how close together, the recent request rate against the
  cluster's own earlier rate, and the marker family whose share rose most. Subject: the campaign
  the cluster would be reported as.
- `campaign_history`: one row per campaign reported tonight, against its previous night:
  `n_accounts`, `previous_n_accounts` (null when new), `known`, `dismissed` (an analyst's
  current verdict). Subject: the campaign.

`defaults` gives a neutral value for every column (an ordinary, unremarkable subject), so a
rule's cases name only the columns that matter to them.
"""

from __future__ import annotations

import polars as pl

from detector.model.graph import GRAPH_MEANING, POPULATION
from features.registry import FEATURES

_DUCK = {"BIGINT": pl.Int64, "DOUBLE": pl.Float64, "VARCHAR": pl.String, "BOOLEAN": pl.Boolean}

KEYS = {
    "accounts": "account_id",
    "clusters": "campaign_id",
    "cluster_surges": "campaign_id",
    "campaign_history": "campaign_id",
}
SUBJECTS = {
    "accounts": "account",
    "clusters": "campaign",
    "cluster_surges": "campaign",
    "campaign_history": "campaign",
}

_ACCOUNT_DEFAULTS: dict[str, object] = {
    "n_requests": 120,
    "n_active_days": 5,
    "requests_per_active_day": 24.0,
    "mean_output_tokens": 400.0,
    "hour_entropy": 0.6,
    "active_hours_share": 0.4,
    "newest_model_lag_hours": None,
    "distinct_skeleton_share": 0.8,
    "n_models": 2,
    "n_ips": 2,
    "n_subnets": 1,
    "n_api_keys": 1,
    "n_user_agents": 1,
    "account_age_days": 400.0,
    "signup_channel": "self_serve",
    "tier": "standard",
}


def schema(table: str) -> dict[str, pl.DataType]:
    """Column -> dtype of a rule table."""
    if table == "accounts":
        out = {"account_id": pl.String}
        out |= {f.name: _DUCK[f.dtype] for f in FEATURES}
        out |= {c: pl.Float64 for c in GRAPH_MEANING}
        out |= {f"pct_{name}": pl.Float64 for name in POPULATION}
        out |= {"cluster": pl.String, "model_score": pl.Float64, "model_flagged": pl.Boolean}
        return out
    if table == "clusters":
        return {
            "campaign_id": pl.String,
            "cluster": pl.String,
            "n_accounts": pl.Int64,
            "n_flagged": pl.Int64,
            "head_score": pl.Float64,
            "head_threshold": pl.Float64,
        }
    if table == "cluster_surges":
        from detector.pipeline.surges import COLUMNS

        return dict(COLUMNS)
    if table == "campaign_history":
        return {
            "campaign_id": pl.String,
            "n_accounts": pl.Int64,
            "previous_n_accounts": pl.Int64,
            "known": pl.Boolean,
            "dismissed": pl.Boolean,
        }
    raise ValueError(f"unknown rule table {table!r}; one of {sorted(KEYS)}")


def defaults(table: str) -> dict[str, object]:
    """A neutral row of `table`: what an ordinary subject looks like."""
    cols = schema(table)
    out: dict[str, object] = {}
    for name, dtype in cols.items():
        if dtype == pl.Boolean:
            out[name] = False
        elif dtype == pl.String:
            out[name] = None
        elif name.startswith("pct_"):
            out[name] = 0.5
        elif name == "cluster_size":
            out[name] = 1.0
        else:
            out[name] = 0 if dtype == pl.Int64 else 0.0
    if table == "accounts":
        out |= _ACCOUNT_DEFAULTS
    return out


def frame(table: str, rows: list[dict]) -> pl.DataFrame:
    """`rows` (partial) completed with `defaults`, typed by `schema`. Raises ValueError naming
    a column the table does not have."""
    cols = schema(table)
    unknown = sorted({k for r in rows for k in r} - set(cols))
    if unknown:
        raise ValueError(f"table {table!r} has no column(s) {unknown}")
    base = defaults(table)
    return pl.DataFrame([base | r for r in rows], schema=cols)


def complete(table: str, rows: pl.DataFrame) -> pl.DataFrame:
    """`rows` with every column of `table` (a missing one as nulls: a rule on it does not
    fire), cast to the table's types."""
    cols = schema(table)
    missing = [pl.lit(None, dtype=t).alias(c) for c, t in cols.items() if c not in rows.columns]
    return rows.with_columns(missing).with_columns(
        pl.col(c).cast(t, strict=False) for c, t in cols.items() if rows.schema.get(c, t) != t
    )


def campaign_history(
    sizes: pl.DataFrame,
    previous: dict[str, int],
    dismissed: set[str],
    known: set[str] | None = None,
) -> pl.DataFrame:
    """The `campaign_history` table from tonight's campaigns (campaign_id, n_accounts), each
    campaign's size on its previous night, and the campaigns analysts dismissed. `known`: the
    campaigns earlier runs reported (default: those with a previous night; an hourly run's
    campaign is known before any night has scored it)."""
    known = set(previous) if known is None else known
    return sizes.select(
        "campaign_id",
        pl.col("n_accounts").cast(pl.Int64),
        pl.col("campaign_id")
        .replace_strict(previous, default=None, return_dtype=pl.Int64)
        .alias("previous_n_accounts"),
        pl.col("campaign_id").is_in(sorted(known)).alias("known"),
        pl.col("campaign_id").is_in(sorted(dismissed)).alias("dismissed"),
    ).sort("campaign_id")
