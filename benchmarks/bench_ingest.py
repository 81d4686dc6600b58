"""Ingest throughput: canonical Parquet vs JSON Lines, rows/s, MB/s and peak memory.

    python benchmarks/bench_ingest.py [--rows 1000000]

Each ingest runs as `distillguard ingest` in a fresh process, so peak RSS is the command's own.
JSONL is measured at two sizes to show memory stays bounded as files grow (streaming).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

from benchmarks.common import machine, measure
from detector.simulate import SimConfig, simulate

CLI = [sys.executable, "-m", "detector.cli"]


def world_of(rows: int) -> pl.DataFrame:
    """A simulated world cut to `rows` requests (accounts scaled to fit)."""
    accounts = max(100, rows // 1300)
    start = time.perf_counter()
    world = simulate(SimConfig(accounts=accounts, days=14, seed=7))
    elapsed = time.perf_counter() - start
    print(
        f"simulate: {world.requests.height:,} rows in {elapsed:.1f}s "
        f"({world.requests.height / elapsed:,.0f} rows/s)"
    )
    return world.requests.head(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    requests = world_of(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        parquet = tmp / "requests.parquet"
        requests.write_parquet(parquet)
        jsonl = tmp / "requests.jsonl"
        requests.write_ndjson(jsonl)
        half = tmp / "half.jsonl"
        requests.head(args.rows // 2).write_ndjson(half)
        print("| input | rows | size MB | seconds | rows/s | MB/s | peak RSS MB |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, path, n in (
            ("canonical Parquet", parquet, requests.height),
            ("JSONL (half)", half, requests.height // 2),
            ("JSONL", jsonl, requests.height),
        ):
            store = tmp / f"store-{path.stem}"
            m = measure([*CLI, "ingest", str(path), "--store", str(store)])
            size = path.stat().st_size / 1e6
            print(
                f"| {name} | {n:,} | {size:,.0f} | {m.seconds:.1f} | {n / m.seconds:,.0f} | "
                f"{size / m.seconds:.1f} | {m.peak_rss_mb:,.0f} |"
            )
            shutil.rmtree(store)


if __name__ == "__main__":
    main()
