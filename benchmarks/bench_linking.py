"""Linking and clustering at scale: time and peak memory at 10k, 100k and 1M accounts.

    python -m benchmarks.bench_linking [--sizes 10000,100000,1000000] [--edges-per-account 20]

Clustering runs on a synthetic graph with planted communities (10% of accounts, sizes 5-50)
plus random noise edges, 20 candidate edges per account (20M at 1M accounts); it reports how much
of each planted community lands in one cluster. Edge generation runs on simulated worlds
(3 days, low per-account volume) at the smaller sizes. Each step runs in a fresh process.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import polars as pl

from benchmarks.common import machine, measure


def planted_graph(
    n: int, per_account: int, seed: int = 0
) -> tuple[pl.Series, pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    community = np.full(n, -1)
    sizes, start, c = [], 0, 0
    while start < n // 10:
        size = int(rng.integers(5, 51))
        community[start : start + size] = c
        sizes.append(size)
        start, c = start + size, c + 1
    src, dst, w = [], [], []
    offset = 0
    for size in sizes:  # dense, heavy edges inside planted communities
        a, b = np.triu_indices(size, 1)
        keep = rng.random(len(a)) < 0.6
        src.append(offset + a[keep])
        dst.append(offset + b[keep])
        w.append(rng.uniform(0.3, 1.0, keep.sum()))
        offset += size
    noise = n * per_account - sum(len(s) for s in src)
    a, b = rng.integers(0, n, noise), rng.integers(0, n, noise)
    src.append(a)
    dst.append(b)
    w.append(rng.uniform(0.05, 0.4, noise))
    src, dst, w = np.concatenate(src), np.concatenate(dst), np.concatenate(w)
    keep = src != dst
    lo, hi = np.minimum(src, dst)[keep], np.maximum(src, dst)[keep]
    names = pl.Series("account_id", np.char.add("a", np.arange(n).astype(str)))
    edges = pl.DataFrame(
        {
            "src": names.gather(lo),
            "dst": names.gather(hi),
            "edge_type": "synthetic",
            "weight": w[keep],
            "evidence": None,
        },
        schema_overrides={"evidence": pl.String},
    )
    return names, edges, community


def run_cluster(n: int, per_account: int) -> None:
    from detector.linking import cluster
    from detector.linking.quality import campaign_cohesion

    names, edges, community = planted_graph(n, per_account)
    start = time.perf_counter()
    out = cluster(names, edges)
    seconds = time.perf_counter() - start
    labels = pl.DataFrame(
        {"account_id": names, "campaign": np.where(community >= 0, community.astype(str), None)}
    )
    cohesion = campaign_cohesion(out.members, labels)["share_in_largest"].mean()
    print(f"{edges.height} {seconds:.1f} {cohesion:.3f}")


def run_edges(n: int) -> None:
    from detector.linking.frames import link_frames
    from detector.simulate import SimConfig, simulate

    world = simulate(SimConfig(accounts=n, days=3, seed=5, volume_scale=0.1))
    t0 = world.config.start.timestamp()
    start = time.perf_counter()
    _, edges, _ = link_frames(world.requests, world.accounts, t0, t0 + 3 * 86400)
    print(f"{world.requests.height} {edges.height} {time.perf_counter() - start:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--edges-per-account", type=int, default=20)
    parser.add_argument("--edge-sizes", default="10000,100000")
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    print(
        "| step | accounts | edges | seconds (whole process) | peak RSS MB | quality |", flush=True
    )
    print("| --- | ---: | ---: | ---: | ---: | --- |", flush=True)
    for n in [int(s) for s in args.sizes.split(",")]:
        out = []
        m = measure_with_output(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_linking",
                "_cluster",
                str(n),
                str(args.edges_per_account),
            ],
            out,
        )
        n_edges, seconds, cohesion = out[0].split()
        print(
            f"| Leiden clustering | {n:,} | {int(n_edges):,} | {m.seconds:.1f} "
            f"(`cluster()` {seconds} s) | {m.peak_rss_mb:,.0f} | "
            f"planted communities: {float(cohesion):.1%} in one cluster |",
            flush=True,
        )
    for n in [int(s) for s in args.edge_sizes.split(",") if s]:
        out = []
        m = measure_with_output(
            [sys.executable, "-m", "benchmarks.bench_linking", "_edges", str(n)], out
        )
        rows, n_edges, seconds = out[0].split()
        print(
            f"| edges + clusters from requests | {n:,} | {int(n_edges):,} | {m.seconds:.1f} "
            f"(linking {seconds} s, {int(rows):,} requests) | {m.peak_rss_mb:,.0f} | |",
            flush=True,
        )


def measure_with_output(argv: list[str], out: list[str]):
    import tempfile

    with tempfile.NamedTemporaryFile("r") as handle:
        m = measure(["bash", "-c", "exec " + " ".join(argv) + f" > {handle.name}"])
        out.append(handle.read().strip().splitlines()[-1])
    return m


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_cluster":
        run_cluster(int(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_edges":
        run_edges(int(sys.argv[2]))
    else:
        main()
