"""Lockstep edges after SynchroTrap (Cao et al., CCS 2014): accounts that act together in bursts.

A swarm dispatched by one controller hits the API in bursts: in a minute or two, dozens of its
accounts send requests at once, then go quiet. Each pair of members may share only a few percent
of its active windows (every account also works alone), so set similarity over all of an
account's activity (the `synchrony` edges) misses it; what gives it away is that the windows
they share are windows nobody else's rate explains.

Four steps in SQL (DuckDB here, Spark SQL through `features.spark.to_spark`):

1. **Burst windows.** Requests fall into windows of `window_s` seconds, per stratum: all
   traffic, each model and each client string (at scale a burst stands out only against the
   traffic to the model it targets or from the client build that sends it; in a small
   population it is clearer against everything). A window is a burst
   when its active accounts `n` are far above its baseline `lam`: the local level (the larger
   of the means over the `baseline_windows` before it and after it, so a sharp office-hours
   rise is no burst) plus the excess over the local level that the same slot shows on average
   in every hour (schedules at :00) or, over three days or more, on every day (a nightly
   cron). Windows within `baseline_windows` of either end of the data have no baseline on
   one side and are never bursts. Far above: the Chernoff bound on the Poisson tail,
   `exp(-lam) (e lam / n)^n`, is below `window_alpha`, and `n >= min_burst`.
2. **Bursty accounts.** An account is in a burst at its own rate now and then; a swarm member
   is in far more of them. With `p` the share of an hour of day's windows the account is
   active in (any model) and `H` the burst windows in that hour, it is expected in `e = sum p H`
   bursts; it is bursty when it is in `h >= min_co` and the Chernoff bound on
   `P(X >= h | e)` is below `account_alpha`. A busy account at popular hours is in many bursts
   and expected in as many.
3. **Co-activity.** Per burst window with at most `max_sharing` accounts (fan-out is capped;
   never all pairs of the population), every pair of its bursty accounts counts one. Pairs
   with `min_co` shared bursts or more are candidates.
4. **Chance.** For a candidate pair, the co-activity expected by chance is what one account's
   own rate gives in the other's bursts: `mu = max(sum over a's bursts of p_b, sum over b's
   bursts of p_a)`, with `p` the share of windows at that hour of day the account is active
   in. (A busy account active in half of all windows meets half of any swarm member's
   bursts; that is no lockstep.) The pair is a `lockstep` edge when `P(X >= count)`,
   X ~ Poisson(mu), is below `pair_alpha` (computed here, exactly, on the candidates): the
   stated false-link rate per tested pair (at most `pair_alpha` times the candidates tested are
   expected to be false links when accounts act independently at their own hourly rates).

Accounts busy at the same popular hours share no bursts (their windows are explained by the
baselines), and two busy accounts that land in a few bursts by chance have a large `mu`.

**Among the accounts under review** (`focus_edges`). Against a whole population a swarm's
bursts are often no burst at all: a dozen extra accounts in a minute when seventy are active
anyway is within chance. Once scoring has flagged accounts and reported cells, the question is
smaller and sharper: do *these* accounts act together? Among them alone there is no need to
find bursts first. Every pair of them is counted in every window it shares (`minutes_sql`:
each account's active windows, kept for the whole window; fan-out capped at `max_sharing`
accounts per window), and the count is tested against chance as in step 4, with each
account's hour-of-day rate taken over the days it was active (a new or sporadic account is
not made rarer than it is). Pairs that pass are tested again with a schedule-aware chance: in
each shared window the other account is expected at least as often as it was active at that
minute of the day on its other days (leave-one-out), so two cron jobs at :00, which meet every
hour by their schedules, are no lockstep. The test is family-wise: a pair is an edge when its
Poisson tail is below `focus_alpha` divided by the pairs tested (Bonferroni), so all the edges
found among independent accounts are false with probability at most `focus_alpha` together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl
from scipy.stats import poisson


@dataclass(frozen=True)
class LockstepConfig:
    window_s: int = 60
    baseline_windows: int = 30
    min_burst: int = 5
    window_alpha: float = 1e-2
    min_co: int = 3
    account_alpha: float = 1e-4
    pair_alpha: float = 1e-4
    max_sharing: int = 200
    saturate: int = 3  # shared bursts at which an edge reaches full strength
    focus_alpha: float = 1e-2  # family-wise false-link rate of `focus_edges`

    def __post_init__(self) -> None:
        if self.window_s < 1 or 86400 % self.window_s or 3600 % self.window_s:
            raise ValueError(f"window_s must divide an hour, got {self.window_s}")
        alphas = (self.window_alpha, self.account_alpha, self.pair_alpha, self.focus_alpha)
        if not all(0 < x < 1 for x in alphas):
            raise ValueError(
                "window_alpha, account_alpha, pair_alpha and focus_alpha must be in (0, 1)"
            )
        if self.min_co < 2 or self.min_burst < 2:
            raise ValueError("min_co and min_burst must be at least 2")


def _log_tail(n: str, lam: str) -> str:
    """SQL for the log of the Chernoff bound on P(X >= n), X ~ Poisson(lam), for n > lam."""
    return f"(-({lam}) + ({n}) - ({n}) * ln(({n}) / ({lam})))"


def candidates_sql(cfg: LockstepConfig) -> str:
    """Candidate pairs over the relation `signals`: src, dst, together (shared bursts), mu
    (expected by chance), first_w / last_w (window numbers of the first and last shared burst),
    tested (candidate pairs in all) and bursts (burst windows found)."""
    w, h = cfg.window_s, cfg.baseline_windows
    per_hour, per_day = 3600 // w, 86400 // w
    return f"""
WITH a AS (
  SELECT DISTINCT account_id, CAST(floor(t_s / {w}) AS BIGINT) AS w,
    coalesce(request_model, '') AS k
  FROM signals
  UNION ALL
  SELECT DISTINCT account_id, CAST(floor(t_s / {w}) AS BIGINT) AS w, '*' AS k
  FROM signals
  UNION ALL
  SELECT DISTINCT account_id, CAST(floor(t_s / {w}) AS BIGINT) AS w,
    concat('client:', user_agent) AS k
  FROM signals WHERE user_agent IS NOT NULL
),
span AS (SELECT min(w) AS lo, max(w) AS hi, (max(w) - min(w) + 1) AS n_w FROM a),
cnt AS (SELECT k, w, count(*) AS n FROM a GROUP BY k, w),
base AS (
  SELECT k, w, n, greatest(
    coalesce(sum(n) OVER (PARTITION BY k ORDER BY w
                          RANGE BETWEEN {h} PRECEDING AND 1 PRECEDING), 0),
    coalesce(sum(n) OVER (PARTITION BY k ORDER BY w
                          RANGE BETWEEN 1 FOLLOWING AND {h} FOLLOWING), 0)
  ) * 1.0 / {h} AS local
  FROM cnt
),
hour_slot AS (
  SELECT k, w % {per_hour} AS s,
    sum(greatest(n - local, 0)) * 1.0 / greatest(1, (SELECT n_w FROM span) / {per_hour}) AS m
  FROM base GROUP BY k, w % {per_hour}
),
day_slot AS (
  SELECT k, w % {per_day} AS s,
    CASE WHEN (SELECT n_w FROM span) >= 3 * {per_day}
         THEN sum(greatest(n - local, 0)) * 1.0 / ((SELECT n_w FROM span) / {per_day})
         ELSE 0 END AS m
  FROM base GROUP BY k, w % {per_day}
),
lam AS (
  SELECT b.k, b.w, b.n, greatest(b.local + greatest(hs.m, ds.m), 0.05) AS lam
  FROM base AS b
  JOIN hour_slot AS hs ON hs.k = b.k AND hs.s = b.w % {per_hour}
  JOIN day_slot AS ds ON ds.k = b.k AND ds.s = b.w % {per_day}
),
hot AS (
  SELECT k, w, n FROM lam
  WHERE w >= (SELECT lo FROM span) + {h} AND w <= (SELECT hi FROM span) - {h}
    AND n >= {cfg.min_burst} AND n <= {cfg.max_sharing} AND n > lam
    AND {_log_tail("n", "lam")} <= {math.log(cfg.window_alpha)}
),
ha AS (
  SELECT DISTINCT a.account_id, a.w FROM a JOIN hot ON a.k = hot.k AND a.w = hot.w
),
prof AS (
  SELECT account_id, CAST(floor((w % {per_day}) / {per_hour}) AS BIGINT) AS hod,
    count(*) * 1.0 / greatest(1, (SELECT n_w FROM span) / {per_day}) / {per_hour} AS p
  FROM a WHERE k = '*' GROUP BY account_id, CAST(floor((w % {per_day}) / {per_hour}) AS BIGINT)
),
bursts AS (
  SELECT CAST(floor((w % {per_day}) / {per_hour}) AS BIGINT) AS hod, count(*) AS nh
  FROM (SELECT DISTINCT w FROM hot) AS hw
  GROUP BY CAST(floor((w % {per_day}) / {per_hour}) AS BIGINT)
),
joined AS (SELECT account_id, count(*) AS h FROM ha GROUP BY account_id),
expected AS (
  SELECT prof.account_id, sum(prof.p * bursts.nh) AS e
  FROM prof JOIN bursts ON bursts.hod = prof.hod
  GROUP BY prof.account_id
),
bursty AS (
  SELECT joined.account_id FROM joined JOIN expected ON expected.account_id = joined.account_id
  WHERE joined.h >= {cfg.min_co} AND joined.h > greatest(expected.e, 1e-9)
    AND {_log_tail("joined.h", "greatest(expected.e, 1e-9)")} <= {math.log(cfg.account_alpha)}
),
hw AS (SELECT ha.account_id, ha.w FROM ha JOIN bursty ON bursty.account_id = ha.account_id),
co AS (
  SELECT x.account_id AS src, y.account_id AS dst, count(*) AS together,
    min(x.w) AS first_w, max(x.w) AS last_w
  FROM hw AS x JOIN hw AS y ON x.w = y.w AND x.account_id < y.account_id
  GROUP BY x.account_id, y.account_id
  HAVING count(*) >= {cfg.min_co}
),
side AS (
  SELECT co.src AS src, co.dst AS dst, 'src' AS side, sum(coalesce(pd.p, 0.0)) AS m
  FROM co JOIN hw AS x ON x.account_id = co.src
  LEFT JOIN prof AS pd ON pd.account_id = co.dst
    AND pd.hod = CAST(floor((x.w % {per_day}) / {per_hour}) AS BIGINT)
  GROUP BY co.src, co.dst
  UNION ALL
  SELECT co.src AS src, co.dst AS dst, 'dst' AS side, sum(coalesce(ps.p, 0.0)) AS m
  FROM co JOIN hw AS y ON y.account_id = co.dst
  LEFT JOIN prof AS ps ON ps.account_id = co.src
    AND ps.hod = CAST(floor((y.w % {per_day}) / {per_hour}) AS BIGINT)
  GROUP BY co.src, co.dst
),
mu AS (SELECT src, dst, max(m) AS mu FROM side GROUP BY src, dst)
SELECT co.src, co.dst, co.together, coalesce(mu.mu, 0.0) AS mu, co.first_w, co.last_w,
  (SELECT count(*) FROM co) AS tested, (SELECT count(DISTINCT w) FROM hot) AS bursts
FROM co LEFT JOIN mu ON mu.src = co.src AND mu.dst = co.dst"""


def edges_from(candidates: pl.DataFrame, cfg: LockstepConfig, strength: float) -> pl.DataFrame:
    """`lockstep` edges (src, dst, edge_type, weight, evidence) from `candidates_sql`'s rows:
    pairs whose shared bursts chance explains with probability below `pair_alpha`."""
    return _edges(_beyond_chance(candidates, cfg.pair_alpha), cfg, strength, "bursts")


def _beyond_chance(pairs: pl.DataFrame, limit: float) -> pl.DataFrame:
    """The pairs (together, mu) whose shared windows X ~ Poisson(mu) reaches with probability
    at most `limit` (exact)."""
    p = poisson.sf(pairs["together"].to_numpy() - 1, pairs["mu"].to_numpy())
    return pairs.filter(pl.Series(p <= limit, dtype=pl.Boolean))


def _edges(pairs: pl.DataFrame, cfg: LockstepConfig, strength: float, what: str) -> pl.DataFrame:
    """The edge rows of tested pairs (src, dst, together, mu, first_w, last_w)."""
    first = pl.from_epoch(pl.col("first_w").cast(pl.Int64) * cfg.window_s, time_unit="s")
    last = pl.from_epoch(pl.col("last_w").cast(pl.Int64) * cfg.window_s, time_unit="s")
    return pairs.select(
        "src",
        "dst",
        pl.lit("lockstep").alias("edge_type"),
        (pl.min_horizontal(pl.col("together") / cfg.saturate, pl.lit(1.0)) * strength).alias(
            "weight"
        ),
        pl.format(
            "{} {} of {}s together ({} expected by chance), {} to {} UTC",
            "together",
            pl.lit(what),
            pl.lit(cfg.window_s),
            pl.col("mu").round(2),
            first.dt.strftime("%m-%d %H:%M"),
            last.dt.strftime("%m-%d %H:%M"),
        ).alias("evidence"),
    ).cast(_EDGES)


MINUTES = {"account_id": pl.String, "w": pl.Int32}


def minutes_sql(cfg: LockstepConfig) -> str:
    """Each account's active windows over `signals` (MINUTES: account_id, w, the window number
    since the epoch): what `focus_edges` counts once the accounts under review are known."""
    return (
        f"SELECT DISTINCT account_id, CAST(floor(t_s / {cfg.window_s}) AS INTEGER) AS w "
        "FROM signals"
    )


def focus_edges(
    minutes: pl.DataFrame, accounts: pl.Series, cfg: LockstepConfig, strength: float
) -> pl.DataFrame:
    """`lockstep` edges among `accounts` alone (the accounts under review), from their active
    windows in `minutes` (MINUTES): every pair's shared windows against what their own
    hour-of-day rates and daily schedules give, family-wise at `focus_alpha` (see the module's
    last section)."""
    per_hour, per_day = 3600 // cfg.window_s, 86400 // cfg.window_s
    active = (
        minutes.cast(MINUTES)
        .filter(pl.col("account_id").is_in(accounts.implode()))
        .with_columns(((pl.col("w") % per_day) // per_hour).alias("hod"))
    )
    crowd = active.group_by("w").len("n").filter(pl.col("n") <= cfg.max_sharing)
    kept = active.join(crowd.select("w"), on="w")
    pairs = (
        kept.select("w", "account_id")
        .join(kept.select("w", pl.col("account_id").alias("dst")), on="w")
        .filter(pl.col("account_id") < pl.col("dst"))
        .group_by(pl.col("account_id").alias("src"), "dst")
        .agg(
            pl.len().alias("together"),
            pl.col("w").min().alias("first_w"),
            pl.col("w").max().alias("last_w"),
        )
        .filter(pl.col("together") >= cfg.min_co)
    )
    if pairs.is_empty():
        return pl.DataFrame(schema=_EDGES)
    days = active.group_by("account_id").agg((pl.col("w") // per_day).n_unique().alias("days"))
    rate = (
        active.group_by("account_id", "hod")
        .len("k")
        .join(days, on="account_id")
        .select("account_id", "hod", "k", (pl.col("k") / (pl.col("days") * per_hour)).alias("p"))
    )

    def hourly(own: str, other: str) -> pl.DataFrame:
        """Per pair: the windows of `other` its hour-of-day rates expect in `own`'s windows."""
        return (
            pairs.select(own, other)
            .join(rate.select(pl.col("account_id").alias(own), "hod", "k"), on=own)
            .join(
                rate.select(pl.col("account_id").alias(other), "hod", "p"),
                on=[other, "hod"],
                how="left",
            )
            .group_by("src", "dst")
            .agg((pl.col("k") * pl.col("p").fill_null(0.0)).sum().alias(f"mu_{own}"))
        )

    limit = cfg.focus_alpha / pairs.height  # family-wise over every pair tested
    found = _significant(pairs, hourly, limit)
    if found.is_empty():
        return pl.DataFrame(schema=_EDGES)
    slot = pl.col("w") % per_day
    seen = active.select("account_id", "w", "hod", slot.alias("slot"))
    on_days = seen.group_by("account_id", "slot").len("c").join(days, on="account_id")

    def scheduled(own: str, other: str) -> pl.DataFrame:
        """`hourly`, where in each of `own`'s windows `other` is expected at least as often as
        it was active at that minute of the day on its other days (a cron at :00 meets every
        other cron at :00; that is its schedule, not lockstep)."""
        return (
            found.select(own, other)
            .join(seen.rename({"account_id": own}), on=own)
            .join(
                rate.select(pl.col("account_id").alias(other), "hod", "p"),
                on=[other, "hod"],
                how="left",
            )
            .join(on_days.rename({"account_id": other}), on=[other, "slot"], how="left")
            .join(
                seen.select(pl.col("account_id").alias(other), "w", pl.lit(1).alias("hit")),
                on=[other, "w"],
                how="left",
            )
            .with_columns(
                pl.when(pl.col("days") > 1)
                .then((pl.col("c") - pl.col("hit").fill_null(0)) / (pl.col("days") - 1))
                .otherwise(0.0)
                .fill_null(0.0)
                .alias("repeat")
            )
            .group_by("src", "dst")
            .agg(pl.max_horizontal(pl.col("p").fill_null(0.0), "repeat").sum().alias(f"mu_{own}"))
        )

    found = _significant(found.select(pairs.columns), scheduled, limit)
    return _edges(found, cfg, strength, "windows")


def _significant(pairs: pl.DataFrame, chance, limit: float) -> pl.DataFrame:
    """The pairs whose shared windows `chance(own, other)` (both ways, the larger) explains with
    Poisson probability at most `limit`."""
    tested = (
        pairs.join(chance("src", "dst"), on=["src", "dst"])
        .join(chance("dst", "src"), on=["src", "dst"])
        .with_columns(pl.max_horizontal("mu_src", "mu_dst").alias("mu"))
    )
    return _beyond_chance(tested, limit)


_EDGES = {
    "src": pl.String,
    "dst": pl.String,
    "edge_type": pl.String,
    "weight": pl.Float64,
    "evidence": pl.String,
}
