"""Marker families on held-out phrasings the lexicons were not written from."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from features.marker_eval import evaluate
from features.markers import FAMILIES

HELD_OUT = Path(__file__).parent / "data" / "marker_phrasings.jsonl"


@pytest.fixture(scope="module")
def scores() -> dict[str, dict]:
    return {r["family"]: r for r in evaluate(pl.read_ndjson(HELD_OUT)).to_dicts()}


@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
def test_recall_floor_on_held_out_phrasings(scores, family):
    assert scores[family]["positives"] >= 9
    assert scores[family]["recall"] >= 0.65


@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
def test_neutral_prompts_rarely_fire(scores, family):
    assert scores[family]["neutral_fp_rate"] <= 0.05


def test_held_out_set_covers_several_languages():
    texts = pl.read_ndjson(HELD_OUT)["text"]
    assert texts.str.contains(r"\p{Han}").sum() >= 5
    assert texts.str.contains(r"\p{Cyrillic}").sum() >= 5
