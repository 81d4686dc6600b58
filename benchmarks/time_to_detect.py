"""Time to detect: the hourly job against the nightly cadence, on worlds where each campaign
starts at a random hour.

    python -m benchmarks.time_to_detect [--accounts 600] [--days 8] [--seeds 1,2,3,4]
        [--scenarios default,evasive] [--out docs/evaluation/time_to_detect]

For each world, every campaign's requests before a start drawn uniformly in [day 2, day 5) are
dropped, so it starts at a random hour; the store is ingested and `hourly.run_hour` scores the
trailing 7-day window at every hour from day 2 to the world's end with the shipped model (the
window ends at the hour, and each model's release time is only what the store shows before it,
so no run sees the future). A window ending at midnight is exactly the nightly job's window for
the day before, so the nightly cadence is read from the same runs.

Per planted campaign: detection = the first run in which a reported campaign holds at least two
of its members (its `campaign.detected` is raised at that run or earlier); time to detect = that
run's hour minus the campaign's first request. The pivot: the first request of its members to
the newest model; pivot alert = the first run at or after it in which `model_release_surge`
fires, enforced, on a campaign holding its members. False positives: legitimate accounts flagged
in any run, hourly against midnight runs only (the nightly cadence alerts each of them), and
those the hourly job alerted (`account.flagged` needs two runs in a row to agree).

Our own simulator: the figures are optimistic (BENCHMARKS.md says why).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from rich.progress import Progress

from detector import hourly
from detector.simulate import scenario, simulate
from features import ingest

FIRST_DAY, LAST_START_DAY = 2, 5


def planted(world, rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The world's requests with each campaign starting at a random hour and pivoting to the
    newest model as the reports describe (half its traffic, from one moment, between 1 and 20
    hours after the release; the simulator's own adoption is gradual, account by account), and
    per campaign its first request and its pivot (null when it had run under 6 h by then)."""
    start = world.config.start
    campaigns = world.labels.filter(pl.col("label") == 1).select("account_id", "campaign")
    names = sorted(campaigns["campaign"].unique().to_list())
    firsts = world.requests.group_by("request_model").agg(pl.col("ts").min()).sort("ts")
    newest, released = firsts["request_model"][-1], firsts["ts"][-1]
    previous = firsts["request_model"][-2]
    plan = pl.DataFrame(
        {
            "campaign": names,
            "cut": [
                start + timedelta(hours=float(h))
                for h in rng.uniform(FIRST_DAY * 24, LAST_START_DAY * 24, len(names))
            ],
            "pivot_at": [
                released + timedelta(hours=float(h)) for h in rng.uniform(1, 20, len(names))
            ],
        }
    ).with_columns(pl.col("cut", "pivot_at").dt.cast_time_unit("us"))
    requests = (
        world.requests.join(campaigns, on="account_id", how="left")
        .join(plan, on="campaign", how="left")
        .filter(pl.col("cut").is_null() | (pl.col("ts") >= pl.col("cut")))
    )
    coin = pl.Series("coin", rng.random(requests.height))
    moved = pl.col("campaign").is_not_null() & (pl.col("ts") >= pl.col("pivot_at")) & (coin < 0.5)
    requests = requests.with_columns(
        pl.when(pl.col("campaign").is_null())
        .then(pl.col("request_model"))
        .when(moved)
        .then(pl.lit(newest))
        .when(pl.col("request_model") == newest)
        .then(pl.lit(previous))
        .otherwise(pl.col("request_model"))
        .alias("request_model")
    )
    truth = (
        requests.filter(pl.col("campaign").is_not_null())
        .group_by("campaign")
        .agg(
            pl.col("ts").min().alias("started"),
            pl.col("ts").filter(pl.col("request_model") == newest).min().alias("pivot"),
        )
        .with_columns(
            pl.when(pl.col("pivot") > pl.col("started") + timedelta(hours=6))
            .then(pl.col("pivot"))
            .alias("pivot")
        )
    )
    return requests.drop("campaign", "cut", "pivot_at"), truth


def run_world(name: str, seed: int, accounts: int, days: int, progress: Progress) -> dict:
    world = simulate(scenario(name, accounts=accounts, days=days, seed=seed))
    requests, truth = planted(world, np.random.default_rng(seed))
    labels = world.labels.select("account_id", "label", "campaign")
    with tempfile.TemporaryDirectory(prefix="ttd-") as tmp:
        root = Path(tmp)
        requests.write_parquet(root / "requests.parquet")
        world.accounts.write_parquet(root / "accounts.parquet")
        ingest.run([root / "requests.parquet"], root / "store")
        ingest.run([root / "accounts.parquet"], root / "store", ingest.Options(table="accounts"))
        warehouse = root / "w.duckdb"
        hours = [
            world.config.start + timedelta(hours=h)
            for h in range(FIRST_DAY * 24 + 1, days * 24 + 1)
        ]
        task = progress.add_task(f"{name} seed {seed}", total=len(hours))
        for at in hours:
            hourly.run_hour(root / "store", at, warehouse)
            progress.advance(task)
        progress.remove_task(task)
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            members = pl.from_arrow(
                con.sql("SELECT hour, campaign_id, account_id FROM hourly_members").to_arrow_table()
            )
            flagged = pl.from_arrow(
                con.sql("SELECT hour, account_id FROM hourly_scores WHERE flagged").to_arrow_table()
            )
            alerted = pl.from_arrow(
                con.sql(
                    "SELECT subject_id AS account_id FROM alert_events "
                    "WHERE type = 'account.flagged'"
                ).to_arrow_table()
            )
            surges = pl.from_arrow(
                con.sql(
                    "SELECT hour, subject_id AS campaign_id FROM hourly_rule_hits "
                    "WHERE rule_id = 'model_release_surge' AND mode = 'enforce'"
                ).to_arrow_table()
            )
        finally:
            con.close()
    utc = pl.col("hour").dt.convert_time_zone("UTC")
    members, flagged, surges = (f.with_columns(utc) for f in (members, flagged, surges))
    return measure(name, seed, truth, labels, members, flagged, surges, alerted)


def measure(name, seed, truth, labels, members, flagged, surges, alerted) -> dict:
    """Per planted campaign: hours to detection (hourly, nightly) and to the pivot alert; and
    the legitimate accounts flagged by each cadence."""
    held = (
        members.join(labels, on="account_id")
        .filter(pl.col("label") == 1)
        .group_by("hour", "campaign_id", "campaign")
        .len()
        .filter(pl.col("len") >= 2)
    )
    midnight = pl.col("hour").dt.hour() == 0
    rows = []
    for t in truth.iter_rows(named=True):
        mine = held.filter(pl.col("campaign") == t["campaign"])
        first_hour = mine["hour"].min()
        first_night = mine.filter(midnight)["hour"].min()
        pivot_alert = None
        if t["pivot"] is not None:
            fired = mine.join(surges, on=["hour", "campaign_id"]).filter(
                pl.col("hour") >= t["pivot"]
            )
            pivot_alert = fired["hour"].min()

        def hours(at, since):
            return None if at is None or since is None else (at - since).total_seconds() / 3600

        rows.append(
            {
                "scenario": name,
                "seed": seed,
                "campaign": t["campaign"],
                "started": str(t["started"]),
                "hourly_h": hours(first_hour, t["started"]),
                "nightly_h": hours(first_night, t["started"]),
                "pivot_alert_h": hours(pivot_alert, t["pivot"]),
                "pivot": t["pivot"] is not None,
            }
        )
    legit = labels.filter(pl.col("label") == 0)
    wrong = flagged.join(legit, on="account_id")
    return {
        "campaigns": rows,
        "legit_accounts": legit.height,
        "legit_flagged_hourly": wrong["account_id"].n_unique(),
        "legit_flagged_nightly": wrong.filter(midnight)["account_id"].n_unique(),
        "legit_alerted_hourly": alerted.join(legit, on="account_id")["account_id"].n_unique(),
    }


def summary(results: list[dict]) -> tuple[str, pl.DataFrame]:
    frame = pl.DataFrame([r for w in results for r in w["campaigns"]])

    def stats(col: str):
        return [
            pl.col(col).is_not_null().sum().alias(f"{col}_n"),
            pl.col(col).median().alias(f"{col}_median"),
            pl.col(col).quantile(0.9, "higher").alias(f"{col}_p90"),
        ]

    per_type = (
        frame.group_by("campaign")
        .agg(pl.len().alias("planted"), *stats("hourly_h"), *stats("nightly_h"))
        .sort("campaign")
    )
    overall = frame.select(
        pl.lit("all").alias("campaign"),
        pl.len().alias("planted"),
        *stats("hourly_h"),
        *stats("nightly_h"),
    )
    table = pl.concat([per_type, overall.cast(per_type.schema)])

    def fmt(v):
        return "-" if v is None else f"{v:.1f}"

    lines = [
        "| campaign type | planted | detected hourly | median h | p90 h | detected nightly "
        "| median h | p90 h |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in table.iter_rows(named=True):
        lines.append(
            f"| {r['campaign']} | {r['planted']} | {r['hourly_h_n']} | "
            f"{fmt(r['hourly_h_median'])} | {fmt(r['hourly_h_p90'])} | {r['nightly_h_n']} | "
            f"{fmt(r['nightly_h_median'])} | {fmt(r['nightly_h_p90'])} |"
        )
    pivots = frame.filter("pivot")
    alerted = pivots["pivot_alert_h"].drop_nulls()
    lines.append("")
    lines.append(
        f"Pivots to the new model (campaigns that had run at least 6 h before it): "
        f"{pivots.height}; alerted by `model_release_surge`: {alerted.len()}"
        + (
            f", median {alerted.median():.1f} h, p90 {alerted.quantile(0.9, 'higher'):.1f} h, "
            f"within 2 h: {(alerted <= 2).sum()}"
            if alerted.len()
            else ""
        )
        + "."
    )
    legit = sum(w["legit_accounts"] for w in results)
    hourly_fp = sum(w["legit_flagged_hourly"] for w in results)
    nightly_fp = sum(w["legit_flagged_nightly"] for w in results)
    alerted_fp = sum(w["legit_alerted_hourly"] for w in results)
    lines.append(
        f"Legitimate accounts flagged in any run: hourly {hourly_fp} of {legit} "
        f"({hourly_fp / legit:.2%}), midnight runs only (the nightly cadence, each one alerted) "
        f"{nightly_fp} ({nightly_fp / legit:.2%}). Alerted as `account.flagged` by the hourly "
        f"job (flagged by two runs in a row): {alerted_fp} ({alerted_fp / legit:.2%})."
    )
    return "\n".join(lines), frame


def plot(frame: pl.DataFrame, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for col, label in (("hourly_h", "hourly job"), ("nightly_h", "nightly job")):
        values = np.sort(frame[col].drop_nulls().to_numpy())
        share = np.arange(1, len(values) + 1) / frame.height
        ax.step(values, share, where="post", label=label)
    ax.axvline(6, color="grey", linestyle=":", linewidth=1)
    ax.axvline(24, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("hours from a campaign's first request to its detection")
    ax.set_ylabel("share of planted campaigns")
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right")
    ax.set_title("Time to detect (simulated worlds; optimistic)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=600)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--seeds", default="1,2,3,4")
    parser.add_argument("--scenarios", default="default,evasive")
    parser.add_argument("--out", type=Path, default=Path("docs/evaluation/time_to_detect"))
    args = parser.parse_args()
    results = []
    with Progress() as progress:
        for name in args.scenarios.split(","):
            for seed in [int(s) for s in args.seeds.split(",")]:
                results.append(run_world(name, seed, args.accounts, args.days, progress))
    text, frame = summary(results)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.write_csv(args.out / "per_campaign.csv")
    (args.out / "summary.md").write_text(text + "\n")
    (args.out / "worlds.json").write_text(
        json.dumps([{k: v for k, v in w.items() if k != "campaigns"} for w in results], indent=1)
    )
    plot(frame, args.out / "time_to_detect.png")


if __name__ == "__main__":
    main()
