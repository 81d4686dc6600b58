"""Determinism and kill-and-rerun at scale: the same nightly run twice, and once killed.

    python -m benchmarks.determinism [--accounts 4000] [--days 7] [--volume 1.0] [--out DIR]

Simulates a world (evasive scenario: ties in link evidence, many clusters), ingests it, then
runs `distillguard nightly` for its last date three times in fresh processes with different
PYTHONHASHSEED values: two clean runs, and one killed with SIGKILL halfway through a clean
run's duration and rerun. Every warehouse table (reasons and every text column included; the run's
own timings excluded) is compared row for row. Prints a markdown table for
docs/RELIABILITY.md and writes OUT/determinism.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from benchmarks.common import machine


def differences(a: dict[str, list], b: dict[str, list]) -> dict[str, int]:
    """Per table, rows in one run and not the other (0 everywhere: identical)."""
    out = {}
    for name in sorted(set(a) | set(b)):
        left, right = set(map(repr, a.get(name, []))), set(map(repr, b.get(name, [])))
        out[name] = len(left ^ right)
    return out


def nightly(store: Path, day: str, warehouse: Path, hash_seed: str, kill_after=None):
    cli = Path(sys.executable).parent / "distillguard"
    argv = [
        str(cli),
        "nightly",
        "--store",
        str(store),
        "--date",
        day,
        "--warehouse",
        str(warehouse),
    ]
    env = os.environ | {"PYTHONHASHSEED": hash_seed}
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    return proc.returncode, time.monotonic() - started, err.decode()[-2000:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=4000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--volume", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="dg-det-")))
    args = parser.parse_args()
    from detector import simulate as sim
    from detector.warehouse import contents
    from features import ingest

    args.out.mkdir(parents=True, exist_ok=True)
    config = sim.scenario(
        "evasive", accounts=args.accounts, days=args.days, seed=args.seed, volume_scale=args.volume
    )
    world = sim.simulate(config)
    world.requests.write_parquet(args.out / "requests.parquet")
    world.accounts.write_parquet(args.out / "accounts.parquet")
    store = args.out / "store"
    for table in ("requests", "accounts"):
        ingest.run([args.out / f"{table}.parquet"], store, ingest.Options(table=table))
    day = (config.start + timedelta(days=config.days - 1)).date().isoformat()
    runs = {}
    for name, seed in (("clean_a", "1"), ("clean_b", "2")):
        code, seconds, err = nightly(store, day, args.out / f"{name}.duckdb", seed)
        if code != 0:
            raise SystemExit(f"{name} failed: {err}")
        runs[name] = seconds
    killed = args.out / "killed.duckdb"
    # half the second run: the first also computed the signal cache the others reuse
    code, seconds, _ = nightly(store, day, killed, "3", kill_after=runs["clean_b"] / 2)
    rerun_code, rerun_s, err = nightly(store, day, killed, "4")
    if rerun_code != 0:
        raise SystemExit(f"rerun failed: {err}")
    a, b, k = (contents(args.out / f"{n}.duckdb") for n in ("clean_a", "clean_b", "killed"))
    figures = {
        "machine": machine(),
        "requests": world.requests.height,
        "accounts": world.labels.height,
        "flagged": sum(1 for r in a["account_scores"] if r[3]),
        "campaigns": len(a["campaigns"]),
        "clean_seconds": runs,
        "killed_returncode": code,
        "killed_after_s": round(seconds, 1),
        "rerun_seconds": round(rerun_s, 1),
        "clean_vs_clean": differences(a, b),
        "clean_vs_killed_and_rerun": differences(a, k),
    }
    (args.out / "determinism.json").write_text(json.dumps(figures, indent=1))
    print(f"{machine()}; {figures['requests']:,} requests, {figures['accounts']:,} accounts, "
          f"{figures['flagged']:,} flagged, {figures['campaigns']:,} campaigns")  # fmt: skip
    print("| comparison | tables | rows that differ |\n| --- | ---: | ---: |")
    for label, key in (
        ("two clean runs", "clean_vs_clean"),
        ("clean vs killed at half time and rerun", "clean_vs_killed_and_rerun"),
    ):
        diff = figures[key]
        print(f"| {label} | {len(diff)} | {sum(diff.values())} |")
    print(f"clean runs {runs['clean_a']:.0f} s and {runs['clean_b']:.0f} s; killed "
          f"(exit {code}) after {seconds:.0f} s; rerun {rerun_s:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
