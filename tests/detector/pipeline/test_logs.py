"""Labels as `train` reads them: bad rows are counted with a reason, never dropped unseen."""

from __future__ import annotations

import logging

import polars as pl
import pytest

from detector.pipeline.logs import read_labels


def test_bad_label_rows_are_reported_with_reasons(tmp_path, caplog):
    path = tmp_path / "labels.parquet"
    pl.DataFrame(
        {
            "account_id": ["a", None, "b", "c", "a", ""],
            "label": ["1", "1", "yes", "0", "0", "1"],
        }
    ).write_parquet(path)
    with caplog.at_level(logging.WARNING, logger="detector.pipeline.logs"):
        labels = read_labels(path)
    assert labels.table.sort("account_id").rows() == [("a", 0, None), ("c", 0, None)]
    assert labels.rejected.select("row", "reason").rows() == [
        (2, "account_id: missing"),
        (3, "label: not 0 or 1"),
        (6, "account_id: missing"),
    ]
    assert labels.repeated == 1
    assert labels.summary() == (
        "3 label row(s) skipped (2 account_id: missing; 1 label: not 0 or 1), "
        "1 account(s) labelled more than once (last row kept)"
    )
    assert any("3 label row(s) skipped" in r.message for r in caplog.records)


def test_clean_labels_say_nothing(tmp_path):
    path = tmp_path / "labels.jsonl"
    path.write_text('{"account_id": "a", "label": 1, "campaign": "x"}\n')
    labels = read_labels(path)
    assert labels.summary() == "" and labels.table.rows() == [("a", 1, "x")]


def test_unreadable_labels_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        read_labels(tmp_path / "none.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(ValueError, match="bad.parquet: cannot read labels"):
        read_labels(bad)
