"""An hourly run on a store of 10M requests a day when only the last hour is new.

    python -m benchmarks.hourly_at_scale [--rows 10000000] [--requests DIR] [--work DIR]

Simulated requests for one day (`benchmarks.profile_pipeline.write_requests`, or the files of
an earlier run in `--requests`) are split at the day's last hour. The store gets everything
before it (ingest), `hourly --at 23:00` runs once (cold: every signal computed), then the last
hour is ingested as a file of its own and `hourly --at 24:00` runs: the figure. Each step is a
command in a fresh process (wall time, peak RSS); the last one's stages come from
`--profile-out`. The hourly window is the default 7 days, which on this store holds the one
stored day: with a week of 10M-request days stored, the aggregation, links and scoring read
seven times the rows (BENCHMARKS.md says what that costs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import polars as pl

from benchmarks.common import machine, measure
from benchmarks.profile_pipeline import write_requests

CLI = str(Path(sys.executable).with_name("distillguard"))


def split(requests: Path, work: Path) -> tuple[Path, Path, Path, str]:
    """(requests before the last hour, the last hour, accounts, the day) as Parquet files."""
    files = sorted(requests.glob("requests-*.parquet"))
    scan = pl.scan_parquet(files)
    last = scan.select(pl.col("ts").max()).collect().item()
    cut = last.replace(minute=0, second=0, microsecond=0)
    early, late = work / "early.parquet", work / "late.parquet"
    scan.filter(pl.col("ts") < cut).sink_parquet(early)
    scan.filter(pl.col("ts") >= cut).sink_parquet(late)
    return early, late, requests / "accounts.parquet", cut.isoformat()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--requests", type=Path, help="request files of an earlier run")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="hourly-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    requests = args.requests or work / "requests"
    if args.requests is None:
        write_requests(args.rows, 1, requests)
    early, late, accounts, cut = split(requests, work)
    store, warehouse = work / "store", work / "w.duckdb"
    end = (pl.Series([cut]).str.to_datetime().dt.offset_by("1h")[0]).isoformat()
    env = os.environ | {"POLARS_MAX_THREADS": os.environ.get("POLARS_MAX_THREADS", "2")}
    steps = [
        ("ingest, all but the last hour", ["ingest", early, accounts, "--store", store]),
        ("hourly, cold (every signal computed)", ["hourly", "--store", store, "--at", cut,
                                                  "--warehouse", warehouse]),
        ("ingest, the last hour", ["ingest", late, "--store", store]),
        ("hourly, only the last hour new", ["--profile-out", work / "profile.json", "hourly",
                                            "--store", store, "--at", end,
                                            "--warehouse", warehouse]),
    ]  # fmt: skip
    rows = []
    for label, argv in steps:
        got = measure([CLI, *map(str, argv)], env=env)
        rows.append((label, got.seconds, got.peak_rss_mb / 1024))
        print(f"{label}: {got.seconds:.1f} s, peak {got.peak_rss_mb / 1024:.2f} GB", flush=True)
    n_early = pl.scan_parquet(early).select(pl.len()).collect().item()
    n_late = pl.scan_parquet(late).select(pl.len()).collect().item()
    print(f"\n{machine()}; store: {n_early + n_late:,} requests in one day, last hour {n_late:,}")
    print("\n| step | seconds | peak GB |\n| --- | ---: | ---: |")
    for label, seconds, peak in rows:
        print(f"| {label} | {seconds:.1f} | {peak:.2f} |")
    record = json.loads((work / "profile.json").read_text())
    print("\nStages of the last run:\n\n| stage | seconds |\n| --- | ---: |")
    for stage in record.get("stages", []):
        print(f"| {'  ' * stage['depth']}{stage['stage']} | {stage['seconds']:.1f} |")


if __name__ == "__main__":
    main()
