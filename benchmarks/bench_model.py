"""Scoring and training speed and memory of the detector model, features and graph given.

    python -m benchmarks.bench_model [--score 10000,100000] [--train 100000,1000000] [--epochs 2]

Feature rows are drawn (with new ids) from a cached simulated world, so their distribution is
real: community members get campaign accounts' rows, everyone else legitimate rows (10% of
accounts in campaigns, a heavy load for reasons, which are computed for every flagged
account); edges are a planted-community graph (dense communities of 5-50 accounts, plus
noise; 10 candidate edges per account, spread over the eight link types) and the communities
are the clusters. Scoring times `score_window` (graph features, tensors, forward pass,
calibration, campaigns), then again with occlusion reasons for every flagged account.
Training times full-batch epochs of the shipped architecture, labels = community members. Each
run is a fresh process; peak RSS is the child's VmHWM.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.bench_linking import planted_graph
from benchmarks.common import machine, measure


def _inputs(n: int, seed: int = 0):
    from detector.linking.edges import EDGE_TYPES
    from research import experiments
    from research.worlds import build

    pool = build(experiments.TRAIN[0], Path("data/cache"))[0].features
    legit, bad = pool.filter(pl.col("label") == 0), pool.filter(pl.col("label") == 1)
    rng = np.random.default_rng(seed)
    ids, edges, community = planted_graph(n, 10, seed)
    # community members get campaign accounts' features, everyone else legitimate ones
    rows = np.where(
        community >= 0,
        legit.height + rng.integers(0, bad.height, n),
        rng.integers(0, legit.height, n),
    )
    features = pl.concat([legit, bad])[rows].with_columns(ids.alias("account_id"))
    types = np.array(list(EDGE_TYPES))
    edges = edges.with_columns(
        pl.Series("edge_type", types[rng.integers(0, len(types), edges.height)]),
        pl.lit("v").alias("evidence"),
    )
    names = pl.Series([f"c{c:06d}" if c >= 0 else None for c in community], dtype=pl.String)
    members = pl.DataFrame({"account_id": ids, "cluster": names}).with_columns(
        pl.when(pl.col("cluster").is_null())
        .then(1)
        .otherwise(pl.len().over("cluster"))
        .alias("cluster_size")
    )
    return features, edges, members, community


def child_score(n: int) -> dict:
    from detector.model import artifact
    from detector.pipeline.scoring import score_window

    features, edges, members, _ = _inputs(n)
    fitted, _ = artifact.load()
    activity = features.select("account_id").with_columns(
        pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("first_seen"),
        pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("last_seen"),
        pl.lit(1, dtype=pl.Int64).alias("n_requests"),
    )
    evidence = pl.DataFrame(
        schema={
            "cluster": pl.String,
            "edge_type": pl.String,
            "n_edges": pl.UInt32,
            "weight": pl.Float64,
            "top_values": pl.List(pl.String),
        }
    )
    start = time.perf_counter()
    score_window(fitted, features, edges, members, evidence, activity, explain_flagged=False)
    bare = time.perf_counter() - start
    start = time.perf_counter()
    scored = score_window(fitted, features, edges, members, evidence, activity)
    return {
        "seconds": bare,
        "with_reasons": time.perf_counter() - start,
        "edges": edges.height,
        "flagged": int(scored.accounts["flagged"].sum()),
    }


def child_train(n: int, epochs: int) -> dict:
    from detector.model.config import Optimiser, TrainConfig
    from detector.model.graph import fit_preprocessor, make_graph, structure
    from detector.model.train import fit

    features, edges, members, community = _inputs(n)
    frame = structure(features, edges, members).with_columns(
        pl.Series("label", (community >= 0).astype(np.int64))
    )
    prep = fit_preprocessor([frame])
    graph = make_graph(frame, edges, prep)
    held = np.random.default_rng(1).random(n) < 0.2
    cfg = TrainConfig(optimiser=Optimiser(max_epochs=epochs, patience=epochs + 1))
    start = time.perf_counter()
    fitted = fit([graph.with_mask(~held)], [graph.with_mask(held)], prep, cfg)
    total = time.perf_counter() - start
    return {
        "seconds": total,
        "per_epoch": float(np.mean([h["seconds"] for h in fitted.history])),
        "edges": edges.height,
    }


def run(kind: str, n: int, epochs: int) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        argv = [
            sys.executable,
            "-m",
            "benchmarks.bench_model",
            "--child",
            kind,
            "--n",
            str(n),
            "--epochs",
            str(epochs),
            "--result",
            out.name,
        ]
        m = measure(argv)
        inner = json.loads(Path(out.name).read_text())
    return inner | {"peak_rss_mb": m.peak_rss_mb, "process_seconds": m.seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--score", default="10000,100000")
    parser.add_argument("--train", default="100000,1000000")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--child", choices=("score", "train"))
    parser.add_argument("--n", type=int)
    parser.add_argument("--result")
    args = parser.parse_args()
    if args.child:
        result = child_score(args.n) if args.child == "score" else child_train(args.n, args.epochs)
        Path(args.result).write_text(json.dumps(result))
        return
    print(f"machine: {machine()}")
    print("| step | accounts | edges | seconds | peak RSS MB | note |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for n in [int(x) for x in args.score.split(",") if x]:
        r = run("score", n, args.epochs)
        print(
            f"| score | {n:,} | {r['edges']:,} | {r['seconds']:.1f} | {r['peak_rss_mb']:,.0f} | "
            f"scores, flags, campaigns; with reasons for all {r['flagged']:,} flagged: "
            f"{r['with_reasons']:.1f} s |",
            flush=True,
        )
    for n in [int(x) for x in args.train.split(",") if x]:
        r = run("train", n, args.epochs)
        print(
            f"| train | {n:,} | {r['edges']:,} | {r['per_epoch']:.1f} per epoch | "
            f"{r['peak_rss_mb']:,.0f} | {args.epochs} epochs, full batch |",
            flush=True,
        )


if __name__ == "__main__":
    main()
