"""The feature registry: one definition per per-account feature.

Each feature is named exactly like its output column and carries its dtype, family, one-line
meaning and SQL. `stage="base"` features are aggregates over the account's request signals in
the window; `stage="final"` features are expressions over the per-account helper relations that
`features.aggregate` builds (named in each expression). data/FEATURES.md is generated from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from features.markers import FAMILIES

FEATURE_SET = "account-v1"
"""Name and version of the feature set; written into every feature table, model and score."""


@dataclass(frozen=True)
class Feature:
    """One per-account feature."""

    name: str
    dtype: str  # DOUBLE, BIGINT or VARCHAR (categorical)
    family: str
    meaning: str
    sql: str
    stage: str = "base"
    default: str = "0"

    def __post_init__(self) -> None:
        if self.stage not in ("base", "final"):
            raise ValueError(f"stage must be 'base' or 'final', got {self.stage!r}")
        if self.dtype not in ("DOUBLE", "BIGINT", "VARCHAR"):
            raise ValueError(f"dtype must be DOUBLE, BIGINT or VARCHAR, got {self.dtype!r}")


def _share(condition: str) -> str:
    return f"avg(CASE WHEN {condition} THEN 1.0 ELSE 0.0 END)"


F = Feature
FEATURES: tuple[Feature, ...] = (
    # volume
    F("n_requests", "BIGINT", "volume", "requests in the window", "count(*)"),
    F("n_active_days", "BIGINT", "volume", "days with at least one request", "count(DISTINCT day)"),
    F(
        "requests_per_active_day",
        "DOUBLE",
        "volume",
        "requests per active day",
        "b.n_requests / greatest(b.n_active_days, 1)",
        "final",
    ),
    F(
        "input_tokens",
        "BIGINT",
        "volume",
        "input tokens, cache included",
        "coalesce(sum(usage_input_tokens), 0)",
    ),
    F(
        "output_tokens",
        "BIGINT",
        "volume",
        "output tokens, reasoning included",
        "coalesce(sum(usage_output_tokens), 0)",
    ),
    F(
        "mean_output_tokens",
        "DOUBLE",
        "volume",
        "mean output tokens per request",
        "coalesce(avg(usage_output_tokens), 0)",
    ),
    F(
        "out_in_ratio",
        "DOUBLE",
        "volume",
        "output tokens per input token",
        "coalesce(sum(usage_output_tokens), 0) / greatest(coalesce(sum(usage_input_tokens), 0), 1)",
    ),
    F(
        "mean_prompt_chars",
        "DOUBLE",
        "volume",
        "mean prompt length in characters",
        "avg(prompt_chars)",
    ),
    F(
        "prompt_chars_cv",
        "DOUBLE",
        "volume",
        "coefficient of variation of prompt length",
        "coalesce(stddev_pop(prompt_chars) / greatest(avg(prompt_chars), 1), 0)",
    ),
    # timing
    F(
        "hour_entropy",
        "DOUBLE",
        "timing",
        "entropy of the hour-of-day histogram / log 24 (1 = flat 24/7)",
        "h.hour_entropy",
        "final",
    ),
    F(
        "active_hours_share",
        "DOUBLE",
        "timing",
        "share of the 24 hours of day with any request",
        "h.active_hours / 24.0",
        "final",
    ),
    F(
        "night_share",
        "DOUBLE",
        "timing",
        "share of requests 00:00-06:00 in the billing country's time zone",
        "h.night_share",
        "final",
    ),
    F(
        "weekend_share",
        "DOUBLE",
        "timing",
        "share of requests on Saturday or Sunday (UTC)",
        _share("dow_utc >= 5"),
    ),
    F(
        "burstiness",
        "DOUBLE",
        "timing",
        "(sd - mean) / (sd + mean) of inter-arrival gaps, in [-1, 1]",
        "coalesce(g.burstiness, 0)",
        "final",
    ),
    F(
        "hour_of_week_coverage",
        "DOUBLE",
        "timing",
        "distinct (weekday, hour) slots used / slots in the window",
        "h.week_slots / least(168.0, greatest(b.n_active_days, 1) * 24.0)",
        "final",
    ),
    # model adoption
    F("n_models", "BIGINT", "models", "distinct models asked for", "count(DISTINCT request_model)"),
    F(
        "newest_model_share",
        "DOUBLE",
        "models",
        "share of requests on the newest model, among requests after its first appearance in all traffic",
        "coalesce(m.newest_share, 0)",
        "final",
    ),
    F(
        "newest_model_lag_hours",
        "DOUBLE",
        "models",
        "hours from the newest model's first appearance in all traffic to the account's first use (window length if never)",
        "coalesce(m.lag_hours, w.window_hours)",
        "final",
    ),
    # diversity and templating
    F(
        "distinct_skeleton_share",
        "DOUBLE",
        "diversity",
        "distinct prompt skeletons / requests",
        "count(DISTINCT skeleton_hash) / count(*)",
    ),
    F(
        "top_head_share",
        "DOUBLE",
        "diversity",
        "share of requests whose skeleton opens like the most common opening",
        "t.top_head / b.n_requests",
        "final",
    ),
    F(
        "top_tail_share",
        "DOUBLE",
        "diversity",
        "share of requests whose skeleton ends like the most common ending",
        "t.top_tail / b.n_requests",
        "final",
    ),
    F(
        "near_dup_rate",
        "DOUBLE",
        "diversity",
        "share of requests with a MinHash near-duplicate in the account (larger of two bands)",
        "coalesce(d.near_dup, 0) / b.n_requests",
        "final",
    ),
    F(
        "topic_breadth",
        "DOUBLE",
        "diversity",
        "distinct topic signatures / requests",
        "count(DISTINCT topic_hash) / count(*)",
    ),
    F(
        "n_system_prompts",
        "BIGINT",
        "diversity",
        "distinct system prompts",
        "count(DISTINCT system_hash)",
    ),
    F(
        "non_latin_share",
        "DOUBLE",
        "diversity",
        "share of prompts in a non-Latin script",
        _share("script <> 'latin'"),
    ),
    # marker families
    *(
        F(
            f"share_{fam.name.removeprefix('marker_')}",
            "DOUBLE",
            "markers",
            f"share of requests that {fam.meaning}",
            _share(fam.name),
        )
        for fam in FAMILIES
    ),
    # thinking
    F(
        "thinking_share",
        "DOUBLE",
        "thinking",
        "share of requests with thinking enabled or adaptive",
        _share("thinking_mode IN ('enabled', 'adaptive')"),
    ),
    F(
        "mean_thinking_budget",
        "DOUBLE",
        "thinking",
        "mean thinking budget asked for (0 when none)",
        "coalesce(avg(coalesce(thinking_budget_tokens, 0)), 0)",
    ),
    F(
        "reasoning_token_share",
        "DOUBLE",
        "thinking",
        "reasoning tokens / output tokens",
        "coalesce(sum(usage_reasoning_tokens), 0) / greatest(coalesce(sum(usage_output_tokens), 0), 1)",
    ),
    # agentic use
    F(
        "tools_share",
        "DOUBLE",
        "agentic",
        "share of requests that define tools",
        _share("n_tools > 0"),
    ),
    F(
        "mean_tools",
        "DOUBLE",
        "agentic",
        "mean tool definitions per request",
        "coalesce(avg(n_tools), 0)",
    ),
    F(
        "mean_messages",
        "DOUBLE",
        "agentic",
        "mean messages per request",
        "coalesce(avg(n_messages), 1)",
    ),
    F(
        "tool_use_share",
        "DOUBLE",
        "agentic",
        "share of responses that stop for a tool call",
        _share("finish_reason IN ('tool_use', 'tool_calls')"),
    ),
    # errors
    F(
        "rate_429",
        "DOUBLE",
        "errors",
        "share of requests answered 429",
        _share("status_code = 429"),
    ),
    F(
        "error_rate",
        "DOUBLE",
        "errors",
        "share of requests answered with another 4xx/5xx",
        _share("status_code >= 400 AND status_code <> 429"),
    ),
    # infrastructure
    F(
        "n_ips",
        "BIGINT",
        "infrastructure",
        "distinct source addresses",
        "count(DISTINCT source_ip)",
    ),
    F(
        "n_subnets",
        "BIGINT",
        "infrastructure",
        "distinct /24 (IPv4) or /48 (IPv6) source ranges",
        "count(DISTINCT subnet)",
    ),
    F(
        "ips_per_request",
        "DOUBLE",
        "infrastructure",
        "distinct addresses / requests",
        "count(DISTINCT source_ip) / count(*)",
    ),
    F("n_api_keys", "BIGINT", "infrastructure", "distinct API keys", "count(DISTINCT api_key_id)"),
    F(
        "n_user_agents",
        "BIGINT",
        "infrastructure",
        "distinct client strings",
        "count(DISTINCT user_agent)",
    ),
    F(
        "end_user_share",
        "DOUBLE",
        "infrastructure",
        "share of requests that pass an end-user id",
        _share("end_user_id IS NOT NULL"),
    ),
    F(
        "batch_share",
        "DOUBLE",
        "infrastructure",
        "share of requests through a batch API",
        _share("is_batch"),
    ),
    # account metadata
    F(
        "account_age_days",
        "DOUBLE",
        "metadata",
        "days from sign-up to the end of the window (-1 when unknown)",
        "coalesce((w.end_s - epoch(a.created_at)) / 86400.0, -1)",
        "final",
        "-1",
    ),
    F(
        "signup_channel",
        "VARCHAR",
        "metadata",
        "sign-up channel (unknown when missing)",
        "coalesce(a.signup_channel, 'unknown')",
        "final",
        "'unknown'",
    ),
    F(
        "tier",
        "VARCHAR",
        "metadata",
        "plan / usage tier (unknown when missing)",
        "coalesce(a.tier, 'unknown')",
        "final",
        "'unknown'",
    ),
    F(
        "freemail",
        "DOUBLE",
        "metadata",
        "1 when the owner's e-mail is at a free mail provider",
        "CASE WHEN lower(a.email_domain) IN ({freemail}) THEN 1.0 ELSE 0.0 END",
        "final",
    ),
)

FREEMAIL = (
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "yahoo.com",
    "proton.me",
    "protonmail.com",
    "icloud.com",
    "qq.com",
    "163.com",
    "126.com",
    "mail.ru",
    "yandex.ru",
    "gmx.de",
    "aol.com",
    "zoho.com",
    "foxmail.com",
    "sina.com",
)

BY_NAME = {f.name: f for f in FEATURES}
NUMERIC = tuple(f.name for f in FEATURES if f.dtype != "VARCHAR")
CATEGORICAL = tuple(f.name for f in FEATURES if f.dtype == "VARCHAR")

COUNTRY_UTC_OFFSET = {
    "US": -6,
    "CA": -5,
    "MX": -6,
    "BR": -3,
    "AR": -3,
    "CL": -4,
    "CO": -5,
    "GB": 0,
    "IE": 0,
    "PT": 0,
    "ES": 1,
    "FR": 1,
    "DE": 1,
    "NL": 1,
    "BE": 1,
    "IT": 1,
    "CH": 1,
    "AT": 1,
    "PL": 1,
    "SE": 1,
    "NO": 1,
    "DK": 1,
    "FI": 2,
    "GR": 2,
    "UA": 2,
    "IL": 2,
    "TR": 3,
    "RU": 3,
    "AE": 4,
    "IN": 5,
    "PK": 5,
    "BD": 6,
    "TH": 7,
    "VN": 7,
    "ID": 7,
    "SG": 8,
    "MY": 8,
    "CN": 8,
    "HK": 8,
    "TW": 8,
    "PH": 8,
    "KR": 9,
    "JP": 9,
    "AU": 10,
    "NZ": 12,
    "ZA": 2,
    "NG": 1,
    "EG": 2,
    "KE": 3,
}
"""A coarse UTC offset per billing country, for the account's apparent local night."""


def markdown() -> str:
    """The data dictionary (data/FEATURES.md), generated from the registry."""
    lines = [
        f"# Per-account features ({FEATURE_SET})",
        "",
        "Generated from `features/registry.py` by `distillguard features --dictionary`; do not edit.",
        "Every feature is computed over the window of the run (1, 7 or 30 days ending on the date).",
        "",
        "| feature | dtype | family | meaning |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| `{f.name}` | {f.dtype} | {f.family} | {f.meaning} |" for f in FEATURES]
    return "\n".join(lines) + "\n"
