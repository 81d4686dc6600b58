"""Diversity and templating: how varied an account's prompts are, and how much they repeat."""

from features.families import Feature, Helper, share

FAMILY = "diversity"

HELPERS = (
    Helper(
        "heads",
        "requests per (account, skeleton opening)",
        "SELECT account_id, head_hash, count(*) AS c FROM s GROUP BY account_id, head_hash",
    ),
    Helper(
        "tails",
        "requests per (account, skeleton ending)",
        "SELECT account_id, tail_hash, count(*) AS c FROM s GROUP BY account_id, tail_hash",
    ),
    Helper(
        "t",
        "per account: requests of its most common opening and of its most common ending",
        """SELECT x.account_id, x.top_head, y.top_tail
  FROM (SELECT account_id, max(c) AS top_head FROM heads GROUP BY account_id) AS x
  JOIN (SELECT account_id, max(c) AS top_tail FROM tails GROUP BY account_id) AS y
    ON x.account_id = y.account_id""",
        joined=True,
    ),
    Helper(
        "bands",
        "requests per (account, MinHash band, band value)",
        """SELECT account_id, 1 AS band, band_1 AS key, count(*) AS c FROM s GROUP BY account_id, band_1
  UNION ALL
  SELECT account_id, 2 AS band, band_2 AS key, count(*) AS c FROM s GROUP BY account_id, band_2""",
    ),
    Helper(
        "d",
        "per account: requests whose MinHash band value repeats (larger of two bands)",
        """SELECT account_id, max(colliding) AS near_dup
  FROM (
    SELECT account_id, band, sum(CASE WHEN c > 1 THEN c ELSE 0 END) AS colliding
    FROM bands GROUP BY account_id, band
  ) AS q GROUP BY account_id""",
        joined=True,
    ),
)

FEATURES = (
    Feature(
        "distinct_skeleton_share",
        "DOUBLE",
        FAMILY,
        "distinct prompt skeletons / requests",
        "count(DISTINCT skeleton_hash) / count(*)",
    ),
    Feature(
        "top_head_share",
        "DOUBLE",
        FAMILY,
        "share of requests whose skeleton opens like the most common opening",
        "t.top_head / b.n_requests",
        "final",
    ),
    Feature(
        "top_tail_share",
        "DOUBLE",
        FAMILY,
        "share of requests whose skeleton ends like the most common ending",
        "t.top_tail / b.n_requests",
        "final",
    ),
    Feature(
        "near_dup_rate",
        "DOUBLE",
        FAMILY,
        "share of requests with a MinHash near-duplicate in the account (larger of two bands)",
        "coalesce(d.near_dup, 0) / b.n_requests",
        "final",
    ),
    Feature(
        "topic_breadth",
        "DOUBLE",
        FAMILY,
        "distinct topic signatures / requests",
        "count(DISTINCT topic_hash) / count(*)",
    ),
    Feature(
        "n_system_prompts",
        "BIGINT",
        FAMILY,
        "distinct system prompts",
        "count(DISTINCT system_hash)",
    ),
    Feature(
        "non_latin_share",
        "DOUBLE",
        FAMILY,
        "share of prompts in a non-Latin script",
        share("script <> 'latin'"),
    ),
)
