"""`distillguard score` and `train`: the contract's batch commands, on log files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from detector.cli import (
    ModelOption,
    RulesOption,
    app,
    console,
    fail,
    load_rules,
    parse_window,
    progress_bar,
    require_store,
)

RequestsOption = Annotated[
    list[Path], typer.Option("--requests", help="Request logs: Parquet/JSONL file or folder")
]
AccountsOption = Annotated[
    list[Path] | None, typer.Option("--accounts", help="Accounts table: Parquet/JSONL")
]


def load_logs(requests: list[Path], accounts: list[Path] | None, store: Path):
    """Ingest score/train inputs into a private store; exit 2 on unreadable or unusable input."""
    from detector.pipeline.logs import load_logs as ingest_logs
    from features import sources
    from features.store import first_quarantine_reason

    paths = [*requests, *(accounts or [])]
    try:
        total = sum(sources.file_size(p) for p in sources.list_files(paths))
        with progress_bar() as progress:
            task = progress.add_task("read logs", total=total)
            counts = ingest_logs(
                requests, accounts or [], store, lambda n: progress.advance(task, n)
            )
    except (ValueError, sources.SourceError) as exc:
        raise fail(str(exc)) from exc
    req = counts["requests"]
    if req.stored + req.duplicates == 0:
        raise fail(
            f"no usable request rows in {', '.join(map(str, requests))}: "
            f"{req.quarantined} of {req.read} rejected ({first_quarantine_reason(store)})"
        )
    return counts


def featurise(store: Path, win):
    """Features, links and clusters of a window of the private store, with a progress bar."""
    from detector.pipeline.featurise import featurise as featurise_window
    from features import pipeline

    with progress_bar(rows=True) as progress:
        task = progress.add_task(
            f"features {win.dates[0]}..{win.end}", total=pipeline.count_rows(store, win)
        )
        data = featurise_window(store, win, lambda n: progress.advance(task, n))
    if data is None:
        raise fail(f"no requests between {win.dates[0]} and {win.end}")
    return data


@app.command()
def score(
    out: Annotated[Path, typer.Option(help="Folder for account_scores.parquet, campaigns.parquet")],
    requests: Annotated[
        list[Path] | None,
        typer.Option("--requests", help="Request logs: Parquet/JSONL file or folder"),
    ] = None,
    accounts: AccountsOption = None,
    store: Annotated[
        Path | None,
        typer.Option(help="A store `ingest` wrote, instead of --requests (no re-ingest)"),
    ] = None,
    model: ModelOption = None,
    date: Annotated[
        str | None, typer.Option(help="Last day to score (default: last in logs)")
    ] = None,
    window: Annotated[str | None, typer.Option(help="Window, e.g. 7d (default: all days)")] = None,
    rules_dir: RulesOption = None,
) -> None:
    """Score every account in request logs; group flagged accounts into campaigns, with reasons.

    With --store, the logs are read from a store `ingest` already wrote: nothing is ingested
    again, and signals cached in the store by earlier runs (nightly, features) are reused."""
    from detector.model import artifact
    from detector.pipeline import scoring
    from features.store import export_quarantine, private_store

    if (store is None) == (not requests):
        raise fail("give either --requests (log files) or --store (a store `ingest` wrote)")
    if store is not None and accounts:
        raise fail("--accounts goes with --requests; a store holds its own accounts table")
    try:
        fitted, meta = artifact.load(model)
    except artifact.ModelError as exc:
        raise fail(str(exc)) from exc
    ruleset = load_rules(rules_dir)
    if store is not None:
        require_store(store)
        data, scored = _score_store(store, fitted, ruleset, date, window, out)
        (out / "quarantine.parquet").unlink(missing_ok=True)  # this run rejected nothing
        read = f"{data.n_requests:,} requests in store {store}"
        skipped = "Nothing re-ingested (the store's own quarantine is in its quarantine/ folder)"
    else:
        with private_store("distillguard-score-") as private:
            counts = load_logs(requests, accounts, private)
            data, scored = _score_store(private, fitted, ruleset, date, window, out)
            rejected = export_quarantine(private, out / "quarantine.parquet")
        req = counts["requests"]
        read = f"{req.stored:,} requests"
        skipped = f"{req.duplicates:,} duplicate and {rejected:,} rejected row(s) skipped" + (
            f" (reasons in {out / 'quarantine.parquet'})" if rejected else ""
        )
    n_flagged = int(scored.accounts["flagged"].sum())
    n_review = int((scored.accounts["status"] == "review").sum())
    n_shadow = int((scored.rule_hits["mode"] == "shadow").sum())
    Console(soft_wrap=True).print(
        f"Scored {scored.accounts.height:,} accounts from {read} "
        f"({data.window.dates[0]}..{data.window.end}) with model {model or 'shipped default'} "
        f"(threshold {fitted.threshold:.3f}, {meta['config']['fpr_budget']:.2%} legitimate FPR "
        f"budget): {n_flagged:,} flagged, {n_review:,} held for review, "
        f"{scored.campaigns.height:,} campaign(s) over {scored.cells.height:,} cell(s), "
        f"{n_shadow:,} shadow rule hit(s). "
        f"{skipped}. Wrote {out}/account_scores.parquet, campaigns.parquet, "
        "campaign_cells.parquet and rule_hits.parquet."
    )
    warning = scoring.traffic_warning(fitted, scored.accounts)
    if warning:
        console.print(f"[yellow]warning:[/yellow] {warning}")


def _score_store(store: Path, fitted, ruleset, date: str | None, window: str | None, out: Path):
    """Featurise the window of `store` (all of it unless --date/--window), score it and write
    the three result files to `out`."""
    from detector.pipeline import featurise as featurise_mod
    from detector.pipeline import scoring
    from features.timing import stage

    whole = featurise_mod.span(store)
    if whole is None:
        raise fail(f"{store}: the store holds no requests")
    win = (
        whole
        if date is None and window is None
        else parse_window(date or whole.end, window or f"{whole.days}d")
    )
    data = featurise(store, win)
    with console.status(f"scoring {data.features.height:,} accounts"):
        scored = scoring.score_data(fitted, data, ruleset=ruleset)
    with stage("write results"):
        out.mkdir(parents=True, exist_ok=True)
        scored.accounts.write_parquet(out / "account_scores.parquet")
        scored.campaigns.write_parquet(out / "campaigns.parquet")
        scored.rule_hits.write_parquet(out / "rule_hits.parquet")
        scored.cells.write_parquet(out / "campaign_cells.parquet")
    return data, scored


@app.command()
def train(
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
    views: Annotated[
        bool,
        typer.Option(
            help="Per-view heads whose agreement a flag needs (what it asks, how it uses the "
            "API, who it is); without them the network alone flags"
        ),
    ] = True,
    view_budget: Annotated[
        float, typer.Option(help="Share of legitimate accounts each view may find suspicious")
    ] = 0.05,
) -> None:
    """Train a model on your own labelled traffic (past enforcement, analyst verdicts)."""
    from detector.model import artifact
    from detector.model.config import Optimiser, TrainConfig
    from detector.pipeline import training
    from detector.pipeline.featurise import span
    from detector.pipeline.logs import read_labels
    from features.store import private_store

    try:
        cfg = TrainConfig(
            optimiser=Optimiser(max_epochs=epochs, seed=seed),
            fpr_budget=fpr_budget,
            views=views,
            view_budget=view_budget,
            device=device,
        )
        given = read_labels(labels)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    with private_store("distillguard-train-") as store:
        load_logs(requests, accounts, store)
        windows = [featurise(store, w) for w in training.training_windows(span(store))]
    try:
        with progress_bar(rows=True) as progress:
            task = progress.add_task("train (epochs)", total=epochs)
            fitted, info = training.fit_on_labels(
                windows, given.table, cfg, lambda e, row: progress.update(task, completed=e + 1)
            )
    except ValueError as exc:
        raise fail(str(exc)) from exc
    artifact.save(
        fitted, model_out, info | {"requests": [str(p) for p in requests], "labels": str(labels)}
    )
    v = fitted.validation
    skipped = given.summary()
    Console().print(
        f"Trained on {info['accounts']:,} labelled accounts ({info['positives']:,} campaign) over "
        f"{len(windows)} window(s), {len(fitted.history)} epochs on {info['device']}"
        + (f" ({skipped})" if skipped else "")
        + f". Validation (held-out clusters): AP {v['average_precision']:.3f}, recall "
        f"{v['recall_at_threshold']:.1%} at FPR {v['fpr_at_threshold']:.2%} (threshold "
        f"{fitted.threshold:.3f})"
        + (
            f"; {v['recall_held']:.1%} of campaign accounts held for review by the view gate"
            if v.get("recall_held")
            else ""
        )
        + f". Wrote {model_out}/ (use it with `score --model {model_out}`)."
    )
