"""Errors: rate limiting and failed requests."""

from features.families import Feature, share

FAMILY = "errors"
HELPERS = ()
FEATURES = (
    Feature(
        "rate_429", "DOUBLE", FAMILY, "share of requests answered 429", share("status_code = 429")
    ),
    Feature(
        "error_rate",
        "DOUBLE",
        FAMILY,
        "share of requests answered with another 4xx/5xx",
        share("status_code >= 400 AND status_code <> 429"),
    ),
)
