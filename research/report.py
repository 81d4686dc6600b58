"""Run every evaluation protocol and write the figures behind BENCHMARKS.md.

    python -m research.report [--cache data/cache] [--out docs/evaluation]
                              [--checkpoint DIR [--finished-only]] [--only UNIT ...] [--quick]

Protocols: held-out seeds (every baseline), leave one campaign type out, leave one evasion
tactic out, leave one legitimate archetype out (its false-positive rate), and train on one
scenario family / test on the other (`evaluate` and `experiments` say how each is cut).

Writes OUT/summary.csv (one row per protocol, split, detector and test window),
OUT/per_campaign.csv, OUT/false_positives.csv, OUT/lolo_legit.csv, OUT/first_flagged.csv,
OUT/REPORT.md (the same as markdown tables) and the plots OUT/pr_heldout.png and
OUT/scores_heldout.png. `--quick` runs the held-out protocol on small worlds only (minutes, for a
smoke run).

Each protocol split is one unit (one training of the candidate detectors, minutes on two cores;
the whole report is about an hour and a half). With `--checkpoint DIR` every finished unit is
written there and a rerun reads it back instead of training again, so a stopped report resumes
where it stopped; `--only` runs the units whose names start with the given prefixes (and writes
a report of those alone); `--finished-only` reports the units the checkpoint holds and runs none.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl
from rich.console import Console

from detector import simulate as sim
from detector.pipeline.scoring import ACTIVITY, score_window
from detector.simulate.archetypes import LEGIT
from research import evaluate, experiments
from research.baselines import Torch, detectors
from research.worlds import DAY, WorldSpec, build_all, featurise

console = Console(stderr=True)
LOLO_DETECTORS = ("torch", "hgb", "blend")
"""Detectors compared in every leave-one-out and cross-family protocol (the candidates for the
shipped model); the held-out protocol runs every baseline."""


def heldout(cache, train, val, test, config=None, only=None):
    examples = [build_all(s, cache) for s in (train, val, test)]
    return evaluate.run_protocol(
        "heldout", "held-out seeds", *examples, only=only, config=config, progress=console.log
    )


def loto_campaign(cache, train, val, test, campaign, config=None, only=LOLO_DETECTORS):
    """Leave one campaign type out of training and validation; recall on it alone."""
    tr, va, te = (build_all(s, cache) for s in (train, val, test))
    res, _ = evaluate.run_protocol(
        "loto_campaign",
        f"without {campaign}",
        evaluate.drop_campaign(tr, campaign),
        evaluate.drop_campaign(va, campaign),
        [ex for ex in te if (ex.features["campaign"] == campaign).any()],
        focus=campaign,
        only=only,
        config=config,
        progress=console.log,
    )
    return res


def loto_tactic(cache, train, val, test, tactic, config=None, only=LOLO_DETECTORS):
    """Leave one evasion tactic out: every scenario that switches it on leaves training."""
    res, _ = evaluate.run_protocol(
        "loto_tactic",
        f"without {tactic}",
        build_all(experiments.without_tactic(train, tactic), cache),
        build_all(experiments.without_tactic(val, tactic), cache),
        build_all([test], cache),
        only=only,
        config=config,
        progress=console.log,
    )
    return res


def lolo_legit(cache, train, val, test, archetype, config=None, only=LOLO_DETECTORS):
    """Leave one legitimate archetype out: its accounts are removed from every training and
    validation window; its false-positive rate is measured in the held-out test worlds."""
    tr, va, te = (build_all(s, cache) for s in (train, val, test))
    res, _ = evaluate.run_protocol(
        "lolo_legit",
        f"without {archetype}",
        evaluate.drop_archetype(tr, archetype),
        evaluate.drop_archetype(va, archetype),
        te,
        focus_legit=archetype,
        only=only,
        config=config,
        progress=console.log,
    )
    return res


def cross_family(cache, train, val, test, source, target, name, config=None, only=LOLO_DETECTORS):
    """Train and calibrate on one scenario family, test on the other."""
    res, _ = evaluate.run_protocol(
        "cross_family",
        name,
        build_all(experiments.family(train, source), cache),
        build_all(experiments.family(val, source), cache),
        build_all(experiments.family(test, target), cache),
        only=only,
        config=config,
        progress=console.log,
    )
    return res


def units(
    cache, train, val, test, tactic_tests, quick=False, only=None
) -> list[tuple[str, Callable]]:
    """Every protocol split as (name, run): one unit is one training of the candidates, so a
    stopped report resumes from the units it has already written (`--checkpoint`). `only`
    names the detectors to fit (default: every baseline held out, `LOLO_DETECTORS` elsewhere)."""
    some = {} if only is None else {"only": tuple(only)}
    out: list[tuple[str, Callable]] = [
        ("heldout", lambda: heldout(cache, train, val, test, **some)[0])
    ]
    if quick:
        return out
    out += [
        (f"loto_campaign-{c}", partial(loto_campaign, cache, train, val, test, c, **some))
        for c in sim.CAMPAIGNS
    ]
    out += [
        (f"loto_tactic-{t}", partial(loto_tactic, cache, train, val, spec, t, **some))
        for t, spec in tactic_tests.items()
    ]
    out += [
        (f"lolo_legit-{a.name}", partial(lolo_legit, cache, train, val, test, a.name, **some))
        for a in LEGIT
    ]
    for key, name, source, target in (
        ("plain-evading", "plain -> evading", experiments.PLAIN, experiments.EVADING),
        ("evading-plain", "evading -> plain", experiments.EVADING, experiments.PLAIN),
    ):
        out.append(
            (
                f"cross_family-{key}",
                partial(cross_family, cache, train, val, test, source, target, name, **some),
            )
        )
    return out


def run_units(
    todo: list[tuple[str, Callable]], checkpoint: Path | None, finished_only: bool = False
) -> list[evaluate.Result]:
    """Run each unit, or read it back from `checkpoint` where an earlier run wrote it (with
    `finished_only`, units not written there are skipped, not run)."""
    results = []
    for name, run in todo:
        folder = None if checkpoint is None else checkpoint / name
        if folder is not None and (folder / "results.json").is_file():
            console.log(f"{name}: read from {folder}")
            results += _read_unit(folder)
            continue
        if finished_only:
            console.log(f"{name}: not in the checkpoint, skipped")
            continue
        console.rule(name)
        done = run()
        if folder is not None:
            _write_unit(done, folder)
        results += done
    return results


def _write_unit(results: list[evaluate.Result], folder: Path) -> None:
    """Frames as Parquet, the rest as JSON; results.json last, so a unit is whole or absent."""
    folder.mkdir(parents=True, exist_ok=True)
    meta = []
    for i, r in enumerate(results):
        r.frame.write_parquet(folder / f"frame-{i}.parquet")
        meta.append({k: v for k, v in vars(r).items() if k != "frame"})
    (folder / "results.json.part").write_text(json.dumps(meta, default=float))
    (folder / "results.json.part").replace(folder / "results.json")


def _read_unit(folder: Path) -> list[evaluate.Result]:
    meta = json.loads((folder / "results.json").read_text())
    return [
        evaluate.Result(**m, frame=pl.read_parquet(folder / f"frame-{i}.parquet"))
        for i, m in enumerate(meta)
    ]


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


def first_flagged_unit(cache, train, val, spec: WorldSpec, checkpoint: Path | None):
    """`first_flagged` for a torch model trained on the held-out protocol's pools (read back
    from `checkpoint` when an earlier run wrote it)."""
    saved = None if checkpoint is None else checkpoint / "first_flagged.parquet"
    if saved is not None and saved.is_file():
        return pl.read_parquet(saved)
    console.rule("first_flagged")
    prep, tw = evaluate.windows_of(build_all(train, cache))
    _, vw = evaluate.windows_of(build_all(val, cache), prep)
    model = detectors()[0].fit(tw, vw, prep)
    firsts = first_flagged(model, replace(spec, accounts=800))
    if saved is not None:
        saved.parent.mkdir(parents=True, exist_ok=True)
        firsts.write_parquet(saved)
    return firsts


def write(results: list[evaluate.Result], firsts: pl.DataFrame | None, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    summary = evaluate.summary_table(results)
    summary.write_csv(out / "summary.csv")
    sections = [
        "# Evaluation report\n\nGenerated by `python -m research.report`; see BENCHMARKS.md.",
        "## By protocol (means over test windows; false positives and held summed)\n\n"
        + _markdown(evaluate.protocol_table(summary)),
        "## Summary (per test window)\n\n" + _markdown(summary.drop("accounts")),
    ]
    held = [r for r in results if r.protocol == "heldout"]
    if held:  # a report of some units only (--only) may have no held-out protocol
        campaign = evaluate.per_campaign_recall(held)
        campaign.write_csv(out / "per_campaign.csv")
        fps = evaluate.false_positives_by_archetype(held)
        fps.write_csv(out / "false_positives.csv")
        evaluate.pr_curves(held).savefig(out / "pr_heldout.png", dpi=120)
        evaluate.score_distributions(held).savefig(out / "scores_heldout.png", dpi=120)
        sections += [
            "## Per-campaign recall at the operating threshold (held-out)\n\n"
            + _markdown(campaign),
            "## False positives per legitimate archetype (held-out)\n\n"
            + _markdown(fps.filter(pl.col("false_positives") > 0)),
        ]
    left_out = [r for r in results if r.protocol == "loto_campaign"]
    if left_out:
        recall = evaluate.per_campaign_recall(left_out).filter(
            pl.col("split").str.ends_with(pl.col("campaign"))
        )
        recall.write_csv(out / "loto_campaign.csv")
        sections.append(
            "## Leave one campaign type out: recall of the left-out type at the operating "
            "threshold\n\n" + _markdown(recall)
        )
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
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", default=None, help="unit names (prefixes) to run")
    parser.add_argument(
        "--detectors", nargs="*", default=None, help="detectors to fit (default: all compared)"
    )
    parser.add_argument(
        "--finished-only",
        action="store_true",
        help="with --checkpoint: report the units written there, run none",
    )
    args = parser.parse_args()
    if args.finished_only and args.checkpoint is None:
        parser.error("--finished-only reads --checkpoint DIR")
    train, val, test = experiments.TRAIN, experiments.VALIDATION, experiments.TEST
    if args.quick:
        train, val, test = (experiments.small(s) for s in (train, val, test))
    todo = units(args.cache, train, val, test, experiments.TACTIC_TESTS, args.quick, args.detectors)
    if args.only is not None:
        todo = [(n, run) for n, run in todo if any(n.startswith(p) for p in args.only)]
    results = run_units(todo, args.checkpoint, args.finished_only)
    firsts = None
    if not args.quick and args.only is None and not args.finished_only:
        firsts = first_flagged_unit(args.cache, train, val, test[0], args.checkpoint)
    write(results, firsts, args.out)
    console.print(f"wrote {args.out}/REPORT.md")


if __name__ == "__main__":
    main()
