"""Thinking: how much reasoning an account asks for and gets."""

from features.families import Feature, share

FAMILY = "thinking"
HELPERS = ()
FEATURES = (
    Feature(
        "thinking_share",
        "DOUBLE",
        FAMILY,
        "share of requests with thinking enabled or adaptive",
        share("thinking_mode IN ('enabled', 'adaptive')"),
    ),
    Feature(
        "mean_thinking_budget",
        "DOUBLE",
        FAMILY,
        "mean thinking budget asked for (0 when none)",
        "coalesce(avg(coalesce(thinking_budget_tokens, 0)), 0)",
    ),
    Feature(
        "reasoning_token_share",
        "DOUBLE",
        FAMILY,
        "reasoning tokens / output tokens",
        "coalesce(sum(usage_reasoning_tokens), 0) / greatest(coalesce(sum(usage_output_tokens), 0), 1)",
    ),
)
