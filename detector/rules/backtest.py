"""Run every rule over a store's history, night by night, as the nightly job would have.

For each night the window ending on it is featurised and scored with every rule in shadow, so
each rule is measured alone and the model's flags are the model's: per rule and night, the hits,
the hits among labelled campaign and legitimate accounts, precision among the labelled, and the
share of hits the model flagged too (for a campaign rule: hit clusters holding a flagged
account). A campaign is labelled by the majority of its labelled members. `campaign_history`
rules see the campaigns the rules in force would have reported, matched night to night as the
warehouse matches them; no analyst verdicts exist in a backtest, so none counts as dismissed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from detector import rules, warehouse
from detector.model.train import Fitted
from detector.pipeline import featurise, scoring
from features import pipeline

NIGHTS = {
    "night": pl.Date,
    "rule_id": pl.String,
    "rule_version": pl.Int64,
    "mode": pl.String,
    "hits": pl.Int64,
    "hits_campaign": pl.Int64,
    "hits_legit": pl.Int64,
    "precision": pl.Float64,
    "model_overlap": pl.Float64,
}
"""One row per night and rule (the mode is the rule's mode in force, not the backtest's)."""


@dataclass(frozen=True)
class Backtest:
    nights: pl.DataFrame  # NIGHTS
    hits: pl.DataFrame  # night + rules.HITS


def run(
    store: Path,
    first: date,
    last: date,
    fitted: Fitted,
    ruleset: rules.RuleSet,
    window_days: int = 7,
    labels: pl.DataFrame | None = None,
    progress: Callable[[date], None] | None = None,
) -> Backtest:
    """Backtest `ruleset` on every night from `first` to `last` (nights without requests are
    skipped). `labels`: account_id, label (1 campaign, 0 legitimate)."""
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    shadow = ruleset.with_modes({r.id: "shadow" for r in ruleset.rules})
    label_of = {} if labels is None else dict(labels.select("account_id", "label").iter_rows())
    rows, all_hits = [], []
    previous = pl.DataFrame(schema={"campaign_id": pl.String, "account_id": pl.String})
    day = first
    while day <= last:
        data = featurise.featurise(store, pipeline.Window(day, window_days))
        if data is not None:
            scored = scoring.score_data(fitted, data, explain_flagged=False, ruleset=shadow)
            members = _cluster_members(data.clusters.members)
            reported = _reported(scored.rule_hits, ruleset, members)
            history, previous = _history(shadow, reported, previous)
            hits = pl.concat([scored.rule_hits, history])
            flagged = set(scored.accounts.filter("flagged")["account_id"].to_list())
            rows += _night_rows(day, hits, ruleset, members, label_of, flagged)
            all_hits.append(hits.with_columns(pl.lit(day).alias("night")))
        if progress is not None:
            progress(day)
        day += timedelta(days=1)
    hits = (
        pl.concat(all_hits).select("night", *rules.HITS)
        if all_hits
        else pl.DataFrame(schema={"night": pl.Date, **rules.HITS})
    )
    return Backtest(pl.DataFrame(rows, schema=NIGHTS, orient="row"), hits)


def _cluster_members(members: pl.DataFrame) -> pl.DataFrame:
    """campaign_id (as scoring names a reported cluster), account_id of every cluster."""
    ids = (
        members.group_by("cluster")
        .agg(pl.col("account_id"))
        .with_columns(
            pl.col("account_id")
            .map_elements(scoring.campaign_id, return_dtype=pl.String)
            .alias("campaign_id")
        )
    )
    return ids.explode("account_id").select("campaign_id", "account_id")


def _reported(hits: pl.DataFrame, ruleset: rules.RuleSet, members: pl.DataFrame):
    """Members of tonight's reported campaigns: the clusters the rules in force would report."""
    enforced = sorted(
        r.id
        for r in ruleset.rules
        if r.table in ("clusters", "cluster_surges") and ruleset.mode(r) == "enforce"
    )
    ids = hits.filter(pl.col("rule_id").is_in(enforced))["subject_id"].unique()
    return members.filter(pl.col("campaign_id").is_in(ids.to_list()))


def _history(shadow: rules.RuleSet, now: pl.DataFrame, previous: pl.DataFrame):
    """The `campaign_history` hits of tonight (under tonight's ids) and tonight's members under
    the ids kept across nights (the next night's `previous`)."""
    mapping = warehouse.match_ids(now, previous)
    renamed = now.with_columns(pl.col("campaign_id").replace(mapping))
    known = dict(previous.group_by("campaign_id").len().iter_rows())
    sizes = renamed.group_by("campaign_id").len().rename({"len": "n_accounts"})
    history = rules.tables.campaign_history(sizes, known, set())
    back = {v: k for k, v in mapping.items()}  # report hits under tonight's ids
    hits = shadow.run("campaign_history", history).with_columns(pl.col("subject_id").replace(back))
    return hits, renamed


def _night_rows(day, hits, ruleset, members, label_of, flagged) -> list[tuple]:
    """One NIGHTS row per rule (zero hits included)."""
    by_campaign = members.group_by("campaign_id").agg(pl.col("account_id"))
    member_map = dict(by_campaign.iter_rows())
    rows = []
    for rule in ruleset.rules:
        subjects = hits.filter(pl.col("rule_id") == rule.id)["subject_id"].to_list()
        labelled, overlap = [], 0
        for subject in subjects:
            if rule.subject == "account":
                labelled.append(label_of.get(subject))
                overlap += subject in flagged
            else:
                accounts = member_map.get(subject, [])
                known = [label_of[a] for a in accounts if a in label_of]
                labelled.append(None if not known else int(2 * sum(known) >= len(known)))
                overlap += any(a in flagged for a in accounts)
        pos = sum(1 for v in labelled if v == 1)
        neg = sum(1 for v in labelled if v == 0)
        rows.append(
            (
                day,
                rule.id,
                rule.version,
                ruleset.mode(rule),
                len(subjects),
                pos,
                neg,
                pos / (pos + neg) if pos + neg else None,
                overlap / len(subjects) if subjects else None,
            )
        )
    return rows


def totals(nights: pl.DataFrame) -> pl.DataFrame:
    """Per rule over every night: hits, labelled hits, precision, model overlap."""
    return (
        nights.group_by("rule_id", "rule_version", "mode", maintain_order=True)
        .agg(
            pl.col("hits").sum(),
            pl.col("hits_campaign").sum(),
            pl.col("hits_legit").sum(),
            (pl.col("model_overlap") * pl.col("hits")).sum().alias("overlapping"),
        )
        .with_columns(
            _share(pl.col("hits_campaign"), pl.col("hits_campaign") + pl.col("hits_legit")).alias(
                "precision"
            ),
            _share(pl.col("overlapping"), pl.col("hits")).alias("model_overlap"),
        )
        .drop("overlapping")
        .sort("rule_id")
    )


def _share(part: pl.Expr, whole: pl.Expr) -> pl.Expr:
    """part / whole, null where whole is 0."""
    return pl.when(whole > 0).then(part / whole)


def save(result: Backtest, out: Path) -> list[Path]:
    """OUT/rule_backtest.parquet (per night and rule), OUT/rule_backtest_hits.parquet (every
    hit) and OUT/rule_backtest.png (hits per night)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "rule_backtest.parquet", out / "rule_backtest_hits.parquet"]
    result.nights.write_parquet(paths[0])
    result.hits.write_parquet(paths[1])
    from matplotlib import dates as mdates

    fig, ax = plt.subplots(figsize=(10, 4.5))
    for rule_id, frame in result.nights.group_by("rule_id", maintain_order=True):
        ax.plot(frame["night"].to_list(), frame["hits"].to_list(), marker="o", label=rule_id[0])
    if result.nights.is_empty():
        ax.text(0.5, 0.5, "no nights with requests", ha="center", transform=ax.transAxes)
    ax.set_xlabel("night")
    ax.set_ylabel("hits")
    ax.set_title("Rule hits per night (backtest)")
    if not result.nights.is_empty():
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    ax.xaxis.set_major_locator(mdates.DayLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
    ax.set_ylim(bottom=0)
    fig.tight_layout()
    fig.savefig(out / "rule_backtest.png", dpi=110)
    plt.close(fig)
    return [*paths, out / "rule_backtest.png"]


def record(path: Path, result: Backtest) -> None:
    """Replace the backtest rows of these nights and rules in the warehouse (the dashboard's
    Rules page reads them)."""
    from datetime import UTC, datetime

    with warehouse.locked(path):
        con = warehouse.open_waiting(path, read_only=False, wait_s=120)
        try:
            con.execute("BEGIN TRANSACTION")
            frame = result.nights.with_columns(pl.lit(datetime.now(UTC)).alias("backtested_at"))
            con.register("incoming", frame.to_arrow())
            con.execute(
                "DELETE FROM rule_backtest USING incoming WHERE rule_backtest.night = "
                "incoming.night AND rule_backtest.rule_id = incoming.rule_id"
            )
            con.execute("INSERT INTO rule_backtest BY NAME SELECT * FROM incoming")
            con.unregister("incoming")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()
