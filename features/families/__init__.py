"""Per-account features, one family per module, each feature defined beside its name.

A `Feature` is named exactly like its output column and carries its dtype, family, one-line
meaning and SQL. `stage="base"` features are aggregates over the account's request signals in
the window (relation `s`, grouped by account into `b`); `stage="final"` features are expressions
over the relations the run provides (`b`, the window `w`, the accounts table `a`) and over the
family's own `Helper` relations, defined in the same module. `features.registry` gathers the
families; `features.aggregate` turns them into one SQL query; data/FEATURES.md is generated.
"""

from __future__ import annotations

from dataclasses import dataclass


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


@dataclass(frozen=True)
class Helper:
    """A named relation (a CTE) that a family's final-stage features read.

    `sql` may read `s` (the window's signals), `a` (accounts), `w` (the window) and earlier
    helpers, and may hold the placeholders `{firsts}` (each model's first appearance) and
    `{end_s}` (the window's end, epoch seconds). A `joined` helper has one row per account and is
    LEFT JOINed to the final select on `account_id`.
    """

    name: str
    meaning: str
    sql: str
    joined: bool = False


def share(condition: str) -> str:
    """SQL for the share of the account's requests where `condition` holds."""
    return f"avg(CASE WHEN {condition} THEN 1.0 ELSE 0.0 END)"
