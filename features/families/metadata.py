"""Account metadata: age, sign-up path, plan and e-mail provider (from the accounts table `a`)."""

from features.families import Feature

FAMILY = "metadata"

FREEMAIL = (
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "yahoo.com",
    "proton.me", "protonmail.com", "icloud.com", "qq.com", "163.com", "126.com", "mail.ru",
    "yandex.ru", "gmx.de", "aol.com", "zoho.com", "foxmail.com", "sina.com",
)  # fmt: skip
"""Free e-mail providers: an owner at one of them is an individual, not an organisation."""

HELPERS = ()
FEATURES = (
    Feature(
        "account_age_days",
        "DOUBLE",
        FAMILY,
        "days from sign-up to the end of the window (-1 when unknown)",
        "coalesce((w.end_s - epoch(a.created_at)) / 86400.0, -1)",
        "final",
        "-1",
    ),
    Feature(
        "signup_channel",
        "VARCHAR",
        FAMILY,
        "sign-up channel (unknown when missing)",
        "coalesce(a.signup_channel, 'unknown')",
        "final",
        "'unknown'",
    ),
    Feature(
        "tier",
        "VARCHAR",
        FAMILY,
        "plan / usage tier (unknown when missing)",
        "coalesce(a.tier, 'unknown')",
        "final",
        "'unknown'",
    ),
    Feature(
        "freemail",
        "DOUBLE",
        FAMILY,
        "1 when the owner's e-mail is at a free mail provider",
        "CASE WHEN lower(a.email_domain) IN ("
        + ", ".join(f"'{d}'" for d in FREEMAIL)
        + ") THEN 1.0 ELSE 0.0 END",
        "final",
    ),
)
