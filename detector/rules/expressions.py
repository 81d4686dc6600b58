"""Expressions the shipped rules share (a user's TOML rule writes them out in SQL)."""

from __future__ import annotations

import polars as pl

DISTILLATION_SHARES = (
    "share_elicitation",
    "share_reconstruction",
    "share_grading",
    "share_rewrite",
    "share_self_instruct",
)
"""The request kinds the public reports name as distillation targets (see FEATURES.md)."""


def distillation_share() -> pl.Expr:
    """Share of an account's requests that elicit, reconstruct, grade, rewrite or self-instruct
    (the marker families can overlap, so it can pass 1)."""
    return pl.sum_horizontal(pl.col(c).fill_null(0.0) for c in DISTILLATION_SHARES)


def in_list(column: str, values: str) -> pl.Expr:
    """`column` is one of the comma-separated `values` (a threshold is one string)."""
    return pl.col(column).is_in([v.strip() for v in values.split(",") if v.strip()])


def grew_by(growth: float) -> pl.Expr:
    """A campaign has at least `growth` (a share) more members than on its previous night."""
    return pl.col("n_accounts") >= pl.col("previous_n_accounts") * (1 + growth)
