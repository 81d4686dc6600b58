"""Redaction of e-mails, keys and phone numbers in sample prompts."""

from __future__ import annotations

import pytest

from detector.redact import redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail ops@example.com now", "mail [email] now"),
        ("key sk-ant-api03-AbCdEfGhIjKlMnOpQrSt done", "key [key] done"),
        ("OPENAI_API_KEY=sk-proj-abcdefghijklmnop1234", "OPENAI_API_KEY=[key]"),
        ("aws AKIAIOSFODNN7EXAMPLE", "aws [key]"),
        ("Authorization: Bearer abcdef0123456789abcdef", "Authorization: [key]"),
        ("call +1 (415) 555-0132 today", "call [phone] today"),
        ("tel 020 7946 0958.", "tel [phone]."),
    ],
)
def test_secrets_and_contacts_become_tags(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Solve x^2 - 5x + 6 = 0 step by step",
        "In 2024 the ratio was 3.14159 and 42 items cost 19.99",
        "Grade on a 1-10 scale; version 1.80.0",
        "def f(x): return x * 1000000",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text


def test_none_stays_none():
    assert redact(None) is None
