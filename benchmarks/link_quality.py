"""Campaign cohesion and hard-negative merging of the clusters, on several simulated worlds.

    python -m benchmarks.link_quality [--accounts 1500] [--days 7] [--seeds 1,2]
    python -m benchmarks.link_quality --operations [--accounts 1500] [--days 7] [--seeds 1,2]

With `--operations`, each world is ingested, featurised and scored with the shipped model, and
the predicted operations (`campaign_id`) are compared with the planted campaigns: share of each
campaign in its largest operation, the purity of that operation, predicted operations per
planted campaign and legitimate accounts inside operations.

For each scenario and seed: per campaign, the share of its members in its largest cluster, and
the legitimate accounts (by archetype) that end up in clusters whose majority are campaign
members. Not tuned on: the scenarios include evasion the edge types were not built around.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import polars as pl

from detector.linking.frames import link_frames
from detector.linking.quality import (
    benign_in_campaign_clusters,
    campaign_cohesion,
    legitimate_in_operations,
    operation_quality,
)
from detector.model import artifact
from detector.pipeline import featurise, scoring
from detector.simulate import scenario, simulate
from features import ingest

SCENARIOS = ("default", "evasive", "distinct_infra", "paraphrase", "benign_heavy")
OPERATION_SCENARIOS = (*SCENARIOS, "operations")


def score_world(world, days: int):
    """The world ingested into a temporary store, featurised over its days and scored."""
    with tempfile.TemporaryDirectory(prefix="lq-") as tmp:
        root = Path(tmp)
        world.requests.write_parquet(root / "requests.parquet")
        world.accounts.write_parquet(root / "accounts.parquet")
        ingest.run([root / "requests.parquet"], root / "store")
        ingest.run([root / "accounts.parquet"], root / "store", ingest.Options(table="accounts"))
        data = featurise.featurise(root / "store", featurise.span(root / "store"))
    fitted, _ = artifact.load()
    return data, scoring.score_data(fitted, data, explain_flagged=False)


def operations_report(args) -> None:
    print(
        "| scenario | seed | campaign | members | share in largest operation | its purity "
        "| operations holding it |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    totals = []
    for name in args.scenarios.split(","):
        for seed in [int(s) for s in args.seeds.split(",")]:
            world = simulate(scenario(name, accounts=args.accounts, days=args.days, seed=seed))
            data, scored = score_world(world, args.days)
            quality = operation_quality(scored.accounts, world.labels)
            for r in quality.iter_rows(named=True):
                print(
                    f"| {name} | {seed} | {r['campaign']} | {r['members']} | "
                    f"{r['share_in_largest']:.2f} | {r['purity'] or 0:.2f} | {r['n_operations']} |",
                    flush=True,
                )
            legit = legitimate_in_operations(scored.accounts, world.labels)
            detail = ", ".join(f"{a} {n}" for a, n in legit.iter_rows()) or "none"
            cells = data.clusters.members.join(world.labels, on="account_id").filter(
                pl.col("campaign").is_not_null() & pl.col("cluster").is_not_null()
            )
            totals.append(
                f"| {name} | {seed} | {quality.height} | {cells['cluster'].n_unique()} | "
                f"{scored.campaigns.height} | {int(legit['len'].sum()) if legit.height else 0} "
                f"| {detail} |"
            )
    print(
        "\n| scenario | seed | planted campaigns | cells holding them | predicted operations "
        "| legitimate accounts in operations | by archetype |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    print("\n".join(totals))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=1500)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--operations", action="store_true", help="score and compare operations")
    parser.add_argument("--scenarios", default=",".join(OPERATION_SCENARIOS))
    args = parser.parse_args()
    if args.operations:
        operations_report(args)
        return
    print("| scenario | seed | campaign | members | share in largest cluster | clusters |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    merged_rows = []
    for name in SCENARIOS:
        for seed in [int(s) for s in args.seeds.split(",")]:
            world = simulate(scenario(name, accounts=args.accounts, days=args.days, seed=seed))
            start = world.config.start.timestamp()
            _, _, clusters = link_frames(
                world.requests, world.accounts, start, start + args.days * 86400
            )
            for r in campaign_cohesion(clusters.members, world.labels).iter_rows(named=True):
                print(
                    f"| {name} | {seed} | {r['campaign']} | {r['members']} | "
                    f"{r['share_in_largest']:.2f} | {r['n_clusters']} |",
                    flush=True,
                )
            merged = benign_in_campaign_clusters(clusters.members, world.labels)
            legit = int((world.labels["label"] == 0).sum())
            detail = ", ".join(f"{a} {n}" for a, n in merged.iter_rows()) or "none"
            merged_rows.append(f"| {name} | {seed} | {legit} | {merged['len'].sum()} | {detail} |")
    print("\n| scenario | seed | legitimate accounts | in campaign clusters | by archetype |")
    print("| --- | ---: | ---: | ---: | --- |")
    print("\n".join(merged_rows))


if __name__ == "__main__":
    pl.Config.set_tbl_hide_dataframe_shape(True)
    main()
