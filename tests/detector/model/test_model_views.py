"""The three views: every feature family in exactly one, heads that read only their columns."""

from __future__ import annotations

import pytest
import torch

from detector.model.graph import FAMILY
from detector.model.views import VIEWS, ViewHeads, disagreement, view_columns


def test_every_feature_family_is_in_exactly_one_view():
    families = set(FAMILY.values()) | {"metadata"}  # categoricals fall back to metadata
    seen = [f for fams in VIEWS.values() for f in fams]
    assert sorted(seen) == sorted(set(seen)), "a family in two views"
    assert families <= set(seen)


def test_view_columns_refuse_a_family_in_no_view():
    assert view_columns(["markers", "timing", "graph", "markers"]) == (
        ("content", (0, 3)),
        ("usage", (1,)),
        ("identity", (2,)),
    )
    with pytest.raises(ValueError, match="feature families in no view: \\['telepathy'\\]"):
        view_columns(["markers", "telepathy"])


def test_a_head_reads_only_its_own_columns():
    torch.manual_seed(0)
    heads = ViewHeads((("content", (0, 1)), ("usage", (2,))))
    x = torch.randn(5, 4)
    base = heads(x)
    assert base.shape == (5, 2)
    moved = x.clone()
    moved[:, 2] += 10.0  # a usage column: the content head must not move
    out = heads(moved)
    assert torch.equal(out[:, 0], base[:, 0]) and not torch.equal(out[:, 1], base[:, 1])
    moved[:, 3] += 10.0  # a column in no view moves nothing
    assert torch.equal(heads(moved), out)
    assert ViewHeads(()).forward(x).shape == (5, 0)


def test_the_reason_names_the_ordinary_views_and_skips_abstaining_ones():
    names = ["content", "usage", "identity"]
    text = disagreement([True, True, False], names, [False, False, False])
    assert text.startswith("held for review, not corroborated: ordinary on who it is")
    assert text.endswith("(suspicious on content, usage)")
    text = disagreement([True, True, False], names, [False, True, False])
    assert "usage" not in text
