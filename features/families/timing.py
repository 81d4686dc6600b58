"""Timing: when an account is active, how evenly, and how bursty (in its billing country's
time zone where that matters)."""

from features.families import Feature, Helper, share

FAMILY = "timing"

COUNTRY_UTC_OFFSET = {
    "US": -6, "CA": -5, "MX": -6, "BR": -3, "AR": -3, "CL": -4, "CO": -5, "GB": 0, "IE": 0,
    "PT": 0, "ES": 1, "FR": 1, "DE": 1, "NL": 1, "BE": 1, "IT": 1, "CH": 1, "AT": 1, "PL": 1,
    "SE": 1, "NO": 1, "DK": 1, "FI": 2, "GR": 2, "UA": 2, "IL": 2, "TR": 3, "RU": 3, "AE": 4,
    "IN": 5, "PK": 5, "BD": 6, "TH": 7, "VN": 7, "ID": 7, "SG": 8, "MY": 8, "CN": 8, "HK": 8,
    "TW": 8, "PH": 8, "KR": 9, "JP": 9, "AU": 10, "NZ": 12, "ZA": 2, "NG": 1, "EG": 2, "KE": 3,
}  # fmt: skip
"""A coarse UTC offset per billing country, for the account's apparent local night."""

_OFFSETS = (
    "(SELECT * FROM (VALUES "
    + ", ".join(f"('{c}', {o})" for c, o in sorted(COUNTRY_UTC_OFFSET.items()))
    + ") AS v(country, utc_offset))"
)

HELPERS = (
    Helper(
        "tz",
        "each account's UTC offset from its billing country (0 when unknown)",
        "SELECT a.account_id, coalesce(o.utc_offset, 0) AS utc_offset\n"
        f"  FROM a LEFT JOIN {_OFFSETS} AS o ON upper(a.billing_country) = o.country",
    ),
    Helper(
        "slots",
        "requests per (account, hour, weekday), and how many fell in the local night",
        """SELECT s.account_id, s.hour_utc, s.dow_utc, count(*) AS c,
    sum(CASE WHEN ((s.hour_utc + coalesce(tz.utc_offset, 0) + 48) % 24) < 6 THEN 1 ELSE 0 END) AS night
  FROM s LEFT JOIN tz ON s.account_id = tz.account_id
  GROUP BY s.account_id, s.hour_utc, s.dow_utc""",
    ),
    Helper(
        "hours",
        "requests per (account, hour of day)",
        "SELECT account_id, hour_utc, sum(c) AS c FROM slots GROUP BY account_id, hour_utc",
    ),
    Helper(
        "entropy",
        "entropy of each account's hour-of-day histogram, and its active hours",
        # H = ln N - (1/N) sum c ln c; the sum is exact (DECIMAL), so it does not depend on the
        # order a parallel engine adds the hours in and reruns agree to the last bit
        """SELECT account_id,
    (ln(sum(c)) - CAST(sum(CAST(c * ln(c) AS DECIMAL(38, 9))) AS DOUBLE) / sum(c)) / ln(24) AS hour_entropy,
    count(*) AS active_hours
  FROM hours GROUP BY account_id""",
    ),
    Helper(
        "h",
        "per account: hour entropy, active hours, week slots used, local-night share",
        """SELECT slots.account_id, max(e.hour_entropy) AS hour_entropy, max(e.active_hours) AS active_hours,
    count(*) AS week_slots, sum(night) * 1.0 / sum(c) AS night_share
  FROM slots JOIN entropy AS e ON slots.account_id = e.account_id
  GROUP BY slots.account_id""",
        joined=True,
    ),
    Helper(
        "g",
        "per account: burstiness of the gaps between consecutive requests",
        # mean and spread from exact (DECIMAL) sums of the gaps and their squares
        """SELECT account_id, (sd - mean) / nullif(sd + mean, 0) AS burstiness
  FROM (
    SELECT account_id, m1 AS mean, sqrt(greatest(m2 - m1 * m1, 0)) AS sd
    FROM (
      SELECT account_id,
        CAST(sum(CAST(gap AS DECIMAL(38, 6))) AS DOUBLE) / count(*) AS m1,
        CAST(sum(CAST(gap * gap AS DECIMAL(38, 6))) AS DOUBLE) / count(*) AS m2
      FROM (SELECT account_id, t_s - lag(t_s) OVER (PARTITION BY account_id ORDER BY t_s) AS gap FROM s) AS q
      WHERE gap IS NOT NULL GROUP BY account_id
    ) AS moments
  ) AS spread""",
        joined=True,
    ),
)

FEATURES = (
    Feature(
        "hour_entropy",
        "DOUBLE",
        FAMILY,
        "entropy of the hour-of-day histogram / log 24 (1 = flat 24/7)",
        "h.hour_entropy",
        "final",
    ),
    Feature(
        "active_hours_share",
        "DOUBLE",
        FAMILY,
        "share of the 24 hours of day with any request",
        "h.active_hours / 24.0",
        "final",
    ),
    Feature(
        "night_share",
        "DOUBLE",
        FAMILY,
        "share of requests 00:00-06:00 in the billing country's time zone",
        "h.night_share",
        "final",
    ),
    Feature(
        "weekend_share",
        "DOUBLE",
        FAMILY,
        "share of requests on Saturday or Sunday (UTC)",
        share("dow_utc >= 5"),
    ),
    Feature(
        "burstiness",
        "DOUBLE",
        FAMILY,
        "(sd - mean) / (sd + mean) of inter-arrival gaps, in [-1, 1]",
        "coalesce(g.burstiness, 0)",
        "final",
    ),
    Feature(
        "hour_of_week_coverage",
        "DOUBLE",
        FAMILY,
        "distinct (weekday, hour) slots used / slots in the window",
        "h.week_slots / least(168.0, greatest(b.n_active_days, 1) * 24.0)",
        "final",
    ),
)
