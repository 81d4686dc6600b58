"""Volume: how much an account asks for, and how long its prompts are."""

from features.families import Feature

FAMILY = "volume"
FEATURES = (
    Feature("n_requests", "BIGINT", FAMILY, "requests in the window", "count(*)"),
    Feature(
        "n_active_days", "BIGINT", FAMILY, "days with at least one request", "count(DISTINCT day)"
    ),
    Feature(
        "requests_per_active_day",
        "DOUBLE",
        FAMILY,
        "requests per active day",
        "b.n_requests / greatest(b.n_active_days, 1)",
        "final",
    ),
    Feature(
        "input_tokens",
        "BIGINT",
        FAMILY,
        "input tokens, cache included",
        "coalesce(sum(usage_input_tokens), 0)",
    ),
    Feature(
        "output_tokens",
        "BIGINT",
        FAMILY,
        "output tokens, reasoning included",
        "coalesce(sum(usage_output_tokens), 0)",
    ),
    Feature(
        "mean_output_tokens",
        "DOUBLE",
        FAMILY,
        "mean output tokens per request",
        "coalesce(avg(usage_output_tokens), 0)",
    ),
    Feature(
        "out_in_ratio",
        "DOUBLE",
        FAMILY,
        "output tokens per input token",
        "coalesce(sum(usage_output_tokens), 0) / greatest(coalesce(sum(usage_input_tokens), 0), 1)",
    ),
    Feature(
        "mean_prompt_chars",
        "DOUBLE",
        FAMILY,
        "mean prompt length in characters",
        "avg(prompt_chars)",
    ),
    Feature(
        "prompt_chars_cv",
        "DOUBLE",
        FAMILY,
        "coefficient of variation of prompt length",
        # the spread from exact sums (an engine's parallel stddev differs in the last bits)
        "coalesce(sqrt(greatest(CAST(sum(CAST(prompt_chars AS DECIMAL(38, 0)) * prompt_chars) AS DOUBLE) "
        "/ count(*) - avg(prompt_chars) * avg(prompt_chars), 0)) / greatest(avg(prompt_chars), 1), 0)",
    ),
)
HELPERS = ()
