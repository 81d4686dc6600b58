"""`distillguard rules list|test|backtest|mode`: detection as code (see `detector.rules`)."""

from __future__ import annotations

from datetime import date as Date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from detector.cli import ModelOption, RulesOption, app, fail, load_rules, require_store

rules_app = typer.Typer(
    help="Rules analysts write, test, backtest and run in shadow mode.", no_args_is_help=True
)
app.add_typer(rules_app, name="rules")

OptionalWarehouse = Annotated[
    Path | None, typer.Option("--warehouse", help="Warehouse whose analysts' rule modes apply")
]


def _modes(warehouse: Path | None) -> dict[str, str]:
    from detector import warehouse as wh

    return {} if warehouse is None else wh.rule_modes(warehouse)


@rules_app.command("list")
def list_rules(rules_dir: RulesOption = None, warehouse: OptionalWarehouse = None) -> None:
    """Every rule with its version, mode (an analyst's, else the file's), severity and table."""
    ruleset = load_rules(rules_dir, _modes(warehouse))
    table = Table(Column("id", no_wrap=True), "version", "mode", "severity", "table", "title")
    for rule in ruleset.rules:
        table.add_row(
            rule.id, str(rule.version), ruleset.mode(rule), rule.severity, rule.table, rule.title
        )
    Console().print(table)


@rules_app.command("test")
def test_rules(rules_dir: RulesOption = None) -> None:
    """Run every rule's cases and check its metadata; exit 1 listing every violation."""
    from detector import rules

    out = Console()
    try:
        ruleset = rules.load(rules_dir)
    except rules.RuleError as exc:  # files that cannot be used: each line names one
        for line in str(exc).splitlines():
            for problem in line.split("; "):
                out.print(f"[red]FAIL[/red] {problem}", highlight=False)
        raise fail("rule files failed to load", 1) from exc
    problems = rules.check_all(ruleset.rules)
    n_cases = sum(len(r.cases) for r in ruleset.rules)
    for problem in problems:
        out.print(f"[red]FAIL[/red] {problem}", highlight=False)
    if problems:
        raise fail(f"{len(problems)} violation(s) in {len(ruleset.rules)} rules", 1)
    out.print(f"{len(ruleset.rules)} rules, {n_cases} cases: all pass")


@rules_app.command("docs")
def docs(rules_dir: RulesOption = None) -> None:
    """Print the rules' documentation (docs/RULES.md is this output for the shipped rules)."""
    from detector.rules.docs import document

    typer.echo(document(load_rules(rules_dir).rules), nl=False)


@rules_app.command("mode")
def set_mode(
    rule_id: Annotated[str, typer.Argument(help="Rule id")],
    mode: Annotated[str, typer.Argument(help="enforce, shadow or off")],
    warehouse: Annotated[Path, typer.Option(help="DuckDB warehouse file")],
    analyst: Annotated[str, typer.Option(help="Who decides (written to the audit log)")],
    reason: Annotated[str, typer.Option(help="Why (written to the audit log)")],
    rules_dir: RulesOption = None,
) -> None:
    """Change a rule's mode for the nightly job: an analyst's decision, audit-logged."""
    from detector import decisions

    ruleset = load_rules(rules_dir)
    try:
        rule = ruleset.get(rule_id)
        decisions.set_rule_mode(warehouse, analyst, rule.id, mode, reason)
    except (KeyError, ValueError) as exc:
        raise fail(str(exc).strip("'\"")) from exc
    Console().print(f"{rule.id} v{rule.version}: {ruleset.mode(rule)} -> {mode}")


@rules_app.command("backtest")
def backtest(
    store: Annotated[Path, typer.Option(help="Store folder written by `ingest`")],
    first: Annotated[str, typer.Option("--from", help="First night, YYYY-MM-DD")],
    last: Annotated[str, typer.Option("--to", help="Last night, YYYY-MM-DD")],
    labels: Annotated[
        Path | None, typer.Option(help="Labels: account_id, label (1 campaign, 0 legit)")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the Parquet tables and the plot")] = Path(
        "backtest"
    ),
    window_days: Annotated[int, typer.Option(help="Days in each night's window")] = 7,
    model: ModelOption = None,
    rules_dir: RulesOption = None,
    warehouse: Annotated[
        Path | None,
        typer.Option(help="Warehouse: analysts' rule modes apply, results go to rule_backtest"),
    ] = None,
) -> None:
    """Run every rule over the store's nights: hits, labelled hits, precision, model overlap."""
    import plotext

    from detector.cli import progress_bar
    from detector.model import artifact
    from detector.pipeline.logs import read_labels
    from detector.rules import backtest as bt

    require_store(store)
    try:
        start, end = Date.fromisoformat(first), Date.fromisoformat(last)
        fitted, _ = artifact.load(model)
        given = None if labels is None else read_labels(labels).table
    except (ValueError, artifact.ModelError) as exc:
        raise fail(str(exc)) from exc
    if end < start or window_days < 1:
        raise fail("--to must not be before --from, and --window-days must be at least 1")
    ruleset = load_rules(rules_dir, _modes(warehouse))
    with progress_bar(rows=True) as progress:
        task = progress.add_task("backtest (nights)", total=(end - start).days + 1)
        result = bt.run(
            store, start, end, fitted, ruleset, window_days, given, lambda _: progress.advance(task)
        )
    paths = bt.save(result, out)
    if warehouse is not None:
        bt.record(warehouse, result)
    printer = Console(width=max(Console().width, 112))  # the table and plot stay whole in a log
    table = Table(
        *(
            Column(name, no_wrap=True)
            for name in ("rule", "version", "mode", "hits", "campaign", "legit", "precision")
        ),
        Column("model overlap", no_wrap=True),
        caption="hits are subject-nights; campaign / legit: hits on labelled subjects",
    )
    for row in bt.totals(result.nights).iter_rows(named=True):
        table.add_row(
            row["rule_id"],
            str(row["rule_version"]),
            row["mode"],
            f"{row['hits']:,}",
            f"{row['hits_campaign']:,}",
            f"{row['hits_legit']:,}",
            "-" if row["precision"] is None else f"{row['precision']:.1%}",
            "-" if row["model_overlap"] is None else f"{row['model_overlap']:.1%}",
        )
    printer.print(table)
    nights = result.nights
    if nights.height:
        plotext.clf()
        plotext.plotsize(min(110, printer.width), 22)
        plotext.title("hits per night")
        dates = [d.isoformat() for d in sorted(set(nights["night"].to_list()))]
        plotext.date_form("Y-m-d")
        for rule_id, frame in nights.group_by("rule_id", maintain_order=True):
            if frame["hits"].sum():
                plotext.plot(dates, frame["hits"].to_list(), label=rule_id[0], marker="braille")
        printer.print(Text.from_ansi(plotext.build()))
    printer.print(f"Wrote {', '.join(str(p) for p in paths)}.")
