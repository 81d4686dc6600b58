"""`distillguard demo`: the main job on a simulated world, from simulation to the warehouse."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from detector import demo as report
from detector import simulate as sim
from detector.cli import app
from detector.cli.features import features, link
from detector.cli.ingest import ingest, simulate
from detector.cli.model import score
from detector.cli.nightly import hourly, nightly


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo world, store and features")] = Path(
        "demo"
    ),
    accounts: Annotated[int, typer.Option(help="Accounts in the demo world")] = 500,
    days: Annotated[int, typer.Option(help="Days of demo traffic")] = 14,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
) -> None:
    """The main job on built-in demo data: simulate -> ingest -> features -> link -> score ->
    nightly and hourly (three nights, and three hours of the last day, into
    OUT/warehouse.duckdb, exported to OUT/warehouse/)."""
    world_dir, store_path = out / "world", out / "store"
    simulate(out=world_dir, accounts=accounts, days=days, seed=seed, scenario="default")
    shutil.rmtree(store_path, ignore_errors=True)
    ingest(
        source=[world_dir / "requests.parquet", world_dir / "accounts.parquet"],
        store=store_path,
    )
    config = sim.scenario("default", accounts=accounts, days=days, seed=seed)
    last_day = (config.start + timedelta(days=days - 1)).date().isoformat()
    features(store=str(store_path), date=last_day, out=out / "features.parquet", window="7d")
    link(store=store_path, date=last_day, out=out / "links", window="7d", resolution=0.05)
    labels = pl.read_parquet(world_dir / "labels.parquet")
    members = pl.read_parquet(out / "links" / "clusters.parquet")
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
        print(f"\nMedian features per archetype ({out / 'features.parquet'}):")
        print(report.archetype_medians(pl.read_parquet(out / "features.parquet"), labels))
        print("\nHow each planted campaign clusters (share of its members in its largest cluster):")
        print(report.cohesion(members, labels))
    scores_dir = out / "scores"
    score(
        requests=[world_dir / "requests.parquet"],
        out=scores_dir,
        accounts=[world_dir / "accounts.parquet"],
        model=None,
        date=None,
        window=None,
    )
    scored = pl.read_parquet(scores_dir / "account_scores.parquet")
    campaigns = pl.read_parquet(scores_dir / "campaigns.parquet")
    with pl.Config(
        tbl_rows=-1, tbl_width_chars=200, fmt_str_lengths=160, tbl_hide_dataframe_shape=True
    ):
        print("\nFlagged accounts per archetype (shipped model):")
        print(report.flagged_per_archetype(scored, labels))
        print("\nCampaigns, with the first reason of each:")
        print(report.campaign_summary(campaigns))
    # the nightly job over the last three simulated days, into the warehouse the dashboard
    # reads, with the hourly job running through the last day before its night
    warehouse_path = out / "warehouse.duckdb"
    warehouse_path.unlink(missing_ok=True)
    Path(f"{warehouse_path}.wal").unlink(missing_ok=True)
    first_night = config.start + timedelta(days=max(days - 3, 0))
    last = config.start + timedelta(days=days - 1)
    print()
    if first_night < last:
        nightly(
            store=str(store_path),
            date=first_night.date().isoformat(),
            warehouse=warehouse_path,
            until=(last - timedelta(days=1)).date().isoformat(),
            window_days=7,
            model=None,
            alerts=None,
            export=None,
        )
    for hour in (6, 12, 18):
        hourly(
            store=store_path,
            at=(last + timedelta(hours=hour)).isoformat(),
            warehouse=warehouse_path,
            window_days=7,
            model=None,
            alerts=None,
            rules_dir=None,
        )
    nightly(
        store=str(store_path),
        date=last_day,
        warehouse=warehouse_path,
        window_days=7,
        model=None,
        alerts=None,
        export=out / "warehouse",
    )
