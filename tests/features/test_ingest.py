"""The store: deduplication, quarantine, reconciliation, atomic commits, accounts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features import ingest
from features.sources import SourceError
from features.store import StoreLocked, latest_accounts_file, locked, requests_glob


def req(i: int, **over) -> dict:
    row = {
        "request_id": f"r{i}",
        "ts": f"2026-03-0{1 + i % 3}T10:00:00Z",
        "account_id": f"a{i % 4}",
        "request_model": "m1",
        "prompt": f"prompt {i}",
    }
    row.update(over)
    return row


def quarantined(store: Path) -> list[tuple[int, str]]:
    glob = store / "quarantine" / "*" / "*.parquet"
    return duckdb.sql(f"SELECT line, reason FROM read_parquet('{glob}') ORDER BY line").fetchall()


def store_rows(store: Path) -> list[tuple]:
    return duckdb.sql(
        f"SELECT * EXCLUDE (dt) FROM read_parquet('{requests_glob(store)}') ORDER BY request_id"
    ).fetchall()


BAD_LINES = [
    (b"{not json", "malformed JSON"),
    (b'{"request_id": "x\xff\xfe", "ts": 1}', "not UTF-8"),
    (b"[1, 2]", "not a JSON object"),
    (
        b'{"request_id": "m1", "ts": "2026-03-01T00:00:00Z", "account_id": "a", "prompt": "p"}',
        "request_model: missing",
    ),
    (
        b'{"request_id": "w1", "ts": "2026-03-01T00:00:00Z", "account_id": "a", "request_model": "m", "prompt": "p", "n_tools": "three"}',
        "n_tools: expected int32",
    ),
    (
        b'{"request_id": "z1", "ts": "2026-03-01 00:00:00", "account_id": "a", "request_model": "m", "prompt": "p"}',
        "not ISO-8601 with a time zone",
    ),
    (
        b'{"request_id": "f1", "ts": "2031-03-01T00:00:00Z", "account_id": "a", "request_model": "m", "prompt": "p"}',
        "in the future",
    ),
    (
        b'{"request_id": "n1", "ts": "2026-03-01T00:00:00Z", "account_id": "a", "request_model": "m", "prompt": "p", "usage_output_tokens": -5}',
        "usage_output_tokens: negative",
    ),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES)
def test_bad_line_is_quarantined_with_reason(jsonl, tmp_path, line, reason):
    src = jsonl([req(1), line, req(2)])
    report = ingest.run([src], tmp_path / "s")
    counts = report.counts["requests"]
    assert (counts.read, counts.stored, counts.quarantined) == (3, 2, 1)
    ((number, why),) = quarantined(tmp_path / "s")
    assert number == 2
    assert reason in why


def test_ten_megabyte_prompt_is_quarantined(jsonl, tmp_path):
    src = jsonl([req(1, prompt="x" * (10 * 1024 * 1024))])
    report = ingest.run([src], tmp_path / "s")
    assert report.counts["requests"].quarantined == 1
    assert "prompt: longer than" in quarantined(tmp_path / "s")[0][1]


def test_reingest_adds_nothing_and_counts_reconcile(jsonl, tmp_path):
    src = jsonl([req(i) for i in range(50)] + [req(3)] + [b"{oops"])
    first = ingest.run([src], tmp_path / "s")
    before = store_rows(tmp_path / "s")
    second = ingest.run([src], tmp_path / "s")
    assert (first.counts["requests"].stored, first.counts["requests"].duplicates) == (50, 1)
    assert (second.counts["requests"].stored, second.counts["requests"].duplicates) == (0, 51)
    assert all(c.reconciles for r in (first, second) for c in r.counts.values())
    assert store_rows(tmp_path / "s") == before
    assert len(quarantined(tmp_path / "s")) == 1


def test_partitions_by_utc_day(jsonl, tmp_path):
    src = jsonl([req(1, ts="2026-03-01T23:30:00-02:00"), req(2, ts="2026-03-01T23:30:00+02:00")])
    ingest.run([src], tmp_path / "s")
    days = sorted(p.name for p in (tmp_path / "s" / "requests").iterdir())
    assert days == ["dt=2026-03-01", "dt=2026-03-02"]


def test_unknown_columns_are_kept_as_extra(jsonl, tmp_path):
    ingest.run([jsonl([req(1, vendor_field={"a": 1})])], tmp_path / "s")
    ((extra,),) = duckdb.sql(
        f"SELECT extra FROM read_parquet('{requests_glob(tmp_path / 's')}')"
    ).fetchall()
    assert extra == '{"vendor_field":{"a":1}}'


def test_parquet_source_with_missing_required_column_is_refused(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(
        pa.table(
            {
                "request_id": ["a"],
                "ts": ["2026-03-01T00:00:00Z"],
                "account_id": ["a"],
                "prompt": ["p"],
            }
        ),
        path,
    )
    with pytest.raises(
        SourceError, match=r"lacks required requests column\(s\) \['request_model'\]"
    ):
        ingest.plan([path], ingest.Options(fmt="canonical"))


def test_parquet_source_typed_and_naive_timestamps(tmp_path):
    path = tmp_path / "x.parquet"
    table = pa.table(
        {
            "request_id": ["a", "b"],
            "ts": pa.array([1_772_000_000_000_000, 1_772_000_000_000_000], pa.timestamp("us")),
            "account_id": ["acc", "acc"],
            "request_model": ["m", "m"],
            "prompt": ["p", "q"],
            "usage_input_tokens": pa.array([5, -1], pa.int64()),
            "custom": [1, 2],
        }
    )
    pq.write_table(table, path)
    report = ingest.run([path], tmp_path / "s")
    assert (report.counts["requests"].stored, report.counts["requests"].quarantined) == (1, 1)
    assert quarantined(tmp_path / "s") == [(2, "usage_input_tokens: negative")]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.jsonl", "no such file"),
        (lambda p: (p / "empty_dir").mkdir() or p / "empty_dir", "holds no .jsonl"),
        (
            lambda p: (p / "u.jsonl").write_text('{"what": 1}\n') and p / "u.jsonl",
            "format not recognised",
        ),
        (
            lambda p: (p / "bad.parquet").write_bytes(b"nope") and p / "bad.parquet",
            "not a readable Parquet",
        ),
    ],
)
def test_unreadable_sources_are_refused_before_writing(tmp_path, make, message):
    with pytest.raises(SourceError, match=message):
        ingest.plan([make(tmp_path)], ingest.Options())


def test_empty_file_reads_nothing(tmp_path):
    (tmp_path / "e.jsonl").write_text("\n\n")
    report = ingest.run([tmp_path / "e.jsonl"], tmp_path / "s")
    assert report.counts["requests"].read == 0


def test_unknown_format_name_is_refused():
    with pytest.raises(ValueError, match="format must be auto or one of"):
        ingest.Options(fmt="csv")


def test_accounts_keep_latest_row(jsonl, tmp_path):
    first = [
        {"account_id": "a1", "created_at": "2026-01-01T00:00:00Z", "tier": "free"},
        {"account_id": "a2", "created_at": "2026-01-02T00:00:00Z", "tier": "free"},
    ]
    ingest.run([jsonl(first)], tmp_path / "s")
    update = [{"account_id": "a1", "created_at": "2026-01-01T00:00:00Z", "tier": "scale"}, first[1]]
    report = ingest.run([jsonl(update)], tmp_path / "s")
    assert (report.counts["accounts"].stored, report.counts["accounts"].duplicates) == (1, 1)
    rows = pq.read_table(latest_accounts_file(tmp_path / "s")).to_pylist()
    tiers = {r["account_id"]: r["tier"] for r in rows}
    assert tiers == {"a1": "scale", "a2": "free"}
    assert len(list((tmp_path / "s" / "accounts").glob("*.parquet"))) == 1


def test_forced_accounts_table(jsonl, tmp_path):
    src = jsonl(
        [{"account_id": "a1", "created_at": "2026-01-01T00:00:00Z", "prompt": "odd column"}]
    )
    report = ingest.run([src], tmp_path / "s", ingest.Options(table="accounts"))
    assert report.counts["accounts"].stored == 1


def test_lock_refuses_a_second_run(tmp_path, jsonl):
    with locked(tmp_path / "s"), pytest.raises(StoreLocked, match="another ingest is running"):
        ingest.run([jsonl([req(1)])], tmp_path / "s")


def test_killed_ingest_then_rerun_gives_the_same_store(tmp_path, jsonl):
    src = jsonl(
        [req(i, ts=f"2026-03-{1 + i % 28:02d}T10:00:00Z") for i in range(60_000)] + [b"{bad"]
    )
    clean = tmp_path / "clean"
    ingest.run([src], clean)
    expected = store_rows(clean)
    cli = [sys.executable, "-m", "detector.cli", "ingest", str(src)]
    for delay in (0.5, 1.5, 3.0):
        target = tmp_path / f"killed-{delay}"
        proc = subprocess.Popen(
            [*cli, "--store", str(target)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        ingest.run([src], target)
        assert store_rows(target) == expected
        assert quarantined(target) == quarantined(clean)


def test_reingesting_a_store_export_keeps_extra(jsonl, tmp_path):
    ingest.run([jsonl([req(1, vendor="x")])], tmp_path / "s")
    export = tmp_path / "export.parquet"
    duckdb.sql(
        f"COPY (SELECT * EXCLUDE (dt) FROM read_parquet('{requests_glob(tmp_path / 's')}')) TO '{export}'"
    )
    ingest.run([export], tmp_path / "s2")
    ((extra,),) = duckdb.sql(
        f"SELECT extra FROM read_parquet('{requests_glob(tmp_path / 's2')}')"
    ).fetchall()
    assert extra == '{"vendor":"x"}'


def test_jsonl_extra_object_is_merged(jsonl, tmp_path):
    ingest.run([jsonl([req(1, extra={"a": 1}, b=2)])], tmp_path / "s")
    ((extra,),) = duckdb.sql(
        f"SELECT extra FROM read_parquet('{requests_glob(tmp_path / 's')}')"
    ).fetchall()
    assert extra == '{"a":1,"b":2}'


def test_a_run_mixing_new_repeated_and_conflicting_ids_keeps_the_first_seen_rows(tmp_path):
    from tests.conftest import write_jsonl

    store = tmp_path / "s"
    ingest.run([write_jsonl(tmp_path / "1.jsonl", [req(i) for i in range(10)])], store)
    second = [req(i) for i in range(5, 15)]  # 5-9 stored already, 10-14 new
    second[2] = req(7, prompt="changed")  # conflicts with the stored row 7
    second += [req(12), req(13, prompt="other")]  # a retried 12, a conflicting 13
    counts = ingest.run([write_jsonl(tmp_path / "2.jsonl", second)], store).counts["requests"]
    assert (counts.read, counts.stored, counts.duplicates) == (12, 5, 5)
    assert (counts.quarantined, counts.conflicting) == (2, 2)
    assert counts.reconciles
    rows = {r[0]: r for r in store_rows(store)}
    assert sorted(rows) == sorted(f"r{i}" for i in range(15))
    prompts = duckdb.sql(f"SELECT request_id, prompt FROM read_parquet('{requests_glob(store)}')")
    by_id = dict(prompts.fetchall())
    assert by_id["r7"] == "prompt 7" and by_id["r13"] == "prompt 13"
    assert [line for line, _ in quarantined(store)] == [3, 12]
