"""Per-request signals: skeletons, subnets, scripts and the Arrow entry point for Spark."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.signals import (
    MINHASH_WORDS,
    NOT_WORDS,
    SCRIPT_CHARS,
    SCRIPTS,
    TEXT_SIGNALS,
    _minhash,
    _script,
    request_signals,
    signals_arrow,
    skeleton,
    subnet,
    text_signals,
)


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


# The speed work computes text signals once per distinct prompt, filters skeleton tokens
# instead of taking a set difference, and runs the Unicode script scans on non-ASCII openings
# alone. Each must give exactly what the plain form gives, so the feature set (and the models
# trained on it) do not move.

PIECES = [*"ab Z9 .\"'\n§…", "step by step", "你", "я", "ש", "Rate ", "  ", "Ann Lee"]
TEXTS = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)


@settings(max_examples=60, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=30))
def test_distinct_prompts_give_the_per_row_signals(prompts):
    frame = pl.DataFrame(
        {
            "request_id": [str(i) for i in range(len(prompts))],
            "ts": [datetime(2026, 1, 1, tzinfo=UTC)] * len(prompts),
            "prompt": prompts,
        }
    )
    per_row = text_signals(frame.select("prompt"))  # every row, repeats included
    batched = request_signals(frame)
    assert batched.select(TEXT_SIGNALS, "script").equals(per_row.select(TEXT_SIGNALS, "script"))


@settings(max_examples=60, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=30))
def test_filtered_words_give_the_set_minhash(skeletons):
    words = pl.col("s").str.split(" ").list.head(MINHASH_WORDS)
    frame = pl.DataFrame({"s": skeletons})
    as_set = frame.select(_minhash(words.list.set_difference(pl.lit(NOT_WORDS)), 101))
    filtered = frame.select(
        _minhash(words.list.eval(pl.element().filter(~pl.element().is_in(NOT_WORDS))), 101)
    )
    assert filtered.equals(as_set)


@settings(max_examples=60, deadline=None)
@given(st.lists(TEXTS, min_size=1, max_size=30))
def test_script_scan_on_non_ascii_rows_matches_every_row(prompts):
    head = pl.col("prompt").str.slice(0, SCRIPT_CHARS)
    chain = pl.lit("latin")
    for name, pattern in reversed(SCRIPTS):
        chain = pl.when(head.str.contains(pattern)).then(pl.lit(name)).otherwise(chain)
    frame = pl.DataFrame({"prompt": prompts})
    assert _script(frame).to_list() == frame.select(chain).to_series().to_list()


def test_an_empty_batch_has_the_signal_columns():
    empty = pl.DataFrame(schema={"request_id": pl.String, "prompt": pl.String})
    out = request_signals(empty)
    assert out.height == 0
    assert {"script", *TEXT_SIGNALS} <= set(out.columns)
    assert out.schema["script"] == pl.String
