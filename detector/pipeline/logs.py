"""Log files in, for the commands that take files rather than a store (`score`, `train`).

They ingest into a private store first, with the same validation, deduplication and
quarantine as `distillguard ingest`, so every input format works and bad rows are counted and
kept, never fatal. Labels are read and checked here too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from features import ingest as ingest_mod

log = logging.getLogger(__name__)


def load_logs(
    requests: list[Path],
    accounts: list[Path],
    store: Path,
    progress: Callable[[int], None] | None = None,
) -> dict[str, ingest_mod.Counts]:
    """Ingest request and account files into `store`; the per-table counts. Raises
    `features.sources.SourceError` (or ValueError) naming an unreadable path or wrong schema."""
    counts: dict[str, ingest_mod.Counts] = {}
    for table, paths in (("requests", requests), ("accounts", accounts)):
        if not paths:
            continue
        opts = ingest_mod.Options(table=table)
        planned = ingest_mod.plan(paths, opts)
        report = ingest_mod.run(paths, store, opts, progress, planned=planned)
        counts[table] = report.counts[table]
    return counts


@dataclass(frozen=True)
class Labels:
    """A labels table as read: the usable rows, and the rows left out with the reason."""

    table: pl.DataFrame  # account_id, label (Int8, 0/1), campaign
    rejected: pl.DataFrame  # row (1-based), account_id, label (as given, text), reason
    repeated: int  # accounts given more than once (the last row wins)

    def summary(self) -> str:
        """One line on what was left out, or '' when nothing was."""
        parts = []
        if self.rejected.height:
            reasons = (
                self.rejected.group_by("reason")
                .len()
                .sort(["len", "reason"], descending=[True, False])
            )
            parts.append(
                f"{self.rejected.height:,} label row(s) skipped ("
                + "; ".join(f"{n:,} {r}" for r, n in reasons.iter_rows())
                + ")"
            )
        if self.repeated:
            parts.append(f"{self.repeated:,} account(s) labelled more than once (last row kept)")
        return ", ".join(parts)


def read_labels(path: Path) -> Labels:
    """The labels table (Parquet or JSON Lines): account_id, label (0/1), optional campaign.

    Raises ValueError naming the file when it cannot be read or lacks a column. Rows with a
    missing account or a label other than 0/1 are left out and returned with their reason (and
    logged); the last row of a repeated account wins.
    """
    if not path.exists():
        raise ValueError(f"{path}: no such file")
    try:
        if path.suffix in (".jsonl", ".json", ".ndjson"):
            frame = pl.read_ndjson(path, infer_schema_length=None)
        else:
            frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several error types for unreadable input
        raise ValueError(f"{path}: cannot read labels ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in ("account_id", "label") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: labels table lacks column(s) {missing}; has {frame.columns}")
    if "campaign" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("campaign"))
    given = frame.select(
        (pl.int_range(pl.len()) + 1).alias("row"),
        pl.col("account_id").cast(pl.String),
        pl.col("label").cast(pl.String).alias("given"),
        pl.col("label").cast(pl.Int8, strict=False),
        pl.col("campaign").cast(pl.String),
    )
    reason = (
        pl.when(pl.col("account_id").is_null() | (pl.col("account_id") == ""))
        .then(pl.lit("account_id: missing"))
        .when(~pl.col("label").is_in([0, 1]) | pl.col("label").is_null())
        .then(pl.lit("label: not 0 or 1"))
    )
    checked = given.with_columns(reason.alias("reason"))
    rejected = checked.filter(pl.col("reason").is_not_null()).select(
        "row", "account_id", pl.col("given").alias("label"), "reason"
    )
    good = checked.filter(pl.col("reason").is_null())
    table = good.unique("account_id", keep="last", maintain_order=True).select(
        "account_id", "label", "campaign"
    )
    labels = Labels(table, rejected, good.height - table.height)
    if labels.summary():
        log.warning("%s: %s", path, labels.summary())
    return labels
