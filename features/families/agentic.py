"""Agentic use: tools, multi-turn conversations, tool calls."""

from features.families import Feature, share

FAMILY = "agentic"
HELPERS = ()
FEATURES = (
    Feature(
        "tools_share", "DOUBLE", FAMILY, "share of requests that define tools", share("n_tools > 0")
    ),
    Feature(
        "mean_tools",
        "DOUBLE",
        FAMILY,
        "mean tool definitions per request",
        "coalesce(avg(n_tools), 0)",
    ),
    Feature(
        "mean_messages",
        "DOUBLE",
        FAMILY,
        "mean messages per request",
        "coalesce(avg(n_messages), 1)",
    ),
    Feature(
        "tool_use_share",
        "DOUBLE",
        FAMILY,
        "share of responses that stop for a tool call",
        share("finish_reason IN ('tool_use', 'tool_calls')"),
    ),
)
