"""Redaction of personal data and secrets in prompt text before an analyst sees it.

Regular expressions for the things that leak most often in API traffic: e-mail addresses,
provider API keys and bearer tokens, and phone numbers. Each match becomes a tag such as
`[email]`, so the shape of a template stays visible while its contents do not. The patterns
over-redact (a long hex digest may be tagged as a key) rather than let a secret through.
"""

from __future__ import annotations

import re

PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")),
    (
        "key",
        re.compile(
            r"\b(?:sk|pk|rk)-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_\-]{16,}"
            r"|\bAKIA[0-9A-Z]{16}\b"
            r"|\bgh[pousr]_[A-Za-z0-9]{30,}\b"
            r"|\bxox[abprs]-[A-Za-z0-9\-]{10,}"
            r"|\bAIza[0-9A-Za-z_\-]{35}\b"
            r"|\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"
            r"|(?i:bearer)\s+[A-Za-z0-9._\-]{16,}"
        ),
    ),
    # a run of 9 to 15 digits with the usual separators, optionally after a +
    ("phone", re.compile(r"(?<![\w.])\+?\(?\d(?:[\s().\-]{0,2}\d){8,14}(?!\w)(?!\.\d)")),
)


def redact(text: str | None) -> str | None:
    """The text with e-mails, keys and phone numbers replaced by `[email]`, `[key]`, `[phone]`."""
    if text is None:
        return None
    for tag, pattern in PATTERNS:
        text = pattern.sub(f"[{tag}]", text)
    return text
