"""Store -> per-account features: distillguard vs a pandas baseline vs a bare DuckDB scan.

    python -m benchmarks.bench_features [--sizes 1000000,3000000,10000000] [--pandas-max 1000000]

For each size a store is built from simulated worlds (several seeds, appended), then each
contender runs in a fresh process (wall time and peak RSS). The bare scan reads and decodes the
same columns the pipeline reads and does one group-by: the floor for any implementation.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from benchmarks.common import bare_scan, machine, measure
from detector.simulate import SimConfig, simulate
from features import ingest

CLI = [sys.executable, "-m", "detector.cli"]
DAYS = 7


def build_store(rows: int, root: Path) -> tuple[Path, int, float]:
    """A store of about `rows` requests over DAYS days: the store, its rows, mean prompt chars."""
    store = root / f"store-{rows}"
    per_world = 1_000_000
    n, seed, chars = 0, 0, []
    while n < rows:
        take = min(per_world, rows - n)
        world = simulate(SimConfig(accounts=max(100, take // 450), days=DAYS, seed=1000 + seed))
        requests = world.requests.head(take)
        chars.append(requests["prompt"].str.len_chars().mean())
        path = root / f"w{seed}.parquet"
        requests.write_parquet(path)
        accounts = root / f"a{seed}.parquet"
        world.accounts.write_parquet(accounts)
        ingest.run([path, accounts], store)
        path.unlink()
        n += requests.height
        seed += 1
        del world, requests
    return store, n, sum(chars) / len(chars)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000000,3000000,10000000")
    parser.add_argument("--pandas-max", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="dg-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    print(
        "| rows | mean prompt chars | contender | seconds | rows/s | peak RSS MB | vs bare scan |",
        flush=True,
    )
    print("| ---: | ---: | --- | ---: | ---: | ---: | ---: |", flush=True)
    for rows in [int(s) for s in args.sizes.split(",")]:
        store, n, chars = build_store(rows, root)
        end = (SimConfig().start + timedelta(days=DAYS - 1)).date().isoformat()
        bare = measure(bare_scan(f"{store}/requests/*/*.parquet"))
        contenders = [("bare DuckDB scan (floor)", bare)]
        shutil.rmtree(store / "_derived", ignore_errors=True)
        argv = [*CLI, "features", "--store", str(store), "--date", end, "--window", f"{DAYS}d"]
        argv += ["--out", str(root / "f.parquet")]
        ours = measure(argv)
        contenders.append(("distillguard features (cold)", ours))
        warm = measure(argv)
        contenders.append(("distillguard features (signals cached)", warm))
        if n <= args.pandas_max:
            base = measure(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.pandas_features",
                    str(store),
                    str(root / "p.parquet"),
                ]
            )
            contenders.append(("pandas baseline", base))
        for name, m in contenders:
            print(
                f"| {n:,} | {chars:.0f} | {name} | {m.seconds:.1f} | {n / m.seconds:,.0f} | "
                f"{m.peak_rss_mb:,.0f} | {m.seconds / bare.seconds:.1f}x |",
                flush=True,
            )
        if n <= args.pandas_max:
            print(
                f"speed-up over pandas at {n:,} rows: {base.seconds / ours.seconds:.1f}x (cold)",
                flush=True,
            )
        shutil.rmtree(store)


if __name__ == "__main__":
    main()
