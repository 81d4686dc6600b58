"""`distillguard nightly`, `alerts` and `labels`: the unattended job and its warehouse."""

from __future__ import annotations

from datetime import date as Date
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from detector.cli import (
    DateOption,
    EngineOption,
    ModelOption,
    RulesOption,
    SparkMasterOption,
    StoreUriOption,
    WarehouseOption,
    app,
    console,
    fail,
    load_rules,
    require_store,
    spark_for,
)

DEFAULT_WAREHOUSE = Path("warehouse.duckdb")


def deliver(warehouse: Path, endpoints, force: bool = False):
    """Send what is due (`force`: all that is pending) from the warehouse's outbox."""
    from detector import warehouse as wh
    from detector.alerts import webhooks

    con = wh.open_waiting(warehouse, read_only=False, wait_s=120)
    try:
        return webhooks.deliver(con, endpoints, force=force)
    finally:
        con.close()


def delivery_line(sent) -> str:
    """One line on a delivery: what was sent, and what waits (and until when)."""
    from datetime import UTC, datetime

    line = f"alerts: {sent.delivered} delivered, {sent.retried} to retry, {sent.failed} failed"
    if sent.disabled:
        line += f", disabled: {', '.join(sent.disabled)}"
    if sent.pending:
        wait = max(0.0, (sent.next_due - datetime.now(UTC)).total_seconds())
        line += (
            f"; {sent.pending} pending, next due {sent.next_due:%Y-%m-%d %H:%M:%S} UTC "
            f"(in {wait / 60:.0f} min; `distillguard alerts --now` sends them at once)"
        )
    if sent.held:
        line += f"; {sent.held} held for disabled or unconfigured endpoints"
    return line


@app.command()
def nightly(
    store: StoreUriOption,
    date: DateOption,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    until: Annotated[
        str | None, typer.Option(help="Backfill: score every date from --date to this one")
    ] = None,
    window_days: Annotated[int, typer.Option(help="Days in each scored window")] = 7,
    model: ModelOption = None,
    alerts: Annotated[
        Path | None, typer.Option(help="Webhook config (TOML); secrets from the environment")
    ] = None,
    export: Annotated[
        Path | None, typer.Option(help="Also write every warehouse table as Parquet here")
    ] = None,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = "local[*]",
    rules_dir: RulesOption = None,
) -> None:
    """Score a date (or a range) into the warehouse and send its alerts. Exit 99: no data."""
    from detector import nightly as job
    from detector import warehouse as wh
    from detector.alerts import webhooks
    from detector.model import artifact

    try:
        first = Date.fromisoformat(date)
        last = Date.fromisoformat(until) if until else first
        endpoints = webhooks.load_endpoints(alerts)
        artifact.load(model)
    except (ValueError, artifact.ModelError) as exc:
        raise fail(str(exc)) from exc
    load_rules(rules_dir)  # a bad rule file stops the job before it scores anything
    if last < first or window_days < 1:
        raise fail("--until must not be before --date, and --window-days must be at least 1")
    folder = job.local_store(store)
    if engine == "duckdb" and folder is None:
        raise fail(f"{store}: the duckdb engine reads a local folder; use --engine spark for URIs")
    if folder is not None:
        require_store(folder)
    spark = spark_for(engine, spark_master)
    out = Console()
    scored_any = False
    for day in (first + timedelta(days=i) for i in range((last - first).days + 1)):
        try:
            with console.status(f"nightly {day}"):
                result = job.run_date(
                    folder if spark is None else store,
                    day,
                    warehouse,
                    window_days,
                    model,
                    endpoints,
                    spark=spark,
                    rules_dir=rules_dir,
                )
        except job.NoData as exc:
            console.print(f"[yellow]skip:[/yellow] {exc}")
            continue
        except wh.WarehouseLocked as exc:
            raise fail(str(exc), 1) from exc
        except Exception as exc:  # recorded in the warehouse as a failed run, run.failed queued
            if endpoints:
                deliver(warehouse, endpoints)
            raise fail(f"nightly {day} failed: {type(exc).__name__}: {exc}", 1) from exc
        scored_any = True
        out.print(
            f"{day}: {result.n_accounts:,} accounts, {result.n_flagged:,} flagged, "
            f"{result.n_review:,} held for review, {result.n_campaigns:,} campaign(s), "
            f"{result.n_alerts:,} alert event(s), {result.n_new_alerts:,} new "
            f"({result.seconds:.1f} s)"
        )
        if result.warning:
            out.print(f"[yellow]warning:[/yellow] {day}: {result.warning}")
    if endpoints:
        out.print(delivery_line(deliver(warehouse, endpoints)))
    if export is not None:
        wh.export_parquet(warehouse, export)
    if not scored_any:
        raise fail(f"no requests stored in {store} for {first}..{last}", 99)
    out.print(f"Warehouse: {warehouse}")


@app.command()
def hourly(
    store: Annotated[Path, typer.Option(help="Store folder written by `ingest`")],
    at: Annotated[
        str | None,
        typer.Option(
            help="End of the scored window, an ISO time in UTC (floored to the hour; "
            "default: the current hour)"
        ),
    ] = None,
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    window_days: Annotated[
        int, typer.Option(help="Days (of 24 h) before --at in the scored window")
    ] = 7,
    model: ModelOption = None,
    alerts: Annotated[
        Path | None, typer.Option(help="Webhook config (TOML); secrets from the environment")
    ] = None,
    rules_dir: RulesOption = None,
) -> None:
    """Score the window ending at an hour into the warehouse's hourly tables and send its
    alerts (the nightly job's event ids: nothing alerted within the day is sent again at night).
    Run it from cron every hour, or every few minutes: an hour with nothing new ingested since
    its last run is skipped. Exit 99: no requests in the window."""
    from datetime import UTC, datetime

    from detector import hourly as job
    from detector import nightly as nights
    from detector import warehouse as wh
    from detector.alerts import webhooks
    from detector.model import artifact

    try:
        when = job.hour_of(None if at is None else datetime.fromisoformat(at))
        endpoints = webhooks.load_endpoints(alerts)
        artifact.load(model)
    except (ValueError, artifact.ModelError) as exc:
        raise fail(str(exc)) from exc
    if window_days < 1:
        raise fail("--window-days must be at least 1")
    if when > datetime.now(UTC):
        raise fail(f"--at {when.isoformat()} is in the future")
    load_rules(rules_dir)
    require_store(store)
    out = Console()
    try:
        with console.status(f"hourly {when:%Y-%m-%d %H:%M}Z"):
            result = job.run_hour(store, when, warehouse, window_days, model, endpoints, rules_dir)
    except nights.NoData as exc:
        raise fail(str(exc), 99) from exc
    except wh.WarehouseLocked as exc:
        raise fail(str(exc), 1) from exc
    except Exception as exc:  # recorded in hourly_runs as failed, run.failed queued
        if endpoints:
            deliver(warehouse, endpoints)
        raise fail(f"hourly {when.isoformat()} failed: {type(exc).__name__}: {exc}", 1) from exc
    if result.skipped:
        out.print(f"{when:%Y-%m-%d %H:%M}Z: nothing ingested since this hour's run; skipped")
    else:
        out.print(
            f"{when:%Y-%m-%d %H:%M}Z: {result.n_accounts:,} accounts, {result.n_flagged:,} "
            f"flagged, {result.n_review:,} held for review, {result.n_campaigns:,} campaign(s) "
            f"({result.n_new_campaigns:,} new), {result.n_alerts:,} new alert event(s) "
            f"({result.seconds:.1f} s)"
        )
        if result.warning:
            out.print(f"[yellow]warning:[/yellow] {result.warning}")
    if endpoints:
        out.print(delivery_line(deliver(warehouse, endpoints)))
    out.print(f"Warehouse: {warehouse}")


@app.command()
def alerts(
    config: Annotated[
        Path, typer.Option(help="Webhook config (TOML); secrets from the environment")
    ],
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    now: Annotated[
        bool, typer.Option("--now", help="Send every pending alert at once, due or not")
    ] = False,
) -> None:
    """Send the alerts that are due from the warehouse's outbox (retries between nights)."""
    from detector.alerts import webhooks

    if not warehouse.is_file():
        raise fail(f"{warehouse}: no such warehouse; run `distillguard nightly` first")
    try:
        endpoints = webhooks.load_endpoints(config)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    if not endpoints:
        raise fail(f"{config}: no [webhooks.NAME] sections")
    Console().print(delivery_line(deliver(warehouse, endpoints, force=now)))


@app.command()
def labels(
    warehouse: WarehouseOption = DEFAULT_WAREHOUSE,
    out: Annotated[Path, typer.Option(help="Labels file to write (Parquet)")] = Path(
        "labels.parquet"
    ),
) -> None:
    """Analysts' decisions as a labels table for `distillguard train --labels`."""
    from detector import decisions
    from detector import warehouse as wh

    try:
        con = wh.open_waiting(warehouse, read_only=True)
    except (FileNotFoundError, wh.WarehouseBusy) as exc:
        raise fail(str(exc)) from exc
    try:
        frame = decisions.labels(con)
    finally:
        con.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(out)
    n_campaign = int(frame["label"].sum())
    Console().print(
        f"{frame.height:,} labelled account(s) ({n_campaign:,} campaign, "
        f"{frame.height - n_campaign:,} legitimate) from analysts' decisions "
        f"in {warehouse}; wrote {out}."
    )
