"""Features on one machine: the DuckDB engine next to Spark in local mode, same store.

    python -m benchmarks.bench_spark [--sizes 1000000,10000000] [--master local[*]]

Each size gets a store of simulated traffic over 7 days (`bench_features.build_store`); each
engine runs `distillguard features` in a fresh process with the store's derived signals deleted
first (cold: per-request text work included). Spark's time includes starting its JVM. Peak
memory is the command's own process: for Spark that leaves out the JVM, so it is not shown.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

from benchmarks.bench_features import DAYS, build_store
from benchmarks.common import machine, measure

CLI = [sys.executable, "-m", "detector.cli"]


def run(engine: str, store: Path, end: str, out: Path, master: str) -> tuple[float, float]:
    shutil.rmtree(store / "_derived", ignore_errors=True)
    argv = [*CLI, "features", "--store", str(store), "--date", end, "--window", f"{DAYS}d"]
    argv += ["--out", str(out), "--engine", engine, "--spark-master", master]
    result = measure(argv)
    return result.seconds, result.peak_rss_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--master", default="local[*]")
    args = parser.parse_args()
    console = Console()
    root = Path(tempfile.mkdtemp(prefix="dg-spark-"))
    table = Table(title=f"features, DuckDB vs Spark local mode ({machine()})")
    for column in ("rows", "engine", "seconds", "rows/s", "peak RSS MB", "same features"):
        table.add_column(column, justify="left" if column == "engine" else "right")
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            with console.status(f"building a store of {size:,} requests"):
                store, rows, _ = build_store(size, root)
            days = sorted(p.name.removeprefix("dt=") for p in (store / "requests").glob("dt=*"))
            outputs = {}
            for engine in ("duckdb", "spark"):
                out = root / f"{engine}-{size}.parquet"
                with console.status(f"{engine} features on {rows:,} rows"):
                    seconds, peak = run(engine, store, days[-1], out, args.master)
                outputs[engine] = pl.read_parquet(out).sort("account_id")
                same = ""
                if engine == "spark":
                    a, b = outputs["duckdb"], outputs["spark"]
                    floats = [c for c, t in a.schema.items() if t.is_float()]
                    gap = max((a[c] - b[c]).abs().max() or 0.0 for c in floats)
                    exact = a.drop(floats).equals(b.drop(floats))
                    same = f"{'yes' if exact else 'NO'} (floats within {gap:.1e})"
                table.add_row(
                    f"{rows:,}",
                    engine,
                    f"{seconds:.0f}",
                    f"{rows / seconds:,.0f}",
                    f"{peak:,.0f}" if engine == "duckdb" else "-",
                    same,
                )
                console.print(f"{engine} {rows:,}: {seconds:.0f} s")
            shutil.rmtree(store)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    console.print(table)


if __name__ == "__main__":
    main()
