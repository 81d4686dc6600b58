"""Surges: what changed in a window's last hours, per link cluster (the `cluster_surges` table).

An hourly run sees a campaign while it starts or turns, before a model retrained on it could. Three
changes need no model at all, only the window's own history:

- a linked group moving its traffic to a just-released model;
- one marker family (reasoning elicitation, rubric grading, ...) rising across linked accounts;
- a cluster's request rate jumping several-fold against its own earlier rate.

`account_sql` computes, per account, its first use of the newest model, its requests in the
window's last hour and how many went to the newest model, and its requests (and marker hits per
family) in the window's last `RECENT_HOURS` and before them; `table` rolls them up per cluster.
Rules on `cluster_surges` (see `detector.rules.tables`) hold the thresholds. The spans are part
of the table's definition, not thresholds: every rule reads the same ones.
"""

from __future__ import annotations

import polars as pl

from features.families.models import newest_model_sql
from features.markers import FAMILIES

RECENT_HOURS = 6
"""The span at the window's end that counts as "recent"."""

COLUMNS = {
    "campaign_id": pl.String,
    "cluster": pl.String,
    "n_accounts": pl.Int64,
    "n_flagged": pl.Int64,
    "newest_model_age_hours": pl.Float64,
    "n_adopters": pl.Int64,
    "adopter_share": pl.Float64,
    "adoption_spread_hours": pl.Float64,
    "last_hour_newest_share": pl.Float64,
    "recent_requests": pl.Int64,
    "rate_ratio": pl.Float64,
    "marker_family": pl.String,
    "marker_rise": pl.Float64,
    "marker_accounts": pl.Int64,
}
"""The `cluster_surges` rule table: one row per link cluster of the window."""

PER_ACCOUNT = {
    "account_id": pl.String,
    "newest_first_s": pl.Float64,
    "first_newest_s": pl.Float64,
    "recent_n": pl.Int64,
    "before_n": pl.Int64,
    "hour_n": pl.Int64,
    "hour_newest_n": pl.Int64,
    **{f"recent_{f.name}": pl.Int64 for f in FAMILIES},
    **{f"before_{f.name}": pl.Int64 for f in FAMILIES},
}


def account_sql(start_s: float, end_s: float) -> str:
    """Per-account surge inputs over the relations `signals` and `firsts` in [start_s, end_s)
    (DuckDB dialect; Spark's engine transpiles it)."""
    cut = end_s - RECENT_HOURS * 3600.0
    per_family = ",\n".join(
        f"sum(CASE WHEN s.t_s >= {cut} AND s.{f.name} THEN 1 ELSE 0 END) AS recent_{f.name}, "
        f"sum(CASE WHEN s.t_s < {cut} AND s.{f.name} THEN 1 ELSE 0 END) AS before_{f.name}"
        for f in FAMILIES
    )
    return f"""WITH newest AS ({newest_model_sql("firsts", str(end_s))})
SELECT s.account_id,
  max(n.first_t) AS newest_first_s,
  min(CASE WHEN s.request_model = n.request_model THEN s.t_s END) AS first_newest_s,
  sum(CASE WHEN s.t_s >= {cut} THEN 1 ELSE 0 END) AS recent_n,
  sum(CASE WHEN s.t_s < {cut} THEN 1 ELSE 0 END) AS before_n,
  sum(CASE WHEN s.t_s >= {end_s - 3600.0} THEN 1 ELSE 0 END) AS hour_n,
  sum(CASE WHEN s.t_s >= {end_s - 3600.0} AND s.request_model = n.request_model THEN 1 ELSE 0 END)
    AS hour_newest_n,
  {per_family}
FROM signals AS s LEFT JOIN newest AS n ON 1 = 1
WHERE s.t_s >= {start_s} AND s.t_s < {end_s}
GROUP BY s.account_id"""


def empty_accounts() -> pl.DataFrame:
    return pl.DataFrame(schema=PER_ACCOUNT)


def table(
    clusters: pl.DataFrame, accounts: pl.DataFrame, end_s: float, window_hours: float
) -> pl.DataFrame:
    """The `cluster_surges` rows. `clusters`: campaign_id, cluster, account_id, flagged (one row
    per member of a cluster); `accounts`: `PER_ACCOUNT` rows of the window."""
    if clusters.is_empty():
        return pl.DataFrame(schema=COLUMNS)
    rows = clusters.join(accounts.cast(PER_ACCOUNT, strict=False), on="account_id", how="left")
    recent_h = float(RECENT_HOURS)
    before_h = max(window_hours - recent_h, 1.0)
    adopted = pl.col("first_newest_s").is_not_null()
    spread = (
        pl.col("first_newest_s").filter(adopted).quantile(0.9)
        - pl.col("first_newest_s").filter(adopted).quantile(0.1)
    ) / 3600.0
    rises = [
        (
            pl.col(f"recent_{f.name}").sum() / pl.max_horizontal(pl.col("recent_n").sum(), 1)
            - pl.col(f"before_{f.name}").sum() / pl.max_horizontal(pl.col("before_n").sum(), 1)
        ).alias(f"rise_{f.name}")
        for f in FAMILIES
    ]
    users = [
        (pl.col(f"recent_{f.name}") > 0).sum().cast(pl.Int64).alias(f"users_{f.name}")
        for f in FAMILIES
    ]
    per = rows.group_by("campaign_id", "cluster").agg(
        pl.len().cast(pl.Int64).alias("n_accounts"),
        pl.col("flagged").sum().cast(pl.Int64).alias("n_flagged"),
        ((end_s - pl.col("newest_first_s").max()) / 3600.0).alias("newest_model_age_hours"),
        adopted.sum().cast(pl.Int64).alias("n_adopters"),
        spread.alias("adoption_spread_hours"),
        (pl.col("hour_newest_n").sum() / pl.max_horizontal(pl.col("hour_n").sum(), 1)).alias(
            "last_hour_newest_share"
        ),
        pl.col("recent_n").sum().cast(pl.Int64).alias("recent_requests"),
        ((pl.col("recent_n").sum() / recent_h) / ((pl.col("before_n").sum() + 1) / before_h)).alias(
            "rate_ratio"
        ),
        *rises,
        *users,
    )
    names = [f.name for f in FAMILIES]
    labels = {i: n.removeprefix("marker_") for i, n in enumerate(names)}
    best = pl.concat_list([pl.col(f"rise_{n}") for n in names])
    return (
        per.with_columns(
            (pl.col("n_adopters") / pl.col("n_accounts")).alias("adopter_share"),
            best.list.max().alias("marker_rise"),
            best.list.arg_max().alias("_best"),
        )
        .with_columns(
            pl.when(pl.col("marker_rise") > 0)
            .then(pl.col("_best").replace_strict(labels, return_dtype=pl.String))
            .alias("marker_family"),
            pl.concat_list([pl.col(f"users_{n}") for n in names])
            .list.get(pl.col("_best"))
            .alias("marker_accounts"),
        )
        .select(list(COLUMNS))
        .cast(COLUMNS)
        .sort("campaign_id")
    )
