"""The `distillguard` command line. Exit codes: 0 ok, 1 failure, 2 usage or unreadable input."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from detector import simulate as sim
from features import ingest as ingest_mod
from features import sources
from features.adapters import FORMATS, Context
from features.store import StoreLocked
from features.validate import Limits

app = typer.Typer(
    help="Find distillation campaigns in an LLM API provider's own traffic.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True, soft_wrap=True)


@app.callback()
def _root() -> None:
    """Find distillation campaigns in an LLM API provider's own traffic."""


def fail(message: str, code: int = 2) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _progress(rows: bool = False) -> Progress:
    """A progress bar over bytes (ingest) or rows (feature work)."""
    amount = [MofNCompleteColumn()] if rows else [DownloadColumn(), TransferSpeedColumn()]
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        *amount,
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


@app.command()
def ingest(  # noqa: PLR0913
    source: Annotated[
        list[Path], typer.Argument(help="Files or folders of logs or account tables")
    ],
    store: Annotated[Path, typer.Option(help="Store folder (created if absent)")],
    fmt: Annotated[
        str, typer.Option("--format", help=f"auto or one of: {', '.join(FORMATS)}")
    ] = "auto",
    table: Annotated[str | None, typer.Option(help="Force the table: requests or accounts")] = None,
    account_id: Annotated[
        str | None, typer.Option(help="Account for records that carry none (batch files)")
    ] = None,
    batch_time: Annotated[
        str | None, typer.Option(help="ISO-8601 time for batch results that carry none")
    ] = None,
    max_text_bytes: Annotated[int, typer.Option(help="Longer prompts are quarantined")] = 4
    * 1024
    * 1024,
) -> None:
    """Load request logs and account tables into the store (deduplicated, bad rows quarantined)."""
    try:
        opts = ingest_mod.Options(
            fmt=fmt,
            table=table,
            ctx=Context(account_id=account_id, batch_time=batch_time),
            limits=Limits(max_text_bytes=max_text_bytes),
        )
        planned = ingest_mod.plan(source, opts)
    except (ValueError, sources.SourceError) as exc:
        raise fail(str(exc)) from exc
    total = sum(sources.file_size(p) for p in planned)
    try:
        with _progress() as progress:
            task = progress.add_task("ingest", total=total)
            report = ingest_mod.run(
                source, store, opts, lambda n: progress.advance(task, n), planned=planned
            )
    except StoreLocked as exc:
        raise fail(str(exc), 1) from exc
    except sources.SourceError as exc:
        raise fail(str(exc)) from exc
    _print_report(report, store, planned)


def _print_report(report: ingest_mod.Report, store: Path, planned: dict) -> None:
    out = Console()
    grid = Table(title=f"ingest {report.run_id} -> {store}")
    for col in ("table", "read", "stored", "duplicates", "quarantined", "reconciles"):
        grid.add_column(col, justify="right" if col != "table" else "left")
    for name, c in report.counts.items():
        grid.add_row(
            name, *map(str, (c.read, c.stored, c.duplicates, c.quarantined)), str(c.reconciles)
        )
    out.print(grid)
    empty = [str(p) for p, k in planned.items() if k is None]
    kinds = ", ".join(sorted({f"{k.format}/{k.table}" for k in report.files.values()}))
    out.print(
        f"{len(planned)} file(s) read as {kinds or 'nothing'}"
        + (f"; {len(empty)} empty file(s) skipped" if empty else "")
        + ". Rejected rows are in the store's quarantine/ with their reasons."
    )
    if not all(c.reconciles for c in report.counts.values()):
        raise fail("counts do not reconcile (a bug): please report it", 1)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Folder for requests/accounts/labels.parquet")],
    accounts: Annotated[int, typer.Option(help="Accounts in the world")] = 1000,
    days: Annotated[int, typer.Option(help="Days of traffic")] = 14,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same world)")] = 0,
    scenario: Annotated[
        str, typer.Option(help=f"Preset: {', '.join(sorted(sim.SCENARIOS))}")
    ] = "default",
) -> None:
    """Write a simulated world with labelled campaigns, hard negatives and evasion tactics."""
    try:
        config = sim.scenario(scenario, accounts=accounts, days=days, seed=seed)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    with console.status(f"simulating {accounts} accounts over {days} days ({scenario})"):
        world = sim.simulate(config)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("requests", "accounts", "labels"):
        getattr(world, name).write_parquet(out / f"{name}.parquet", compression="zstd")
    labels = world.labels
    n_campaign = labels.filter(pl.col("label") == 1).height
    Console().print(
        f"Wrote {world.requests.height:,} requests from {labels.height:,} accounts "
        f"({n_campaign} in {labels['campaign'].drop_nulls().n_unique()} campaign(s), "
        f"scenario {scenario}, seed {seed}) to {out}/."
    )


StoreOption = Annotated[Path, typer.Option(help="Store folder written by `ingest`")]
DateOption = Annotated[str, typer.Option(help="Last day of the window, YYYY-MM-DD (UTC)")]
WindowOption = Annotated[str, typer.Option(help="Window length: 1d, 7d or 30d (any Nd)")]


def _store_window(store: Path, date: str, window: str):
    """The window of `--date` and `--window` over a store, or exit 2 naming what is wrong."""
    from features import pipeline

    try:
        win = pipeline.Window.parse(date, window)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    if not (store / "requests").is_dir():
        raise fail(f"{store}: not a store (no requests/ folder); run `distillguard ingest` first")
    return win


@app.command()
def features(
    store: StoreOption,
    date: DateOption,
    out: Annotated[Path, typer.Option(help="Output file: .parquet or .csv")],
    window: WindowOption = "7d",
) -> None:
    """Per-account features over a window ending on a date, for analysts and models."""
    from features import pipeline

    win = _store_window(store, date, window)
    if out.suffix not in (".parquet", ".csv"):
        raise fail(f"--out must end in .parquet or .csv, got {out.name!r}")
    total = pipeline.count_rows(store, win)
    with _progress(rows=True) as progress:
        task = progress.add_task("signals", total=total)
        frame = pipeline.compute(store, win, lambda n: progress.advance(task, n))
    if frame.is_empty():
        raise fail(f"no requests in {store} between {win.dates[0]} and {win.end}", 99)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        frame.write_csv(out)
    else:
        frame.write_parquet(out)
    Console().print(
        f"Wrote {frame.height:,} accounts x {frame.width - 2} features ({frame['feature_set'][0]}) "
        f"for {win.dates[0]}..{win.end} from {total:,} requests to {out}."
    )


@app.command()
def link(
    store: StoreOption,
    date: DateOption,
    out: Annotated[Path, typer.Option(help="Folder for edges, clusters and evidence (Parquet)")],
    window: WindowOption = "7d",
    resolution: Annotated[
        float, typer.Option(help="Leiden CPM resolution: link density a cluster must exceed")
    ] = 0.05,
) -> None:
    """Link accounts (shared payment, ranges, templates, timing, ...) and cluster campaigns."""
    from detector.linking import ClusterConfig, cluster
    from detector.linking import link as link_accounts
    from features import pipeline
    from features.aggregate import feature_sql

    win = _store_window(store, date, window)
    try:
        cluster_cfg = ClusterConfig(resolution=resolution)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    total = pipeline.count_rows(store, win)
    with _progress(rows=True) as progress:
        task = progress.add_task("signals", total=total)
        with pipeline.window_relations(store, win, lambda n: progress.advance(task, n)) as con:
            if con is None:
                raise fail(f"no requests in {store} between {win.dates[0]} and {win.end}", 99)
            sql = feature_sql("signals", "accounts", win.start_s, win.end_s, "firsts")
            feats = pl.from_arrow(con.sql(sql).to_arrow_table())
            edges = link_accounts(con, feats)
    clusters = cluster(feats["account_id"], edges, cluster_cfg)
    out.mkdir(parents=True, exist_ok=True)
    edges.write_parquet(out / "edges.parquet")
    clusters.members.write_parquet(out / "clusters.parquet")
    clusters.evidence.write_parquet(out / "evidence.parquet")
    sizes = clusters.members.filter(pl.col("cluster").is_not_null())
    Console().print(
        f"Linked {feats.height:,} accounts with {edges.height:,} typed edges into "
        f"{sizes['cluster'].n_unique():,} clusters ({sizes.height:,} accounts clustered) "
        f"for {win.dates[0]}..{win.end}; wrote {out}/edges, clusters, evidence.parquet."
    )


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo world, store and features")] = Path(
        "demo"
    ),
    accounts: Annotated[int, typer.Option(help="Accounts in the demo world")] = 500,
    days: Annotated[int, typer.Option(help="Days of demo traffic")] = 14,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
) -> None:
    """The main job on built-in demo data: simulate -> ingest -> features -> link."""
    from datetime import timedelta

    from detector.linking.quality import campaign_cohesion
    from features import pipeline

    world_dir, store_path = out / "world", out / "store"
    simulate(out=world_dir, accounts=accounts, days=days, seed=seed, scenario="default")
    shutil.rmtree(store_path, ignore_errors=True)
    ingest(
        source=[world_dir / "requests.parquet", world_dir / "accounts.parquet"],
        store=store_path,
    )
    config = sim.scenario("default", accounts=accounts, days=days, seed=seed)
    last_day = (config.start + timedelta(days=days - 1)).date().isoformat()
    features(store=store_path, date=last_day, out=out / "features.parquet", window="7d")
    link(store=store_path, date=last_day, out=out / "links", window="7d", resolution=0.05)
    frame = pl.read_parquet(out / "features.parquet").join(
        pl.read_parquet(world_dir / "labels.parquet"), on="account_id"
    )
    summary = frame.group_by("archetype").agg(
        pl.len().alias("accounts"),
        *[pl.col(c).median().round(3) for c in pipeline.DEMO_COLUMNS],
    )
    members = pl.read_parquet(out / "links" / "clusters.parquet")
    labels = pl.read_parquet(world_dir / "labels.parquet")
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
        print(f"\nMedian features per archetype ({out / 'features.parquet'}):")
        print(summary.sort("archetype"))
        print("\nHow each planted campaign clusters (share of its members in its largest cluster):")
        print(campaign_cohesion(members, labels))


def main() -> None:  # pragma: no cover - console entry for `python -m detector.cli`
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
