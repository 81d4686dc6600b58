"""Model adoption: which models an account asks for, and how fast it moves to a new one."""

from features.families import Feature, Helper

FAMILY = "models"


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


HELPERS = (
    Helper(
        "firsts",
        "each model's first appearance in all traffic the run has seen",
        "SELECT request_model, first_t FROM {firsts} AS mf",
    ),
    Helper(
        "newest",
        "the newest model released before the window's end",
        newest_model_sql("firsts", "{end_s}"),
    ),
    Helper(
        "m",
        "per account: first use of the newest model and its share of traffic since release",
        """SELECT s.account_id,
    (min(CASE WHEN s.request_model = n.request_model THEN s.t_s END) - max(n.first_t)) / 3600.0 AS lag_hours,
    avg(CASE WHEN s.t_s >= n.first_t THEN (CASE WHEN s.request_model = n.request_model THEN 1.0 ELSE 0.0 END) END)
      AS newest_share
  FROM s CROSS JOIN newest AS n GROUP BY s.account_id""",
        joined=True,
    ),
)

FEATURES = (
    Feature(
        "n_models", "BIGINT", FAMILY, "distinct models asked for", "count(DISTINCT request_model)"
    ),
    Feature(
        "newest_model_share",
        "DOUBLE",
        FAMILY,
        "share of requests on the newest model, among requests after its first appearance in all traffic",
        "coalesce(m.newest_share, 0)",
        "final",
    ),
    Feature(
        "newest_model_lag_hours",
        "DOUBLE",
        FAMILY,
        "hours from the newest model's first appearance in all traffic to the account's first use (window length if never)",
        "coalesce(m.lag_hours, w.window_hours)",
        "final",
    ),
)
