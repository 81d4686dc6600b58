"""Run every evaluation protocol and write the figures behind BENCHMARKS.md.

    python -m research.report [--cache data/cache] [--out docs/evaluation] [--quick]

Protocols: held-out seeds (every baseline), leave one campaign type out, leave one evasion
tactic out, leave one legitimate archetype out (its false-positive rate), and train on one
scenario family / test on the other (`evaluate` and `experiments` say how each is cut).

Writes OUT/summary.csv (one row per protocol, split, detector and test window),
OUT/per_campaign.csv, OUT/false_positives.csv, OUT/lolo_legit.csv, OUT/first_flagged.csv,
OUT/REPORT.md (the same as markdown tables) and the plots OUT/pr_heldout.png and
OUT/scores_heldout.png. `--quick` runs the held-out protocol on small worlds only (minutes, for a
smoke run).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
from rich.console import Console

from detector import simulate as sim
from detector.pipeline.scoring import ACTIVITY, score_window
from detector.simulate.archetypes import LEGIT
from research import evaluate, experiments
from research.baselines import Torch
from research.worlds import DAY, WorldSpec, build_all, featurise

console = Console(stderr=True)
LOLO_DETECTORS = ("torch", "hgb", "blend")
"""Detectors compared in every leave-one-out and cross-family protocol (the candidates for the
shipped model); the held-out protocol runs every baseline."""


def heldout(cache, train, val, test, config=None):
    examples = [build_all(s, cache) for s in (train, val, test)]
    return evaluate.run_protocol(
        "heldout", "held-out seeds", *examples, config=config, progress=console.log
    )


def loto_campaigns(cache, train, val, test, config=None):
    tr, va, te = (build_all(s, cache) for s in (train, val, test))
    results = []
    for campaign in sim.CAMPAIGNS:
        res, _ = evaluate.run_protocol(
            "loto_campaign",
            f"without {campaign}",
            evaluate.drop_campaign(tr, campaign),
            evaluate.drop_campaign(va, campaign),
            [ex for ex in te if (ex.features["campaign"] == campaign).any()],
            focus=campaign,
            only=LOLO_DETECTORS,
            config=config,
            progress=console.log,
        )
        results.extend(res)
    return results


def loto_tactics(cache, train, val, tests, config=None):
    results = []
    for tactic, test in tests.items():
        res, _ = evaluate.run_protocol(
            "loto_tactic",
            f"without {tactic}",
            build_all(experiments.without_tactic(train, tactic), cache),
            build_all(experiments.without_tactic(val, tactic), cache),
            build_all([test], cache),
            only=LOLO_DETECTORS,
            config=config,
            progress=console.log,
        )
        results.extend(res)
    return results


def lolo_legit(cache, train, val, test, config=None, archetypes=None):
    """Leave one legitimate archetype out: its accounts are removed from every training and
    validation window; its false-positive rate is measured in the held-out test worlds."""
    tr, va, te = (build_all(s, cache) for s in (train, val, test))
    results = []
    for archetype in archetypes or [a.name for a in LEGIT]:
        res, _ = evaluate.run_protocol(
            "lolo_legit",
            f"without {archetype}",
            evaluate.drop_archetype(tr, archetype),
            evaluate.drop_archetype(va, archetype),
            te,
            focus_legit=archetype,
            only=LOLO_DETECTORS,
            config=config,
            progress=console.log,
        )
        results.extend(res)
    return results


def cross_family(cache, train, val, test, config=None):
    """Train and calibrate on one scenario family, test on the other (both directions)."""
    results = []
    for name, source, target in (
        ("plain -> evading", experiments.PLAIN, experiments.EVADING),
        ("evading -> plain", experiments.EVADING, experiments.PLAIN),
    ):
        res, _ = evaluate.run_protocol(
            "cross_family",
            name,
            build_all(experiments.family(train, source), cache),
            build_all(experiments.family(val, source), cache),
            build_all(experiments.family(test, target), cache),
            only=LOLO_DETECTORS,
            config=config,
            progress=console.log,
        )
        results.extend(res)
    return results


def first_flagged(model: Torch, spec: WorldSpec, window_days: int = 7) -> pl.DataFrame:
    """Per campaign: first day (from the world's start) on which a member is flagged, scoring a
    trailing window at the end of every day, as the nightly job would."""
    world = sim.simulate(spec.config())
    start = spec.config().start.timestamp()
    rows = []
    for day in range(1, spec.days + 1):
        end = start + day * DAY
        ex = featurise(
            world.requests, world.accounts, world.labels, end, min(day, window_days), spec.name
        )
        activity = pl.DataFrame(schema=ACTIVITY)
        scored = score_window(
            model.fitted, ex.features, ex.edges, ex.members, ex.evidence, activity, False
        )
        flagged = scored.accounts.filter("flagged").join(world.labels, on="account_id")
        for campaign, n in flagged.group_by("campaign").len().iter_rows():
            rows.append({"day": day, "campaign": campaign or "(legitimate)", "flagged": n})
    frame = pl.DataFrame(rows, schema={"day": pl.Int64, "campaign": pl.String, "flagged": pl.Int64})
    firsts = frame.group_by("campaign").agg(
        pl.col("day").min().alias("first_flagged_day"),
        pl.col("flagged").max().alias("most_flagged_in_a_day"),
    )
    release = spec.config().release_day
    return firsts.with_columns(pl.lit(release).alias("new_model_release_day")).sort("campaign")


def write(results: list[evaluate.Result], firsts: pl.DataFrame | None, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    summary = evaluate.summary_table(results)
    summary.write_csv(out / "summary.csv")
    campaign = evaluate.per_campaign_recall([r for r in results if r.protocol == "heldout"])
    campaign.write_csv(out / "per_campaign.csv")
    fps = evaluate.false_positives_by_archetype([r for r in results if r.protocol == "heldout"])
    fps.write_csv(out / "false_positives.csv")
    held = [r for r in results if r.protocol == "heldout"]
    evaluate.pr_curves(held).savefig(out / "pr_heldout.png", dpi=120)
    evaluate.score_distributions(held).savefig(out / "scores_heldout.png", dpi=120)
    sections = [
        "# Evaluation report\n\nGenerated by `python -m research.report`; see BENCHMARKS.md.",
        "## By protocol (means over test windows; false positives and held summed)\n\n"
        + _markdown(evaluate.protocol_table(summary)),
        "## Summary (per test window)\n\n" + _markdown(summary.drop("accounts")),
        "## Per-campaign recall at the operating threshold (held-out)\n\n" + _markdown(campaign),
        "## False positives per legitimate archetype (held-out)\n\n"
        + _markdown(fps.filter(pl.col("false_positives") > 0)),
    ]
    lolo = [r for r in results if r.protocol == "lolo_legit"]
    if lolo:
        table = lolo_table(lolo)
        table.write_csv(out / "lolo_legit.csv")
        sections.append(
            "## Leave one legitimate archetype out: its false-positive rate\n\n" + _markdown(table)
        )
    if firsts is not None:
        firsts.write_csv(out / "first_flagged.csv")
        sections.append("## First day each campaign is flagged\n\n" + _markdown(firsts))
    (out / "REPORT.md").write_text("\n\n".join(sections) + "\n")


def lolo_table(results: list[evaluate.Result]) -> pl.DataFrame:
    """Per left-out archetype and detector: its accounts in the test windows, how many were
    flagged (and held for review), and its FPR at the detector's own threshold."""
    rows = [
        {
            "left_out": r.split.removeprefix("without "),
            "detector": r.detector,
            "accounts": r.summary["archetype_accounts"],
            "flagged": round(r.summary["archetype_fpr"] * r.summary["archetype_accounts"])
            if r.summary["archetype_accounts"]
            else 0,
            "held": r.summary["archetype_held"],
        }
        for r in results
    ]
    return (
        pl.DataFrame(rows)
        .group_by("left_out", "detector", maintain_order=True)
        .agg(pl.col("accounts", "flagged", "held").sum())
        .with_columns((pl.col("flagged") / pl.col("accounts")).alias("fpr"))
    )


def _markdown(frame: pl.DataFrame) -> str:
    def cell(v):
        if isinstance(v, float):
            return "nan" if np.isnan(v) else f"{v:.3f}"
        return str(v)

    head = "| " + " | ".join(frame.columns) + " |\n| " + " | ".join("---" for _ in frame.columns)
    body = "\n".join("| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows())
    return head + " |\n" + body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("data/cache"))
    parser.add_argument("--out", type=Path, default=Path("docs/evaluation"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    train, val, test = experiments.TRAIN, experiments.VALIDATION, experiments.TEST
    if args.quick:
        train, val, test = (experiments.small(s) for s in (train, val, test))
    results, fitted = heldout(args.cache, train, val, test)
    firsts = None
    if not args.quick:
        results += loto_campaigns(args.cache, train, val, test)
        results += loto_tactics(args.cache, train, val, experiments.TACTIC_TESTS)
        results += lolo_legit(args.cache, train, val, test)
        results += cross_family(args.cache, train, val, test)
        firsts = first_flagged(fitted["torch"], replace(experiments.TEST[0], accounts=800))
    write(results, firsts, args.out)
    console.print(f"wrote {args.out}/REPORT.md")


if __name__ == "__main__":
    main()
