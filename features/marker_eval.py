"""Recall and precision of the marker families on a labelled file of phrasings.

    python -m features.marker_eval tests/features/data/marker_phrasings.jsonl

Each line is {"text": ..., "family": "marker_..." or null}. A phrasing counts for its own
family; every other line (other families and neutral prompts) is a negative for that family.
"""

from __future__ import annotations

import sys

import polars as pl

from features.markers import FAMILIES
from features.signals import request_signals


def evaluate(phrasings: pl.DataFrame) -> pl.DataFrame:
    """One row per family: positives, recall, precision, false positives (any other line) and
    the false-positive rate on neutral prompts (lines of no family)."""
    frame = phrasings.with_row_index("i").select(
        pl.col("i").cast(pl.String).alias("request_id"),
        pl.col("text").alias("prompt"),
        pl.lit(0).cast(pl.Datetime("us", "UTC")).alias("ts"),
        pl.col("family"),
    )
    hits = request_signals(frame.drop("family")).with_columns(frame["family"])
    rows = []
    for fam in FAMILIES:
        truth = hits["family"] == fam.name
        pred = hits[fam.name]
        tp = int((truth & pred).sum())
        fp = int((~truth & pred).sum())
        neutral = hits["family"].is_null()
        rows.append(
            {
                "family": fam.name,
                "positives": int(truth.sum()),
                "recall": tp / max(int(truth.sum()), 1),
                "precision": tp / max(tp + fp, 1),
                "false_positives": fp,
                "neutral_fp_rate": int((neutral & pred).sum()) / max(int(neutral.sum()), 1),
            }
        )
    return pl.DataFrame(rows)


def main() -> None:  # pragma: no cover - thin CLI
    result = evaluate(pl.read_ndjson(sys.argv[1]))
    with pl.Config(tbl_hide_dataframe_shape=True, float_precision=2):
        print(result)


if __name__ == "__main__":  # pragma: no cover
    main()
