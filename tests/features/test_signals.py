"""Per-request signals: skeletons, subnets, scripts and the Arrow entry point for Spark."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pyarrow as pa
import pytest

from features.signals import request_signals, signals_arrow, skeleton, subnet


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("order 12345 for Alice Smith arrived on 2026-01-02", "order § for § arrived on §"),
        ('translate "bonjour tout le monde" please', "translate § please"),
        ("see https://example.com/x or mail bob@example.com", "see § or mail §"),
        ("  many\n\n  spaces\there ", "many spaces here"),
        ("Иван купил 3 яблока", "§ купил § яблока"),
        ("Order 7 shipped", "§ § shipped"),
    ],
)
def test_skeleton_masks_names_numbers_quotes_links(text, expected):
    # Capitalised words are masked wherever they stand, sentence starts included: consistent
    # masking keeps a template's skeleton stable whichever name fills its first slot.
    out = pl.select(skeleton(pl.lit(text))).item()
    assert out == expected


def test_same_template_same_skeleton_hash():
    frame = pl.DataFrame(
        {
            "request_id": ["1", "2", "3"],
            "ts": [datetime(2026, 1, 1, tzinfo=UTC)] * 3,
            "prompt": [
                "Rate answer 17 from Bob: 'fine'",
                "Rate answer 99 from Eve: 'bad'",
                "Something else",
            ],
        }
    )
    hashes = request_signals(frame)["skeleton_hash"].to_list()
    assert hashes[0] == hashes[1] != hashes[2]


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("203.0.113.9", "203.0.113"),
        ("2001:db8:abcd:12::1", "2001:db8:abcd"),
        ("hash-abc", "hash-abc"),
        (None, None),
    ],
)
def test_subnet(ip, expected):
    assert pl.select(subnet(pl.lit(ip, pl.String))).item() == expected


def test_script_detection():
    frame = pl.DataFrame(
        {
            "request_id": list("abcd"),
            "ts": [datetime(2026, 1, 1, tzinfo=UTC)] * 4,
            "prompt": ["hello", "你好世界", "привет", "مرحبا"],
        }
    )
    assert request_signals(frame)["script"].to_list() == ["latin", "cjk", "cyrillic", "other"]


def test_arrow_entry_point_matches_polars():
    frame = pl.DataFrame(
        {
            "request_id": ["1", "2"],
            "ts": [datetime(2026, 1, 1, tzinfo=UTC)] * 2,
            "account_id": ["a", "b"],
            "prompt": ["Explain step by step", "hi"],
        }
    )
    batch = signals_arrow(frame.to_arrow().to_batches()[0])
    assert isinstance(batch, pa.RecordBatch)
    assert pl.from_arrow(batch).equals(request_signals(frame))
