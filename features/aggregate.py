"""Per-account aggregation of request signals over a window, as one SQL query.

The query is generated from the registry (the features and their families' helper relations)
and uses plain aggregates, CASE and window functions,
so DuckDB runs it locally and Spark SQL can run the same text (see issue: Spark). It reads two
relations by name: the request signals and the accounts table (either may be a Parquet scan).
"""

from __future__ import annotations

from features.families.models import newest_model_sql
from features.registry import FEATURES, HELPERS

FIRSTS_IN_WINDOW = "(SELECT request_model, min(t_s) AS first_t FROM s GROUP BY request_model)"
"""Each model's first appearance within the window, when the caller has no wider view."""
NO_ACCOUNTS = (
    "(SELECT CAST(NULL AS VARCHAR) AS account_id, CAST(NULL AS TIMESTAMP) AS created_at, "
    "CAST(NULL AS VARCHAR) AS email_domain, CAST(NULL AS VARCHAR) AS billing_country, "
    "CAST(NULL AS VARCHAR) AS signup_channel, CAST(NULL AS VARCHAR) AS tier WHERE 1 = 0)"
)


def feature_sql(
    signals: str,
    accounts: str | None,
    start_s: float,
    end_s: float,
    model_firsts: str | None = None,
    feature_set: str | None = None,
    duckdb: bool = False,
) -> str:
    """SQL for one row per account that sent a request in [start_s, end_s) (epoch seconds).

    `model_firsts` (request_model, first_t) gives each model's first appearance in all traffic
    the caller has seen; without it, first appearances within the window are used. Every row
    carries `feature_set` (default: `features.version.FEATURE_SET`).

    `duckdb=True` adds DuckDB's planner hint that the request signals are read where each part
    of the query needs them instead of materialised once: materialised, every signal column of
    the window is held (and past the memory limit spilled: 10 GB written at 10M rows), which
    took twice as long. It is a plan, not a definition: values are the same, and the feature
    set's version is hashed from the portable text without it.
    """
    if feature_set is None:
        from features.version import FEATURE_SET  # derived from this module's SQL, so not above

        feature_set = FEATURE_SET
    if end_s <= start_s:
        raise ValueError(f"window end must be after its start, got {start_s} .. {end_s}")
    accounts = accounts or NO_ACCOUNTS
    base = ",\n    ".join(f"{f.sql} AS {f.name}" for f in FEATURES if f.stage == "base")
    final = ",\n  ".join(
        f"CAST(coalesce({('b.' + f.name) if f.stage == 'base' else f.sql}, "
        f"{f.default}) AS {f.dtype}) AS {f.name}"
        for f in FEATURES
    )
    places = {"firsts": model_firsts or FIRSTS_IN_WINDOW, "end_s": str(end_s)}
    helpers = ",\n".join(f"{h.name} AS (\n  {h.sql.format_map(places)}\n)" for h in HELPERS)
    joins = "\n".join(
        f"LEFT JOIN {h.name} ON b.account_id = {h.name}.account_id" for h in HELPERS if h.joined
    )
    return f"""
WITH w AS (SELECT {start_s} AS start_s, {end_s} AS end_s, ({end_s} - {start_s}) / 3600.0 AS window_hours),
s AS {"NOT MATERIALIZED " if duckdb else ""}(SELECT * FROM {signals} WHERE t_s >= {start_s} AND t_s < {end_s}),
a AS (SELECT * FROM {accounts}),
b AS (
  SELECT account_id,
    {base}
  FROM s GROUP BY account_id
),
{helpers}
SELECT b.account_id, '{feature_set}' AS feature_set,
  {final}
FROM b
CROSS JOIN w
{joins}
LEFT JOIN a ON b.account_id = a.account_id
ORDER BY b.account_id
"""


__all__ = ["FIRSTS_IN_WINDOW", "NO_ACCOUNTS", "feature_sql", "newest_model_sql"]
