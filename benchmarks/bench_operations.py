"""Lockstep edges and operations at scale, on synthetic traffic.

    python -m benchmarks.bench_operations [--accounts 1000000] [--requests-per-account 10]
        [--flagged 0.01] [--swarm 200]

One day of traffic: every account sends `--requests-per-account` requests at random times to
one of three models from one of 50 SDK builds, and a swarm of `--swarm` accounts also fires 40
bursts within 20 seconds (each member joins three in ten). Timed separately, each in a fresh
process so peak memory is its own:

- `lockstep`: `detector.linking.lockstep.candidates_sql` in DuckDB and the exact Poisson test,
  once with the swarm on the common SDK builds and once on a client build of its own;
- `focus`: `lockstep.minutes_sql` (every account's active minutes, in DuckDB) and
  `lockstep.focus_edges` among `--flagged` of the accounts (the swarm among them), what scoring
  runs once it knows the accounts under review;
- `operations`: `operations.join_units` over `--flagged` of the accounts as units (in cells of
  eight, the rest lone) with fingerprint elements: 40 task texts each from a shared pool of
  200,000 and one client string from 5,000, as `operations.elements_sql` would give.

Clustering (Leiden) at this size is in the "Linking and clustering" table (`bench_linking`).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import duckdb
import numpy as np
import polars as pl

DAY = 86400
T0 = 1772409600


def signals(
    accounts: int, per_account: int, swarm: int, own_client: bool, seed: int = 1
) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = accounts * per_account
    acct = np.repeat(np.arange(accounts), per_account)
    t = T0 + rng.random(n) * DAY
    bursts = rng.random(40) * DAY
    members = rng.random((swarm, 40)) < 0.3
    sw_acct, sw_burst = np.nonzero(members)
    t = np.concatenate([t, T0 + bursts[sw_burst] + rng.random(sw_acct.size) * 20])
    acct = np.concatenate([acct, sw_acct])
    models = np.array(["m-3", "m-4", "m-4.5"])
    sdks = np.array([f"sdk/{i}" for i in range(50)])
    client = sdks[rng.integers(0, 50, acct.size)]
    if own_client:  # the swarm's controller sends with its own build
        client = np.where(acct < swarm, "harvest-client/2.1", client)
    return pl.DataFrame(
        {
            "account_id": pl.Series(acct).cast(pl.String),
            "t_s": t,
            "request_model": models[rng.integers(0, 3, acct.size)],
            "user_agent": client,
        }
    )


def run_lockstep(args) -> dict:
    from detector.linking.edges import EDGE_TYPES
    from detector.linking.lockstep import LockstepConfig, candidates_sql, edges_from

    frame = signals(args.accounts, args.requests_per_account, args.swarm, args.own_client)
    con = duckdb.connect()
    con.register("signals", frame.to_arrow())
    cfg = LockstepConfig()
    start = time.perf_counter()
    found = pl.from_arrow(con.sql(candidates_sql(cfg)).to_arrow_table())
    edges = edges_from(found, cfg, EDGE_TYPES["lockstep"].strength)
    seconds = time.perf_counter() - start
    inside = edges.filter(
        pl.col("src").cast(pl.Int64).lt(args.swarm) & pl.col("dst").cast(pl.Int64).lt(args.swarm)
    ).height
    return {
        "step": "lockstep" + (" (swarm on its own client)" if args.own_client else ""),
        "rows": frame.height,
        "seconds": seconds,
        "edges": edges.height,
        "swarm edges": inside,
        "tested pairs": int(found["tested"][0]) if found.height else 0,
    }


def run_focus(args) -> dict:
    from detector.linking.edges import EDGE_TYPES
    from detector.linking.lockstep import LockstepConfig, focus_edges, minutes_sql

    frame = signals(args.accounts, args.requests_per_account, args.swarm, own_client=False)
    con = duckdb.connect()
    con.register("signals", frame.to_arrow())
    cfg = LockstepConfig()
    start = time.perf_counter()
    minutes = pl.from_arrow(con.sql(minutes_sql(cfg)).to_arrow_table())
    review = pl.Series([str(i) for i in range(int(args.accounts * args.flagged))])
    edges = focus_edges(minutes, review, cfg, EDGE_TYPES["lockstep"].strength)
    seconds = time.perf_counter() - start
    inside = edges.filter(
        pl.col("src").cast(pl.Int64).lt(args.swarm) & pl.col("dst").cast(pl.Int64).lt(args.swarm)
    ).height
    return {
        "step": "lockstep among the accounts under review",
        "rows": frame.height,
        "seconds": seconds,
        "active minutes": minutes.height,
        "edges": edges.height,
        "swarm edges": inside,
        "swarm members connected": _largest_component(edges),
    }


def _largest_component(edges: pl.DataFrame) -> int:
    import igraph as ig

    if edges.is_empty():
        return 0
    graph = ig.Graph.TupleList(edges.select("src", "dst").iter_rows(), directed=False)
    return max(graph.connected_components().sizes())


def run_operations(args) -> dict:
    from detector.linking.cluster import EDGE_SCHEMA
    from detector.linking.operations import join_units

    rng = np.random.default_rng(2)
    n = int(args.accounts * args.flagged)
    ids = [str(i) for i in range(n)]
    cell_of = [f"c{i // 8}" if i < n // 2 else f"account:{i}" for i in range(n)]
    units = pl.DataFrame({"unit": cell_of, "account_id": ids})
    tasks = rng.integers(0, 200_000, (n, 40))
    elements = pl.concat(
        [
            pl.DataFrame(
                {
                    "account_id": np.repeat(ids, 40),
                    "kind": "task",
                    "value": tasks.ravel().astype(str),
                }
            ),
            pl.DataFrame(
                {
                    "account_id": ids,
                    "kind": "client",
                    "value": rng.integers(0, 5000, n).astype(str),
                }
            ),
        ]
    )
    elements = elements.join(
        elements.group_by("kind", "value").len("holders"), on=["kind", "value"]
    ).filter(pl.col("holders") >= 2)
    vectors = {a: v for a, v in zip(ids, rng.normal(size=(n, 60)), strict=True)}
    edges = pl.DataFrame(schema=EDGE_SCHEMA)
    cells = {u for u in cell_of if not u.startswith("account:")}
    start = time.perf_counter()
    ops = join_units(units, cells, elements, edges, vectors)
    seconds = time.perf_counter() - start
    return {
        "step": "operations",
        "rows": elements.height,
        "seconds": seconds,
        "units": units["unit"].n_unique(),
        "operations": ops.assignment["operation"].n_unique(),
        "joins": ops.joins.height,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--requests-per-account", type=int, default=10)
    parser.add_argument("--flagged", type=float, default=0.01)
    parser.add_argument("--swarm", type=int, default=200)
    parser.add_argument("--step", choices=["lockstep", "focus", "operations"])
    parser.add_argument("--own-client", action="store_true")
    args = parser.parse_args()
    if args.step:
        run = {"lockstep": run_lockstep, "focus": run_focus, "operations": run_operations}
        out = run[args.step](args)
        out["peak RSS MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(out)
        return
    steps = (("lockstep", []), ("lockstep", ["--own-client"]), ("focus", []), ("operations", []))
    for step, extra in steps:
        argv = [sys.executable, "-m", "benchmarks.bench_operations", "--step", step, *extra]
        argv += ["--accounts", str(args.accounts), "--flagged", str(args.flagged)]
        argv += ["--requests-per-account", str(args.requests_per_account)]
        argv += ["--swarm", str(args.swarm)]
        subprocess.run(argv, check=True)


if __name__ == "__main__":
    main()
