"""The `distillguard` command line: parsing and printing only; the work lives in the packages.

Exit codes: 0 ok, 1 failure, 2 usage or unreadable input, 99 no data for the requested date.
One module per command group registers its commands on `app`, in the order `--help` lists
them: `ingest` (ingest, simulate), `features` (features, link), `model` (score, train),
`nightly` (nightly, alerts, labels), `rules` (rules list/test/backtest/mode), `dashboard` and
`demo`. Logging is configured here and
nowhere else: warnings from the packages (fallbacks, clipped inputs, skipped label rows)
reach stderr.
"""

from __future__ import annotations

import importlib
import json
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

app = typer.Typer(
    help="Find distillation campaigns in an LLM API provider's own traffic.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True, soft_wrap=True)
"""Progress, notes and errors (stderr); results are printed to stdout."""


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also log info messages")
    ] = False,
    memory_limit: Annotated[
        str | None,
        typer.Option(
            envvar="DISTILLGUARD_MEMORY_LIMIT",
            help="DuckDB memory limit for the local engine, e.g. 6GB (beyond it, work spills)",
        ),
    ] = None,
    spill_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="DISTILLGUARD_SPILL_DIR",
            help="Folder DuckDB spills to (default: a folder in the system temp directory)",
        ),
    ] = None,
    profile: Annotated[
        bool, typer.Option("--profile", help="Print the wall time of each stage at the end")
    ] = False,
    profile_out: Annotated[
        Path | None,
        typer.Option(help="Write each stage's wall time as JSON to this file at the end"),
    ] = None,
) -> None:
    """Find distillation campaigns in an LLM API provider's own traffic."""
    configure_logging(logging.INFO if verbose else logging.WARNING)
    exit_cleanly_on_sigterm()
    apply_engine_settings(memory_limit, spill_dir)
    if profile or profile_out:
        from features import timing

        started = time.perf_counter()
        record = ctx.with_resource(timing.recording())

        def report() -> None:
            total = time.perf_counter() - started
            if profile:
                print_profile(record, total)
            if profile_out:
                profile_out.write_text(json.dumps(record.as_dict(total), indent=1))

        ctx.call_on_close(report)


def print_profile(record, total: float) -> None:
    """The stages a command went through, with their wall time and share of the whole run."""
    table = Table(title=f"where the time went ({total:.1f} s wall)", title_justify="left")
    for column in ("stage", "seconds", "share", "calls"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for name, depth, seconds, calls in record.rows():
        share = seconds / total if total else 0.0
        table.add_row("  " * depth + name, f"{seconds:.2f}", f"{share:.0%}", f"{calls:,}")
    tracked = sum(s for _, depth, s, _ in record.rows() if depth == 0)
    table.add_row("other (start-up, imports, untimed steps)", f"{total - tracked:.2f}", "", "")
    console.print(table)


def apply_engine_settings(memory_limit: str | None, spill_dir: Path | None) -> None:
    """Make `--memory-limit` and `--spill-dir` every DuckDB connection's settings (through the
    environment, so the commands' own processes see them); exit 2 on a limit DuckDB rejects."""
    import os

    from features import store

    if spill_dir is not None:
        os.environ[store.SPILL_DIR_ENV] = str(spill_dir)
    if memory_limit is not None:
        os.environ[store.MEMORY_LIMIT_ENV] = memory_limit
        try:
            store.connect().close()
        except ValueError as exc:
            raise fail(f"--memory-limit: {exc}") from exc


def exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM (a supervisor stopping the job) into SystemExit, so `finally` blocks and
    context managers run: private stores are removed, locks released, transactions rolled back."""

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)


def configure_logging(level: int) -> None:
    """Send the packages' log records at `level` and above to stderr (once per process)."""
    root = logging.getLogger()
    if not any(isinstance(h, RichHandler) for h in root.handlers):
        handler = RichHandler(console=console, show_time=False, show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        root.addHandler(handler)
    for name in ("features", "detector", "dashboards"):
        logging.getLogger(name).setLevel(level)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print an error and return the exit to raise."""
    console.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def progress_bar(rows: bool = False) -> Progress:
    """A progress bar over bytes (reading logs) or rows (feature work)."""
    amount = [MofNCompleteColumn()] if rows else [DownloadColumn(), TransferSpeedColumn()]
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        *amount,
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


StoreOption = Annotated[Path, typer.Option(help="Store folder written by `ingest`")]
DateOption = Annotated[str, typer.Option(help="Last day of the window, YYYY-MM-DD (UTC)")]
WindowOption = Annotated[str, typer.Option(help="Window length: 1d, 7d or 30d (any Nd)")]
StoreUriOption = Annotated[
    str,
    typer.Option("--store", help="Store written by `ingest` (folder; with --engine spark any URI)"),
]
EngineOption = Annotated[
    str,
    typer.Option(help="Feature engine: duckdb (local) or spark (pip install '.[spark]', Java 17+)"),
]
SparkMasterOption = Annotated[
    str, typer.Option(help="Spark master with --engine spark (spark-submit's wins)")
]
WarehouseOption = Annotated[Path, typer.Option(help="DuckDB warehouse file")]
RulesOption = Annotated[
    Path | None,
    typer.Option("--rules", help="Folder of your own rule files (TOML), beside the shipped rules"),
]
ModelOption = Annotated[
    Path | None, typer.Option(help="Model directory from `train` (default: the shipped model)")
]


def load_rules(folder: Path | None, modes: dict[str, str] | None = None):
    """The shipped rules plus a folder of user rules, or exit 2 naming the file and field."""
    from detector import rules

    try:
        return rules.load(folder, modes)
    except rules.RuleError as exc:
        raise fail(str(exc)) from exc


def parse_window(date: str, window: str | int):
    """`--date` and `--window` as a window, or exit 2 naming what is wrong."""
    from features.pipeline import Window

    try:
        return Window.parse(date, window)
    except ValueError as exc:
        raise fail(str(exc)) from exc


def store_window(store: Path, date: str, window: str):
    """The window of `--date` and `--window` over a store, or exit 2 naming what is wrong."""
    win = parse_window(date, window)
    require_store(store)
    return win


def require_store(store: Path) -> None:
    """Exit 2 unless `store` is a store folder `ingest` wrote."""
    if not (store / "requests").is_dir():
        raise fail(f"{store}: not a store (no requests/ folder); run `distillguard ingest` first")


def spark_for(engine: str, master: str):
    """None for the duckdb engine, a SparkSession for spark; exit 2 for anything else or when
    Spark cannot start."""
    if engine == "duckdb":
        return None
    if engine != "spark":
        raise fail(f"--engine must be duckdb or spark, got {engine!r}")
    from features import spark as spark_engine

    try:
        return spark_engine.session(master)
    except RuntimeError as exc:
        raise fail(str(exc)) from exc


for _group in ("ingest", "features", "model", "nightly", "rules", "dashboard", "demo"):
    importlib.import_module(f"detector.cli.{_group}")  # registers its commands, in help order


def main() -> None:  # pragma: no cover - console entry for `python -m detector.cli`
    app()
