"""`distillguard ingest` and `simulate`: logs and account tables into the store, and a labelled
simulated world to try it on."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from detector import simulate as sim
from detector.cli import app, console, fail, progress_bar
from features import ingest as ingest_mod
from features import sources
from features.adapters import FORMATS, Context
from features.store import StoreLocked
from features.validate import Limits


@app.command()
def ingest(
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
    max_text_bytes: Annotated[
        int, typer.Option(help="Longer prompts are quarantined")
    ] = Limits.max_text_bytes,
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
        with progress_bar() as progress:
            task = progress.add_task("ingest", total=total)
            report = ingest_mod.run(
                source, store, opts, lambda n: progress.advance(task, n), planned=planned
            )
    except StoreLocked as exc:
        raise fail(str(exc), 1) from exc
    except sources.SourceError as exc:
        raise fail(str(exc)) from exc
    print_report(report, store, planned)


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


def print_report(report: ingest_mod.Report, store: Path, planned: dict) -> None:
    """The per-table counts of an ingest run; exit 1 if they do not reconcile (a bug)."""
    out = Console()
    grid = Table(title=f"ingest {report.run_id} -> {store}")
    for col in (
        "table",
        "read",
        "stored",
        "duplicates",
        "quarantined",
        "conflicting",
        "reconciles",
    ):
        grid.add_column(col, justify="right" if col != "table" else "left")
    for name, c in report.counts.items():
        numbers = (c.read, c.stored, c.duplicates, c.quarantined, c.conflicting)
        grid.add_row(name, *map(str, numbers), str(c.reconciles))
    out.print(grid)
    for name, c in report.counts.items():
        for message, n in sorted(c.warnings.items(), key=lambda item: (-item[1], item[0])):
            out.print(f"[yellow]warning[/yellow] ({name}, {n:,} row(s) kept): {message}")
    empty = [str(p) for p, k in planned.items() if k is None]
    kinds = ", ".join(sorted({f"{k.format}/{k.table}" for k in report.files.values()}))
    out.print(
        f"{len(planned)} file(s) read as {kinds or 'nothing'}"
        + (f"; {len(empty)} empty file(s) skipped" if empty else "")
        + ". Rejected rows (conflicting duplicates among them: a request_id already taken by a "
        "different row, the first-seen row kept) are in the store's quarantine/ with reasons."
    )
    if not all(c.reconciles for c in report.counts.values()):
        raise fail("counts do not reconcile (a bug): please report it", 1)
