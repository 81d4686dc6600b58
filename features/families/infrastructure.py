"""Infrastructure: the addresses, keys and clients an account's traffic comes through."""

from features.families import Feature, share

FAMILY = "infrastructure"
HELPERS = ()
FEATURES = (
    Feature("n_ips", "BIGINT", FAMILY, "distinct source addresses", "count(DISTINCT source_ip)"),
    Feature(
        "n_subnets",
        "BIGINT",
        FAMILY,
        "distinct /24 (IPv4) or /48 (IPv6) source ranges",
        "count(DISTINCT subnet)",
    ),
    Feature(
        "ips_per_request",
        "DOUBLE",
        FAMILY,
        "distinct addresses / requests",
        "count(DISTINCT source_ip) / count(*)",
    ),
    Feature("n_api_keys", "BIGINT", FAMILY, "distinct API keys", "count(DISTINCT api_key_id)"),
    Feature(
        "n_user_agents", "BIGINT", FAMILY, "distinct client strings", "count(DISTINCT user_agent)"
    ),
    Feature(
        "end_user_share",
        "DOUBLE",
        FAMILY,
        "share of requests that pass an end-user id",
        share("end_user_id IS NOT NULL"),
    ),
    Feature(
        "batch_share",
        "DOUBLE",
        FAMILY,
        "share of requests through a batch API",
        share("is_batch"),
    ),
)
