"""The features pipeline: windows, the signal cache, the CLI and the generated data dictionary."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from detector.cli import app
from features import ingest, pipeline
from features.registry import FEATURES
from tests.conftest import write_jsonl

ROOT = Path(__file__).resolve().parents[2]


def req(i: int, day: int) -> dict:
    return {
        "request_id": f"r{i}",
        "ts": f"2026-03-{day:02d}T10:00:00Z",
        "account_id": f"a{i % 3}",
        "request_model": "m",
        "prompt": f"prompt number {i}",
    }


@pytest.fixture
def store(tmp_path):
    src = write_jsonl(tmp_path / "r.jsonl", [req(i, 1 + i % 5) for i in range(40)])
    ingest.run([src], tmp_path / "store")
    return tmp_path / "store"


@pytest.mark.parametrize(
    ("end", "window", "message"),
    [
        ("2026-13-01", "7d", "date must be YYYY-MM-DD"),
        ("2026-03-01", "week", "window must look like"),
        ("2026-03-01", "0d", "at least 1"),
    ],
)
def test_window_parse_errors(end, window, message):
    with pytest.raises(ValueError, match=message):
        pipeline.Window.parse(end, window)


def test_window_dates():
    w = pipeline.Window.parse("2026-03-05", "3d")
    assert w.dates == [date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 5)]
    assert w.end_s - w.start_s == 3 * 86400


def test_signal_cache_is_reused_and_refreshed(store):
    window = pipeline.Window(date(2026, 3, 5), 5)
    first = pipeline.compute(store, window)
    cached = sorted((store / "_derived").rglob("signals-*.parquet"))
    assert len(cached) == 5
    stamps = {p: p.stat().st_mtime_ns for p in cached}
    again = pipeline.compute(store, window)
    assert_frame_equal(again, first, check_exact=False)
    assert {p: p.stat().st_mtime_ns for p in cached} == stamps
    ingest.run([write_jsonl(store.parent / "more.jsonl", [req(100, 5)])], store)
    updated = pipeline.compute(store, window)
    assert updated["n_requests"].sum() == first["n_requests"].sum() + 1
    # one signals file per ingested file: the new file's signals were computed, no other
    now = sorted((store / "_derived").rglob("signals-*.parquet"))
    assert len(now) == 6
    assert {p: p.stat().st_mtime_ns for p in cached} == stamps


def test_signals_of_each_file_equal_those_of_the_whole_day(store):
    """Caching per ingested file changes nothing a window's features hold: late rows for an
    earlier day land in a file of their own and are counted where they belong."""
    window = pipeline.Window(date(2026, 3, 5), 5)
    late = [req(200 + i, 2) for i in range(3)]
    ingest.run([write_jsonl(store.parent / "late.jsonl", late)], store)
    split = pipeline.compute(store, window)
    assert len(list((store / "requests" / "dt=2026-03-02").glob("*.parquet"))) == 2
    whole = store.parent / "whole"
    rows = [req(i, 1 + i % 5) for i in range(40)] + late
    ingest.run([write_jsonl(store.parent / "all.jsonl", rows)], whole)
    assert_frame_equal(split.sort("account_id"), pipeline.compute(whole, window).sort("account_id"))


def test_an_hour_window_covers_the_days_it_touches():
    until = datetime(2026, 3, 5, 13, tzinfo=UTC)
    w = pipeline.Window.ending(until, 1)
    assert w.dates == [date(2026, 3, 4), date(2026, 3, 5)]
    assert (w.start_s, w.end_s) == (until.timestamp() - 86400, until.timestamp())
    midnight = pipeline.Window.ending(datetime(2026, 3, 6, tzinfo=UTC), 2)
    assert midnight.dates == pipeline.Window(date(2026, 3, 5), 2).dates
    assert (midnight.start_s, midnight.end_s) == (
        pipeline.Window(date(2026, 3, 5), 2).start_s,
        pipeline.Window(date(2026, 3, 5), 2).end_s,
    )


def test_windows_of_different_lengths(store):
    one = pipeline.compute(store, pipeline.Window(date(2026, 3, 5), 1))
    five = pipeline.compute(store, pipeline.Window(date(2026, 3, 5), 5))
    assert one["n_requests"].sum() == 8 and five["n_requests"].sum() == 40


def test_cli_features_writes_parquet_and_csv(store, tmp_path):
    runner = CliRunner()
    for name in ("f.parquet", "f.csv"):
        result = runner.invoke(
            app,
            [
                "features",
                "--store",
                str(store),
                "--date",
                "2026-03-05",
                "--window",
                "7d",
                "--out",
                str(tmp_path / name),
            ],
        )
        assert result.exit_code == 0, result.output
    frame = pl.read_parquet(tmp_path / "f.parquet")
    assert frame.columns == ["account_id", "feature_set", *[f.name for f in FEATURES]]
    assert pl.read_csv(tmp_path / "f.csv").height == frame.height == 3


def test_cli_features_no_data_exits_99(store, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "features",
            "--store",
            str(store),
            "--date",
            "2025-01-01",
            "--out",
            str(tmp_path / "f.parquet"),
        ],
    )
    assert result.exit_code == 99
    assert "no requests" in result.output


def test_cli_features_not_a_store_exits_2(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "features",
            "--store",
            str(tmp_path),
            "--date",
            "2026-03-01",
            "--out",
            str(tmp_path / "f.parquet"),
        ],
    )
    assert result.exit_code == 2
    assert "not a store" in result.output


def test_data_dictionary_is_what_features_dictionary_prints():
    result = CliRunner().invoke(app, ["features", "--dictionary"])
    assert result.exit_code == 0, result.output
    assert (ROOT / "data" / "FEATURES.md").read_text() == result.stdout
    assert "`deg_payment`" in result.stdout and "`cluster_size`" in result.stdout
    assert all(f"`{f.name}`" in result.stdout for f in FEATURES)


def test_features_without_a_store_or_dictionary_names_the_missing_options():
    result = CliRunner().invoke(app, ["features", "--date", "2026-03-01"])
    assert result.exit_code == 2
    assert "--store, --date and --out are required" in result.output


def test_registry_names_are_unique_and_documented():
    names = [f.name for f in FEATURES]
    assert len(names) == len(set(names))
    assert all(f.meaning and f.sql for f in FEATURES)


def test_cli_link_writes_clusters_edges_and_evidence(store, tmp_path):
    out = tmp_path / "links"
    result = CliRunner().invoke(
        app, ["link", "--store", str(store), "--date", "2026-03-05", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    members = pl.read_parquet(out / "clusters.parquet")
    assert sorted(members["account_id"]) == ["a0", "a1", "a2"]
    assert set(pl.read_parquet(out / "edges.parquet").columns) == {
        "src",
        "dst",
        "edge_type",
        "weight",
        "evidence",
    }
    assert "cluster" in pl.read_parquet(out / "evidence.parquet").columns


def test_duckdb_plan_hint_gives_the_portable_querys_features(tmp_path):
    from detector.simulate import SimConfig, simulate
    from features.aggregate import feature_sql

    world = simulate(SimConfig(accounts=80, days=3, seed=11))
    world.requests.write_parquet(tmp_path / "r.parquet")
    world.accounts.write_parquet(tmp_path / "a.parquet")
    ingest.run([tmp_path / "r.parquet", tmp_path / "a.parquet"], tmp_path / "store")
    window = pipeline.Window.parse(world.requests["ts"].max().date(), "3d")
    with pipeline.window_relations(tmp_path / "store", window) as con:
        tables = [
            pl.from_arrow(
                con.sql(
                    feature_sql(
                        "signals", "accounts", window.start_s, window.end_s, "firsts", duckdb=hint
                    )
                ).to_arrow_table()
            )
            for hint in (False, True)
        ]
    assert tables[0].height > 50
    assert_frame_equal(tables[0], tables[1])


def test_signal_writers_leftovers_are_swept_only_when_their_process_is_gone(store, tmp_path):
    import subprocess
    import sys

    out_dir = store / "_derived" / f"signals-v{pipeline.SIGNALS_VERSION}" / "dt=2026-03-02"
    out_dir.mkdir(parents=True)
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = out_dir / f".signals-0123456789abcdef.parquet.{int(finished.stdout)}.tmp"
    old_style = out_dir / ".signals-0123456789abcdef.parquet.tmp"
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        busy = out_dir / f".signals-0123456789abcdef.parquet.{alive.pid}.tmp"
        for leftover in (dead, old_style, busy):
            leftover.write_bytes(b"half written")
        ingest.run([write_jsonl(tmp_path / "more.jsonl", [req(100, 2)])], store)
        assert busy.exists(), "ingest swept a reader's file in _derived"
        assert pipeline.partition_signals(store, date(2026, 3, 2))
        assert busy.exists(), "a live writer's file was swept"
        assert not dead.exists() and not old_style.exists()
    finally:
        alive.kill()
        alive.wait()
