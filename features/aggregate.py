"""Per-account aggregation of request signals over a window, as one SQL query.

The query is generated from the registry and uses plain aggregates, CASE and window functions,
so DuckDB runs it locally and Spark SQL can run the same text (see issue: Spark). It reads two
relations by name: the request signals and the accounts table (either may be a Parquet scan).
"""

from __future__ import annotations

from features.registry import COUNTRY_UTC_OFFSET, FEATURE_SET, FEATURES, FREEMAIL

NO_ACCOUNTS = (
    "(SELECT CAST(NULL AS VARCHAR) AS account_id, CAST(NULL AS TIMESTAMP) AS created_at, "
    "CAST(NULL AS VARCHAR) AS email_domain, CAST(NULL AS VARCHAR) AS billing_country, "
    "CAST(NULL AS VARCHAR) AS signup_channel, CAST(NULL AS VARCHAR) AS tier WHERE 1 = 0)"
)


def _offsets() -> str:
    rows = ", ".join(f"('{c}', {o})" for c, o in sorted(COUNTRY_UTC_OFFSET.items()))
    return f"(SELECT * FROM (VALUES {rows}) AS v(country, utc_offset))"


def newest_model_sql(firsts: str, before: str) -> str:
    """The newest model (request_model, first_t) first seen before `before` (epoch seconds, SQL).

    A model counts as released in the data only if it first appeared more than a day after the
    earliest model did; models first seen at or after `before` are not yet out for this window.
    """
    return (
        f"SELECT request_model, first_t FROM {firsts} "
        f"WHERE first_t > (SELECT min(first_t) FROM {firsts}) + 86400 AND first_t < {before} "
        "ORDER BY first_t DESC LIMIT 1"
    )


def feature_sql(
    signals: str,
    accounts: str | None,
    start_s: float,
    end_s: float,
    model_firsts: str | None = None,
) -> str:
    """SQL for one row per account that sent a request in [start_s, end_s) (epoch seconds).

    `model_firsts` (request_model, first_t) gives each model's first appearance in all traffic
    the caller has seen; without it, first appearances within the window are used.
    """
    if end_s <= start_s:
        raise ValueError(f"window end must be after its start, got {start_s} .. {end_s}")
    accounts = accounts or NO_ACCOUNTS
    base = ",\n    ".join(f"{f.sql} AS {f.name}" for f in FEATURES if f.stage == "base")
    freemail = ", ".join(f"'{d}'" for d in FREEMAIL)
    final = ",\n  ".join(
        f"CAST(coalesce({('b.' + f.name) if f.stage == 'base' else f.sql.format(freemail=freemail)}, "
        f"{f.default}) AS {f.dtype}) AS {f.name}"
        for f in FEATURES
    )
    return f"""
WITH w AS (SELECT {start_s} AS start_s, {end_s} AS end_s, ({end_s} - {start_s}) / 3600.0 AS window_hours),
s AS (SELECT * FROM {signals} WHERE t_s >= {start_s} AND t_s < {end_s}),
a AS (SELECT * FROM {accounts}),
tz AS (
  SELECT a.account_id, coalesce(o.utc_offset, 0) AS utc_offset
  FROM a LEFT JOIN {_offsets()} AS o ON upper(a.billing_country) = o.country
),
b AS (
  SELECT account_id,
    {base}
  FROM s GROUP BY account_id
),
slots AS (
  SELECT s.account_id, s.hour_utc, s.dow_utc, count(*) AS c,
    sum(CASE WHEN ((s.hour_utc + coalesce(tz.utc_offset, 0) + 48) % 24) < 6 THEN 1 ELSE 0 END) AS night
  FROM s LEFT JOIN tz ON s.account_id = tz.account_id
  GROUP BY s.account_id, s.hour_utc, s.dow_utc
),
hours AS (SELECT account_id, hour_utc, sum(c) AS c FROM slots GROUP BY account_id, hour_utc),
entropy AS (
  SELECT account_id, -sum(p * ln(p)) / ln(24) AS hour_entropy, count(*) AS active_hours
  FROM (SELECT account_id, c / sum(c) OVER (PARTITION BY account_id) AS p FROM hours) AS q
  GROUP BY account_id
),
h AS (
  SELECT slots.account_id, max(e.hour_entropy) AS hour_entropy, max(e.active_hours) AS active_hours,
    count(*) AS week_slots, sum(night) * 1.0 / sum(c) AS night_share
  FROM slots JOIN entropy AS e ON slots.account_id = e.account_id
  GROUP BY slots.account_id
),
g AS (
  SELECT account_id,
    (stddev_pop(gap) - avg(gap)) / nullif(stddev_pop(gap) + avg(gap), 0) AS burstiness
  FROM (SELECT account_id, t_s - lag(t_s) OVER (PARTITION BY account_id ORDER BY t_s) AS gap FROM s) AS q
  WHERE gap IS NOT NULL GROUP BY account_id
),
heads AS (SELECT account_id, head_hash, count(*) AS c FROM s GROUP BY account_id, head_hash),
tails AS (SELECT account_id, tail_hash, count(*) AS c FROM s GROUP BY account_id, tail_hash),
t AS (
  SELECT x.account_id, x.top_head, y.top_tail
  FROM (SELECT account_id, max(c) AS top_head FROM heads GROUP BY account_id) AS x
  JOIN (SELECT account_id, max(c) AS top_tail FROM tails GROUP BY account_id) AS y
    ON x.account_id = y.account_id
),
bands AS (
  SELECT account_id, 1 AS band, band_1 AS key, count(*) AS c FROM s GROUP BY account_id, band_1
  UNION ALL
  SELECT account_id, 2 AS band, band_2 AS key, count(*) AS c FROM s GROUP BY account_id, band_2
),
d AS (
  SELECT account_id, max(colliding) AS near_dup
  FROM (
    SELECT account_id, band, sum(CASE WHEN c > 1 THEN c ELSE 0 END) AS colliding
    FROM bands GROUP BY account_id, band
  ) AS q GROUP BY account_id
),
firsts AS (SELECT request_model, first_t FROM {model_firsts or "(SELECT request_model, min(t_s) AS first_t FROM s GROUP BY request_model)"} AS mf),
newest AS ({newest_model_sql("firsts", str(end_s))}),
m AS (
  SELECT s.account_id,
    (min(CASE WHEN s.request_model = n.request_model THEN s.t_s END) - max(n.first_t)) / 3600.0 AS lag_hours,
    avg(CASE WHEN s.t_s >= n.first_t THEN (CASE WHEN s.request_model = n.request_model THEN 1.0 ELSE 0.0 END) END)
      AS newest_share
  FROM s CROSS JOIN newest AS n GROUP BY s.account_id
)
SELECT b.account_id, '{FEATURE_SET}' AS feature_set,
  {final}
FROM b
CROSS JOIN w
LEFT JOIN h ON b.account_id = h.account_id
LEFT JOIN g ON b.account_id = g.account_id
LEFT JOIN t ON b.account_id = t.account_id
LEFT JOIN d ON b.account_id = d.account_id
LEFT JOIN m ON b.account_id = m.account_id
LEFT JOIN a ON b.account_id = a.account_id
ORDER BY b.account_id
"""
