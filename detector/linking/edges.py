"""Typed candidate edges between accounts, each weighted by how rare the shared value is.

Edges come from shared values (payment instrument, source and sign-up ranges, client string plus
creation time, first use of a new model) and from set similarity estimated with MinHash LSH
(prompt templates, synchronised activity). The SQL uses plain joins, aggregates and window
functions so it runs in DuckDB here and, transpiled (`features.spark.to_spark`), in Spark SQL. Behaviour similarity is a random-hyperplane LSH over the
feature table, in numpy. Every function returns rows (src, dst, edge_type, weight, evidence),
src < dst.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from detector.linking.cluster import EDGE_SCHEMA
from detector.linking.lockstep import LockstepConfig

PRIME = 2147483647  # 2**31 - 1: MinHash arithmetic stays inside signed 64-bit in every engine


@dataclass(frozen=True)
class EdgeType:
    name: str
    strength: float
    meaning: str
    model_input: bool = True  # the shipped model reads it
    cell_input: bool = True  # Leiden clusters (cells) on it (False: joins cells into operations)
    corroborating: bool = False  # supports other links; alone, never puts an unflagged
    # account into a campaign (`scoring._tied`)


EDGE_TYPES = {
    e.name: e
    for e in (
        EdgeType("payment", 1.0, "same payment instrument"),
        EdgeType("signup_subnet", 0.6, "signed up from the same /24 (IPv6 /48)"),
        EdgeType("source_subnet", 0.5, "requests from the same /24 (IPv6 /48)"),
        EdgeType(
            "agent_cohort",
            0.4,
            "same client string and created within the same two days",
            corroborating=True,
        ),
        EdgeType("template", 0.8, "overlapping prompt templates (MinHash of openings and endings)"),
        EdgeType("synchrony", 0.8, "similar actions in the same 10-minute buckets, over days"),
        EdgeType(
            "model_switch",
            0.25,
            "first used a new model in the same hour, soon after release",
            corroborating=True,
        ),
        EdgeType("behaviour", 0.2, "nearly identical behaviour vectors", corroborating=True),
        EdgeType(
            "lockstep",
            0.8,
            "active together in bursts of a minute or two that their own rates do not explain",
            model_input=False,
            cell_input=False,
        ),
    )
}


@dataclass(frozen=True)
class LinkConfig:
    """Knobs of edge generation. A value shared by more than `max_sharing` accounts is too
    common to be evidence and makes no edges (the rarity weight would be tiny anyway)."""

    max_sharing: int = 200
    minhash_k: int = 32
    band_rows: int = 4
    min_jaccard: float = 0.3
    min_set: int = 5
    sync_bucket_s: int = 600
    switch_max_lag_h: float = 48.0
    behaviour_bits: int = 14
    behaviour_tables: int = 4
    behaviour_min_cos: float = 0.995
    behaviour_k: int = 3
    seed: int = 17
    lockstep: LockstepConfig = LockstepConfig()

    def __post_init__(self) -> None:
        if self.minhash_k % self.band_rows:
            raise ValueError(
                f"minhash_k ({self.minhash_k}) must be a multiple of band_rows ({self.band_rows})"
            )
        if self.max_sharing < 2:
            raise ValueError(f"max_sharing must be at least 2, got {self.max_sharing}")
        if not 0 < self.min_jaccard <= 1:
            raise ValueError(f"min_jaccard must be in (0, 1], got {self.min_jaccard}")


@dataclass(frozen=True)
class SetRule:
    """Which accounts take part in a MinHash edge type (see `minhash_sql`)."""

    min_set: int
    min_days: int
    max_values: str = "NULL"  # SQL for the most values an account may hold (NULL: no limit)


def shared_value_sql(values: str, edge: EdgeType, cfg: LinkConfig) -> str:
    """Edges between accounts sharing a value; weight strength / log2(1 + accounts sharing)."""
    return f"""
WITH v AS (SELECT DISTINCT account_id, CAST(value AS VARCHAR) AS value FROM ({values}) AS q
           WHERE value IS NOT NULL),
g AS (SELECT value, count(*) AS n FROM v GROUP BY value HAVING count(*) BETWEEN 2 AND {cfg.max_sharing}),
p AS (
  SELECT a.account_id AS src, b.account_id AS dst, g.value, 1.0 / log2(1 + g.n) AS w
  FROM v AS a JOIN g ON a.value = g.value
  JOIN v AS b ON b.value = g.value AND a.account_id < b.account_id
),
r AS (SELECT src, dst, value, w, max(w) OVER (PARTITION BY src, dst) AS top FROM p)
SELECT src, dst, '{edge.name}' AS edge_type, max(w) * {edge.strength} AS weight,
  min(CASE WHEN w = top THEN value END) AS evidence
FROM r GROUP BY src, dst"""


def _coefficients(cfg: LinkConfig) -> list[tuple[int, int]]:
    rng = np.random.default_rng(cfg.seed)
    return [(int(a), int(b)) for a, b in rng.integers(1, PRIME, size=(cfg.minhash_k, 2))]


def minhash_sql(sets: str, edge: EdgeType, cfg: LinkConfig, rule: SetRule) -> str:
    """Edges between accounts whose value sets overlap (estimated Jaccard >= min_jaccard).

    `sets` yields (account_id, x BIGINT in [0, 2**31), day). Values held by more than
    `max_sharing` accounts are dropped first; then accounts need `rule.min_set` values over
    `rule.min_days` days and at most `rule.max_values` (a set that covers nearly everything, like
    a 24/7 service's activity, says nothing about coordination).
    """
    k, r = cfg.minhash_k, cfg.band_rows
    coef = _coefficients(cfg)
    mins = ",\n    ".join(
        f"min(({a} * x + {b}) % {PRIME}) AS m{i}" for i, (a, b) in enumerate(coef)
    )
    bands = "\n  UNION ALL ".join(
        f"SELECT account_id, {j} AS band, concat_ws(':', "
        + ", ".join(f"CAST(m{j * r + t} AS VARCHAR)" for t in range(r))
        + ") AS key FROM sig"
        for j in range(k // r)
    )
    agree = " + ".join(f"(CASE WHEN s1.m{i} = s2.m{i} THEN 1 ELSE 0 END)" for i in range(k))
    return f"""
WITH s AS (SELECT DISTINCT account_id, CAST(x AS BIGINT) AS x, day FROM ({sets}) AS q),
keep AS (SELECT x FROM s GROUP BY x HAVING count(DISTINCT account_id) <= {cfg.max_sharing}),
s2 AS (SELECT s.account_id, s.x, s.day FROM s JOIN keep ON s.x = keep.x),
big AS (
  SELECT account_id FROM s2 GROUP BY account_id
  HAVING count(DISTINCT x) >= {rule.min_set} AND count(DISTINCT day) >= {rule.min_days}
    AND count(DISTINCT x) <= coalesce({rule.max_values}, count(DISTINCT x))
),
sig AS (
  SELECT s2.account_id,
    {mins}
  FROM s2 JOIN big ON s2.account_id = big.account_id GROUP BY s2.account_id
),
bands AS (
  {bands}
),
bucket AS (SELECT band, key FROM bands GROUP BY band, key HAVING count(*) BETWEEN 2 AND {cfg.max_sharing}),
cand AS (
  SELECT DISTINCT a.account_id AS src, b.account_id AS dst
  FROM bands AS a JOIN bucket AS u ON a.band = u.band AND a.key = u.key
  JOIN bands AS b ON b.band = a.band AND b.key = a.key AND a.account_id < b.account_id
),
scored AS (
  SELECT c.src, c.dst, ({agree}) / {float(k)} AS j
  FROM cand AS c JOIN sig AS s1 ON s1.account_id = c.src JOIN sig AS s2 ON s2.account_id = c.dst
)
SELECT src, dst, '{edge.name}' AS edge_type, j * {edge.strength} AS weight,
  concat('jaccard ', CAST(round(j, 2) AS VARCHAR)) AS evidence
FROM scored WHERE j >= {cfg.min_jaccard}"""


def value_queries(cfg: LinkConfig) -> dict[str, str]:
    """The shared-value inputs, over relations `signals` (window) and `accounts`, `firsts`."""
    return {
        "payment": "SELECT account_id, payment_fingerprint AS value FROM accounts",
        "signup_subnet": "SELECT account_id, signup_subnet AS value FROM accounts",
        "source_subnet": "SELECT DISTINCT account_id, subnet AS value FROM signals",
        "agent_cohort": (
            "SELECT s.account_id, concat(s.user_agent, '|', "
            "CAST(CAST(floor(epoch(a.created_at) / 172800) AS BIGINT) AS VARCHAR)) AS value "
            "FROM (SELECT DISTINCT account_id, user_agent FROM signals) AS s "
            "JOIN accounts AS a ON s.account_id = a.account_id"
        ),
        "model_switch": (
            "SELECT s.account_id, CAST(CAST(floor(min(s.t_s) / 3600) AS BIGINT) AS VARCHAR) AS value "
            "FROM signals AS s JOIN newest AS n ON s.request_model = n.request_model "
            f"GROUP BY s.account_id HAVING min(s.t_s) - max(n.first_t) <= {cfg.switch_max_lag_h * 3600}"
        ),
    }


def set_queries(cfg: LinkConfig) -> dict[str, tuple[str, SetRule]]:
    """The MinHash inputs and their rules, over the relation `signals`.

    Templates: the openings and endings an account repeats (used at least twice): what a
    scripted campaign shares whatever task fills the middle. Synchrony: (10-minute bucket,
    coarse action) pairs, from accounts active on at least two days.
    """
    return {
        "template": (
            "SELECT account_id, x, min(day) AS day FROM ("
            f"SELECT account_id, CAST(head_hash % {PRIME} AS BIGINT) AS x, day FROM signals "
            f"UNION ALL SELECT account_id, CAST(tail_hash % {PRIME} AS BIGINT) AS x, day FROM signals"
            ") AS q GROUP BY account_id, x HAVING count(*) >= 2",
            SetRule(min_set=2, min_days=1),
        ),
        "synchrony": (
            f"SELECT account_id, (CAST(floor(t_s / {cfg.sync_bucket_s}) AS BIGINT) * 4 "
            "+ (CASE WHEN n_tools > 0 THEN 1 ELSE 0 END) "
            f"+ (CASE WHEN thinking_mode = 'enabled' THEN 2 ELSE 0 END)) % {PRIME} AS x, day "
            "FROM signals",
            SetRule(
                min_set=cfg.min_set,
                min_days=2,
                max_values=f"(SELECT 0.2 * ((max(t_s) - min(t_s)) / {cfg.sync_bucket_s} + 1) FROM signals)",
            ),
        ),
    }


def robust_scale(x: np.ndarray) -> np.ndarray:
    """Columns log-scaled (sign kept), then centred on the median and divided by the IQR."""
    x = np.sign(x) * np.log1p(np.abs(x))
    med = np.median(x, axis=0)
    spread = np.percentile(x, 75, axis=0) - np.percentile(x, 25, axis=0)
    return (x - med) / np.where(spread > 0, spread, 1.0)


def behaviour_edges(features: pl.DataFrame, columns: list[str], cfg: LinkConfig) -> pl.DataFrame:
    """Near-identical behaviour vectors: random-hyperplane LSH, then exact cosine on candidates.

    Features are log-scaled and robustly standardised; each account keeps its `behaviour_k`
    closest candidates above `behaviour_min_cos`.
    """
    empty = pl.DataFrame(schema=EDGE_SCHEMA)
    if features.height < 2:
        return empty
    x = robust_scale(features.select(columns).to_numpy().astype(np.float64))
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)
    rng = np.random.default_rng(cfg.seed)
    ids = features["account_id"].to_numpy()
    pairs: set[tuple[int, int]] = set()
    for _ in range(cfg.behaviour_tables):
        planes = rng.normal(size=(x.shape[1], cfg.behaviour_bits))
        codes = (x @ planes > 0) @ (1 << np.arange(cfg.behaviour_bits))
        order = np.argsort(codes, kind="stable")
        bounds = np.flatnonzero(np.diff(codes[order])) + 1
        for group in np.split(order, bounds):
            if 2 <= len(group) <= cfg.max_sharing:
                sims = x[group] @ x[group].T
                np.fill_diagonal(sims, -1)
                for row, i in enumerate(group):
                    best = np.argsort(sims[row])[::-1][: cfg.behaviour_k]
                    for col in best:
                        if sims[row, col] >= cfg.behaviour_min_cos:
                            a, b = sorted((int(i), int(group[col])))
                            pairs.add((a, b))
    if not pairs:
        return empty
    a, b = np.array(sorted(pairs)).T
    cos = np.einsum("ij,ij->i", x[a], x[b])
    src, dst = ids[a], ids[b]
    swap = src > dst
    src, dst = np.where(swap, dst, src), np.where(swap, src, dst)
    strength = EDGE_TYPES["behaviour"].strength
    return pl.DataFrame(
        {
            "src": src.astype(str),
            "dst": dst.astype(str),
            "edge_type": "behaviour",
            "weight": cos * strength,
            "evidence": [f"cosine {c:.3f}" for c in cos],
        }
    )
