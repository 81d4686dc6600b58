"""`distillguard features` and `link`: per-account features, typed links and clusters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console

from detector.cli import (
    DateOption,
    EngineOption,
    SparkMasterOption,
    StoreOption,
    WindowOption,
    app,
    console,
    fail,
    parse_window,
    progress_bar,
    spark_for,
    store_window,
)


@app.command()
def features(
    store: Annotated[
        str | None,
        typer.Option(help="Store written by `ingest` (folder; with --engine spark any URI)"),
    ] = None,
    date: Annotated[
        str | None, typer.Option(help="Last day of the window, YYYY-MM-DD (UTC)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output file: .parquet or .csv (.md with --dictionary)")
    ] = None,
    window: WindowOption = "7d",
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = "local[*]",
    dictionary: Annotated[
        bool, typer.Option(help="Print the data dictionary (data/FEATURES.md) instead, or --out")
    ] = False,
) -> None:
    """Per-account features over a window ending on a date, for analysts and models."""
    if dictionary:
        _write_dictionary(out)
        return
    if store is None or date is None or out is None:
        raise fail("--store, --date and --out are required (or --dictionary)")
    if out.suffix not in (".parquet", ".csv"):
        raise fail(f"--out must end in .parquet or .csv, got {out.name!r}")
    win = parse_window(date, window)  # checked before Spark takes its seconds to start
    session = spark_for(engine, spark_master)
    if session is not None:
        from features import spark as spark_engine

        with console.status("features on Spark"):
            frame = spark_engine.features(session, store, win)
        total = int(frame["n_requests"].sum()) if frame.height else 0
    else:
        from features import pipeline

        store_window(Path(store), date, window)
        total = pipeline.count_rows(Path(store), win)
        with progress_bar(rows=True) as progress:
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


def _write_dictionary(out: Path | None) -> None:
    from detector.model.graph import STRUCTURE_MEANING
    from features.registry import markdown
    from features.version import FEATURE_SET

    text = markdown(FEATURE_SET, STRUCTURE_MEANING)
    if out is None:
        print(text, end="")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    Console().print(f"Wrote the data dictionary ({FEATURE_SET}) to {out}.")


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
    from detector.linking import ClusterConfig
    from detector.pipeline.featurise import featurise
    from features import pipeline

    win = store_window(store, date, window)
    try:
        cluster_cfg = ClusterConfig(resolution=resolution)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    with progress_bar(rows=True) as progress:
        task = progress.add_task("signals", total=pipeline.count_rows(store, win))
        data = featurise(store, win, lambda n: progress.advance(task, n), cluster_cfg=cluster_cfg)
    if data is None:
        raise fail(f"no requests in {store} between {win.dates[0]} and {win.end}", 99)
    out.mkdir(parents=True, exist_ok=True)
    data.edges.write_parquet(out / "edges.parquet")
    data.clusters.members.write_parquet(out / "clusters.parquet")
    data.clusters.evidence.write_parquet(out / "evidence.parquet")
    sizes = data.clusters.members.filter(pl.col("cluster").is_not_null())
    Console().print(
        f"Linked {data.features.height:,} accounts with {data.edges.height:,} typed edges into "
        f"{sizes['cluster'].n_unique():,} clusters ({sizes.height:,} accounts clustered) "
        f"for {win.dates[0]}..{win.end}; wrote {out}/edges, clusters, evidence.parquet."
    )
