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


def _spark_for(engine: str, master: str):
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
    store: StoreUriOption,
    date: DateOption,
    out: Annotated[Path, typer.Option(help="Output file: .parquet or .csv")],
    window: WindowOption = "7d",
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = "local[*]",
) -> None:
    """Per-account features over a window ending on a date, for analysts and models."""
    from features import pipeline

    if out.suffix not in (".parquet", ".csv"):
        raise fail(f"--out must end in .parquet or .csv, got {out.name!r}")
    if engine == "spark":  # the window is checked before Spark takes its seconds to start
        try:
            win = pipeline.Window.parse(date, window)
        except ValueError as exc:
            raise fail(str(exc)) from exc
    session = _spark_for(engine, spark_master)
    if session is not None:
        from features import spark as spark_engine

        with console.status("features on Spark"):
            frame = spark_engine.features(session, store, win)
        total = int(frame["n_requests"].sum()) if frame.height else 0
    else:
        win = _store_window(Path(store), date, window)
        total = pipeline.count_rows(Path(store), win)
        with _progress(rows=True) as progress:
            task = progress.add_task("signals", total=total)
            frame = pipeline.compute(Path(store), win, lambda n: progress.advance(task, n))
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


RequestsOption = Annotated[
    list[Path], typer.Option("--requests", help="Request logs: Parquet/JSONL file or folder")
]
AccountsOption = Annotated[
    list[Path] | None, typer.Option("--accounts", help="Accounts table: Parquet/JSONL")
]


def _load_logs(requests: list[Path], accounts: list[Path] | None, store: Path):
    """Ingest score/train inputs into a private store; exit 2 on unreadable or unusable input."""
    from detector.model import batch

    paths = [*requests, *(accounts or [])]
    try:
        total = sum(sources.file_size(p) for p in sources.list_files(paths))
        with _progress() as progress:
            task = progress.add_task("read logs", total=total)
            counts = batch.load_logs(
                requests, accounts or [], store, lambda n: progress.advance(task, n)
            )
    except (ValueError, sources.SourceError) as exc:
        raise fail(str(exc)) from exc
    req = counts["requests"]
    if req.stored + req.duplicates == 0:
        raise fail(
            f"no usable request rows in {', '.join(map(str, requests))}: "
            f"{req.quarantined} of {req.read} rejected ({_first_reason(store)})"
        )
    return counts


def _first_reason(store: Path) -> str:
    files = sorted((store / "quarantine").rglob("*.parquet"))
    if not files:
        return "no rows"
    return "first reason: " + pl.read_parquet(files[0])["reason"][0]


def _keep_quarantine(store: Path, out: Path) -> int:
    """Copy the private store's rejected rows to OUT/quarantine.parquet; their count."""
    files = sorted((store / "quarantine").rglob("*.parquet"))
    target = out / "quarantine.parquet"
    target.unlink(missing_ok=True)
    if not files:
        return 0
    frame = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
    frame.write_parquet(target)
    return frame.height


def _span_window(store: Path, date: str | None, window: str | None):
    from detector.model import batch
    from features import pipeline

    whole = batch.span(store)
    try:
        if date is None and window is None:
            return whole
        return pipeline.Window.parse(date or whole.end, window or f"{whole.days}d")
    except ValueError as exc:
        raise fail(str(exc)) from exc


def _featurise(store: Path, win):
    from detector.model import batch
    from features import pipeline

    with _progress(rows=True) as progress:
        task = progress.add_task(
            f"features {win.dates[0]}..{win.end}", total=pipeline.count_rows(store, win)
        )
        data = batch.featurise(store, win, lambda n: progress.advance(task, n))
    if data is None:
        raise fail(f"no requests between {win.dates[0]} and {win.end}")
    return data


@app.command()
def score(
    requests: RequestsOption,
    out: Annotated[Path, typer.Option(help="Folder for account_scores.parquet, campaigns.parquet")],
    accounts: AccountsOption = None,
    model: Annotated[
        Path | None, typer.Option(help="Model directory from `train` (default: the shipped model)")
    ] = None,
    date: Annotated[
        str | None, typer.Option(help="Last day to score (default: last in logs)")
    ] = None,
    window: Annotated[str | None, typer.Option(help="Window, e.g. 7d (default: all days)")] = None,
) -> None:
    """Score every account in request logs; group flagged accounts into campaigns, with reasons."""
    import tempfile

    from detector.model import artifact, scoring

    try:
        fitted, meta = artifact.load(model)
    except artifact.ModelError as exc:
        raise fail(str(exc)) from exc
    with tempfile.TemporaryDirectory(prefix="distillguard-score-") as tmp:
        store = Path(tmp) / "store"
        counts = _load_logs(requests, accounts, store)
        data = _featurise(store, _span_window(store, date, window))
        with console.status(f"scoring {data.features.height:,} accounts"):
            scored = scoring.score_data(fitted, data)
        out.mkdir(parents=True, exist_ok=True)
        scored.accounts.write_parquet(out / "account_scores.parquet")
        scored.campaigns.write_parquet(out / "campaigns.parquet")
        rejected = _keep_quarantine(store, out)
    req = counts["requests"]
    n_flagged = int(scored.accounts["flagged"].sum())
    Console().print(
        f"Scored {scored.accounts.height:,} accounts from {req.stored:,} requests "
        f"({data.window.dates[0]}..{data.window.end}) with model {model or 'shipped default'} "
        f"(threshold {fitted.threshold:.3f}, {meta['config']['fpr_budget']:.2%} legitimate FPR "
        f"budget): {n_flagged:,} flagged, {scored.campaigns.height:,} campaign(s). "
        f"{req.duplicates:,} duplicate and {rejected:,} rejected row(s) skipped"
        + (f" (reasons in {out / 'quarantine.parquet'})" if rejected else "")
        + f". Wrote {out}/account_scores.parquet and campaigns.parquet."
    )


@app.command()
def train(  # noqa: PLR0913
    requests: RequestsOption,
    labels: Annotated[Path, typer.Option(help="Labels: account_id, label (1 campaign, 0 legit)")],
    model_out: Annotated[Path, typer.Option(help="Model directory to write")],
    accounts: AccountsOption = None,
    fpr_budget: Annotated[
        float, typer.Option(help="Share of legitimate accounts the threshold may flag")
    ] = 0.001,
    epochs: Annotated[int, typer.Option(help="Most training epochs (early stopping)")] = 100,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
    device: Annotated[str | None, typer.Option(help="cuda, mps or cpu (default: best)")] = None,
) -> None:
    """Train a model on your own labelled traffic (past enforcement, analyst verdicts)."""
    import tempfile

    from detector.model import artifact, batch, provider
    from detector.model.train import TrainConfig

    try:
        cfg = TrainConfig(fpr_budget=fpr_budget, max_epochs=epochs, seed=seed, device=device)
        label_frame = batch.read_labels(labels)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    with tempfile.TemporaryDirectory(prefix="distillguard-train-") as tmp:
        store = Path(tmp) / "store"
        _load_logs(requests, accounts, store)
        whole = batch.span(store)
        windows = [_featurise(store, w) for w in provider.training_windows(whole)]
    try:
        with _progress(rows=True) as progress:
            task = progress.add_task("train (epochs)", total=cfg.max_epochs)
            fitted, info = provider.fit_on_labels(
                windows, label_frame, cfg, lambda e, row: progress.update(task, completed=e + 1)
            )
    except ValueError as exc:
        raise fail(str(exc)) from exc
    artifact.save(
        fitted, model_out, info | {"requests": [str(p) for p in requests], "labels": str(labels)}
    )
    v = fitted.validation
    Console().print(
        f"Trained on {info['accounts']:,} labelled accounts ({info['positives']:,} campaign) over "
        f"{len(windows)} window(s), {len(fitted.history)} epochs on {info['device']}. "
        f"Validation (held-out clusters): AP {v['average_precision']:.3f}, recall "
        f"{v['recall_at_threshold']:.1%} at FPR {v['fpr_at_threshold']:.2%} (threshold "
        f"{fitted.threshold:.3f}). Wrote {model_out}/ (use it with `score --model {model_out}`)."
    )


def _deliver(warehouse: Path, endpoints):
    from detector import warehouse as wh
    from detector.alerts import webhooks

    con = wh.open_waiting(warehouse, read_only=False, wait_s=120)
    try:
        return webhooks.deliver(con, endpoints)
    finally:
        con.close()


@app.command()
def nightly(  # noqa: PLR0913
    store: StoreUriOption,
    date: DateOption,
    warehouse: Annotated[Path, typer.Option(help="DuckDB warehouse file")] = Path(
        "warehouse.duckdb"
    ),
    until: Annotated[
        str | None, typer.Option(help="Backfill: score every date from --date to this one")
    ] = None,
    window_days: Annotated[int, typer.Option(help="Days in each scored window")] = 7,
    model: Annotated[Path | None, typer.Option(help="Model directory (default: shipped)")] = None,
    alerts: Annotated[
        Path | None, typer.Option(help="Webhook config (TOML); secrets from the environment")
    ] = None,
    export: Annotated[
        Path | None, typer.Option(help="Also write every warehouse table as Parquet here")
    ] = None,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = "local[*]",
) -> None:
    """Score a date (or a range) into the warehouse and send its alerts. Exit 99: no data."""
    from datetime import date as Date
    from datetime import timedelta

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
    if last < first or window_days < 1:
        raise fail("--until must not be before --date, and --window-days must be at least 1")
    folder = job.local_store(store)
    if engine == "duckdb" and folder is None:
        raise fail(f"{store}: the duckdb engine reads a local folder; use --engine spark for URIs")
    if folder is not None and not (folder / "requests").is_dir():
        raise fail(f"{store}: not a store (no requests/ folder); run `distillguard ingest` first")
    spark = _spark_for(engine, spark_master)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    out = Console()
    scored_any = False
    for day in days:
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
                )
        except job.NoData as exc:
            console.print(f"[yellow]skip:[/yellow] {exc}")
            continue
        except wh.WarehouseLocked as exc:
            raise fail(str(exc), 1) from exc
        except Exception as exc:  # recorded in the warehouse as a failed run, run.failed queued
            if endpoints:
                _deliver(warehouse, endpoints)
            raise fail(f"nightly {day} failed: {type(exc).__name__}: {exc}", 1) from exc
        scored_any = True
        out.print(
            f"{day}: {result.n_accounts:,} accounts, {result.n_flagged:,} flagged, "
            f"{result.n_campaigns:,} campaign(s), {result.n_alerts:,} alert event(s) "
            f"({result.seconds:.1f} s)"
        )
    if endpoints:
        sent = _deliver(warehouse, endpoints)
        out.print(
            f"alerts: {sent.delivered} delivered, {sent.retried} to retry, {sent.failed} failed"
            + (f", disabled: {', '.join(sent.disabled)}" if sent.disabled else "")
        )
    if export is not None:
        wh.export_parquet(warehouse, export)
    if not scored_any:
        raise fail(f"no requests stored in {store} for {first}..{last}", 99)
    out.print(f"Warehouse: {warehouse}")


@app.command()
def labels(
    warehouse: Annotated[Path, typer.Option(help="DuckDB warehouse file")] = Path(
        "warehouse.duckdb"
    ),
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
    Console().print(
        f"{frame.height:,} labelled account(s) ({int(frame['label'].sum()):,} campaign, "
        f"{frame.height - int(frame['label'].sum()):,} legitimate) from analysts' decisions "
        f"in {warehouse}; wrote {out}."
    )


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _oidc_configured() -> bool:
    import tomllib

    for secrets in (Path(".streamlit/secrets.toml"), Path.home() / ".streamlit/secrets.toml"):
        if secrets.is_file() and "auth" in tomllib.loads(secrets.read_text()):
            return True
    return False


@app.command()
def dashboard(
    warehouse: Annotated[Path, typer.Option(help="DuckDB warehouse file")] = Path(
        "warehouse.duckdb"
    ),
    address: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8501,
    roles: Annotated[
        Path | None, typer.Option(help="Roles file (TOML: analysts = [...], viewers = [...])")
    ] = None,
    trusted_header: Annotated[
        str | None,
        typer.Option(help="Take the user from this header set by an authenticating proxy"),
    ] = None,
    read_only: Annotated[bool, typer.Option(help="Everyone is a viewer")] = False,
) -> None:
    """Serve the Streamlit triage dashboard (localhost only unless login is configured)."""
    import os
    import sys
    from importlib.resources import files

    if address not in LOOPBACK and not (trusted_header or _oidc_configured()):
        raise fail(
            f"--address {address} would serve beyond this machine without login: configure "
            "st.login ([auth] in .streamlit/secrets.toml) or --trusted-header behind a proxy"
        )
    if roles is not None and not roles.is_file():
        raise fail(f"--roles {roles}: no such file")
    if not warehouse.is_file():
        console.print(f"[yellow]note:[/yellow] {warehouse} does not exist yet; the pages say so")
    env = os.environ | {"DISTILLGUARD_WAREHOUSE": str(warehouse.resolve())}
    if roles is not None:
        env["DISTILLGUARD_ROLES"] = str(roles.resolve())
    if trusted_header:
        env["DISTILLGUARD_TRUSTED_HEADER"] = trusted_header
    if read_only:
        env["DISTILLGUARD_ROLE"] = "viewer"
    command = [
        sys.executable, "-m", "streamlit", "run", str(files("dashboards") / "app.py"),
        "--server.address", address, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]  # fmt: skip
    console.print(f"Dashboard on http://{address}:{port} (Ctrl-C stops it)")
    sys.stdout.flush()
    # become the server: signals (Ctrl-C, a supervisor's SIGTERM) reach Streamlit itself
    os.execve(sys.executable, command, env)


@app.command()
def alerts(
    config: Annotated[
        Path, typer.Option(help="Webhook config (TOML); secrets from the environment")
    ],
    warehouse: Annotated[Path, typer.Option(help="DuckDB warehouse file")] = Path(
        "warehouse.duckdb"
    ),
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
    sent = _deliver(warehouse, endpoints)
    Console().print(
        f"alerts: {sent.delivered} delivered, {sent.retried} to retry, {sent.failed} failed"
        + (f", disabled: {', '.join(sent.disabled)}" if sent.disabled else "")
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
    """The main job on built-in demo data: simulate -> ingest -> features -> link -> score ->
    nightly (three nights into OUT/warehouse.duckdb, exported to OUT/warehouse/)."""
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
    scores_dir = out / "scores"
    score(
        requests=[world_dir / "requests.parquet"],
        out=scores_dir,
        accounts=[world_dir / "accounts.parquet"],
        model=None,
        date=None,
        window=None,
    )
    scored = pl.read_parquet(scores_dir / "account_scores.parquet").join(labels, on="account_id")
    campaigns = pl.read_parquet(scores_dir / "campaigns.parquet")
    with pl.Config(
        tbl_rows=-1, tbl_width_chars=200, fmt_str_lengths=160, tbl_hide_dataframe_shape=True
    ):
        print("\nFlagged accounts per archetype (shipped model):")
        print(
            scored.group_by("archetype")
            .agg(pl.len().alias("accounts"), pl.col("flagged").sum().alias("flagged"))
            .sort("archetype")
        )
        print("\nCampaigns, with the first reason of each:")
        print(
            campaigns.select(
                "campaign_id",
                pl.col("score").round(3),
                "n_accounts",
                "n_flagged",
                pl.col("reasons").list.first().alias("first_reason"),
            )
        )
    # the nightly job over the last three simulated days, into the warehouse the dashboard reads
    warehouse_path = out / "warehouse.duckdb"
    warehouse_path.unlink(missing_ok=True)
    first_night = (config.start + timedelta(days=max(days - 3, 0))).date().isoformat()
    print()
    nightly(
        store=store_path,
        date=first_night,
        warehouse=warehouse_path,
        until=last_day,
        window_days=7,
        model=None,
        alerts=None,
        export=out / "warehouse",
    )


def main() -> None:  # pragma: no cover - console entry for `python -m detector.cli`
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
