"""Evaluation that predicts behaviour on unseen traffic.

Protocols (all detectors on the same splits, see `baselines`):

- `heldout`: train on the training pool, choose thresholds on validation, test on worlds with
  seeds never used in training (default, evasive, benign-heavy at 1:100, sparse logs).
- `loto_campaign`: leave one campaign type out: its accounts are removed from every training and
  validation window; recall is measured on that type in the held-out test worlds.
- `loto_tactic`: leave one evasion tactic out: every world that uses it is removed from training
  and validation; the test is a fresh world that uses it.

Metrics: AUPRC; recall at 0.1% and 1% legitimate FPR (thresholds set on the test set itself,
so they measure ranking); recall and FPR at the detector's own operating threshold (set on
validation, so they measure what a provider would see); per-campaign recall; false positives
per legitimate archetype.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, precision_recall_curve

from detector.model.graph import extended, fit_preprocessor
from research.baselines import Blend, Detector, Window, detectors, windows
from research.worlds import Example


def recall_at_fpr(y: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """Recall when the threshold lets `fpr` of the legitimate accounts through (ties flagged
    only when strictly above, so a constant scorer gets zero recall, not all)."""
    legit, bad = scores[y == 0], scores[y == 1]
    if bad.size == 0:
        return float("nan")
    if legit.size == 0:
        return 1.0
    allowed = int(np.floor(fpr * legit.size))
    threshold = np.sort(legit)[::-1][min(allowed, legit.size - 1)]
    return float((bad > threshold).mean())


def metrics(
    y: np.ndarray, scores: np.ndarray, threshold: float, flagged: np.ndarray | None = None
) -> dict:
    """Ranking and operating-point figures; `flagged` defaults to `scores > threshold`."""
    flagged = scores > threshold if flagged is None else flagged
    has_pos = bool((y == 1).any())
    return {
        "accounts": int(y.size),
        "positives": int(y.sum()),
        "auprc": float(average_precision_score(y, scores)) if has_pos else float("nan"),
        "recall_at_0.1%": recall_at_fpr(y, scores, 0.001),
        "recall_at_1%": recall_at_fpr(y, scores, 0.01),
        "op_recall": float(flagged[y == 1].mean()) if has_pos else float("nan"),
        "op_fpr": float(flagged[y == 0].mean()) if (y == 0).any() else float("nan"),
        "op_false_positives": int(flagged[y == 0].sum()),
    }


@dataclass
class Result:
    """Scores of one detector on one test window, with the window's labels."""

    protocol: str
    split: str
    detector: str
    world: str
    window_days: int
    frame: pl.DataFrame  # account_id, label, campaign, archetype, score, flagged
    summary: dict = field(default_factory=dict)


def _result(
    protocol, split, det: Detector, ex: Example, w: Window, focus=None, focus_legit=None
) -> Result:
    if det.fitted is not None:  # the model as `score` runs it: some of its flags are held
        scores, status, in_campaign = _scored(det, ex, w)
        flagged, held = status == "flagged", status == "review"
    else:
        scores = det.score(w)
        flagged, held = scores > det.threshold, np.zeros(len(scores), bool)
        in_campaign = np.zeros(len(scores), bool)
    frame = w.frame.select("account_id", "label", "campaign", "archetype").with_columns(
        pl.Series("score", scores),
        pl.Series("flagged", flagged),
        pl.Series("held", held),
        pl.Series("in_campaign", in_campaign),
    )
    keep = frame
    if focus is not None:  # leave-one-campaign-out: positives are the held-out type only
        keep = frame.filter((pl.col("label") == 0) | (pl.col("campaign") == focus))
    y = keep["label"].to_numpy()
    summary = metrics(y, keep["score"].to_numpy(), det.threshold, keep["flagged"].to_numpy())
    summary["op_held"] = int(keep["held"].sum())
    if focus_legit is not None:  # leave-one-archetype-out: that archetype's FPR
        mine = frame.filter(pl.col("archetype") == focus_legit)
        summary["archetype_accounts"] = mine.height
        summary["archetype_fpr"] = float(mine["flagged"].mean()) if mine.height else float("nan")
        summary["archetype_held"] = int(mine["held"].sum())
    return Result(protocol, split, det.name, ex.world, ex.window_days, frame, summary)


def _scored(det: Detector, ex: Example, w: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`score_window`'s score, status and whether it is in a reported campaign, per row of
    `w.frame`, from the detector's model (one forward pass: the same scores `det.score`
    gives)."""
    from detector.pipeline.scoring import ACTIVITY, score_window

    fitted = replace(det.fitted, threshold=det.threshold)
    scored = score_window(
        fitted, ex.features, ex.edges, ex.members, ex.evidence, pl.DataFrame(schema=ACTIVITY), False
    )
    order = w.frame.select("account_id").join(
        scored.accounts.select("account_id", "score", "status", "campaign_id"),
        on="account_id",
        how="left",
        maintain_order="left",
    )
    in_campaign = order["campaign_id"].is_not_null().to_numpy()
    return order["score"].to_numpy(), order["status"].to_numpy(), in_campaign


def windows_of(examples: list[Example], prep=None):
    frames = extended(examples)
    prep = prep or fit_preprocessor(frames)
    return prep, windows(frames, [ex.edges for ex in examples], prep)


def run_protocol(
    protocol: str,
    split: str,
    train: list[Example],
    val: list[Example],
    test: list[Example],
    budget: float = 0.001,
    focus: str | None = None,
    focus_legit: str | None = None,
    only: tuple[str, ...] | None = None,
    config=None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[Result], dict[str, Detector]]:
    """Fit every detector on `train`/`val`, score every `test` window."""
    prep, tw = windows_of(train)
    _, vw = windows_of(val, prep)
    _, sw = windows_of(test, prep)
    results, fitted = [], {}
    for det in detectors(budget, config):
        if only and det.name not in only:
            continue
        if progress:
            progress(f"{protocol}/{split}: fitting {det.name}")
        if isinstance(det, Blend):
            det.parts = (fitted["torch"], fitted["hgb"])
        det.fit(tw, vw, prep)
        fitted[det.name] = det
        results.extend(
            _result(protocol, split, det, ex, w, focus, focus_legit)
            for ex, w in zip(test, sw, strict=True)
        )
    return results, fitted


def drop_campaign(examples: list[Example], campaign: str) -> list[Example]:
    """The examples without one campaign's accounts (nodes, edges and cluster sizes)."""
    return drop_where(examples, "campaign", campaign)


def drop_archetype(examples: list[Example], archetype: str) -> list[Example]:
    """The examples without one (legitimate) archetype's accounts."""
    return drop_where(examples, "archetype", archetype)


def drop_where(examples: list[Example], column: str, value: str) -> list[Example]:
    """The examples without the accounts whose label column `column` is `value`."""
    out = []
    for ex in examples:
        gone = ex.features.filter(pl.col(column) == value)["account_id"].implode()
        members = ex.members.filter(~pl.col("account_id").is_in(gone)).with_columns(
            pl.when(pl.col("cluster").is_null())
            .then(1)
            .otherwise(pl.len().over("cluster"))
            .alias("cluster_size")
        )
        out.append(
            Example(
                ex.world,
                ex.window_days,
                ex.features.filter(~pl.col("account_id").is_in(gone)),
                ex.edges.filter(~pl.col("src").is_in(gone) & ~pl.col("dst").is_in(gone)),
                members,
                ex.evidence,
            )
        )
    return out


def summary_table(results: list[Result]) -> pl.DataFrame:
    rows = [
        {
            "protocol": r.protocol,
            "split": r.split,
            "detector": r.detector,
            "world": r.world,
            "window_days": r.window_days,
            **r.summary,
        }
        for r in results
    ]
    return pl.DataFrame(rows, infer_schema_length=None)


def protocol_table(summary: pl.DataFrame) -> pl.DataFrame:
    """`summary_table` per protocol, split and detector: means over test windows, with false
    positives and held accounts summed (the rows of BENCHMARKS.md)."""
    return summary.group_by("protocol", "split", "detector", maintain_order=True).agg(
        pl.col("auprc", "recall_at_0.1%", "recall_at_1%", "op_recall", "op_fpr").mean(),
        pl.col("op_false_positives", "op_held").sum(),
    )


def per_campaign_recall(results: list[Result]) -> pl.DataFrame:
    frames = [
        r.frame.filter(pl.col("label") == 1).with_columns(
            pl.lit(r.detector).alias("detector"),
            pl.lit(r.split).alias("split"),
            pl.lit(r.world).alias("world"),
        )
        for r in results
    ]
    return (
        pl.concat(frames)
        .group_by("split", "detector", "campaign")
        .agg(pl.len().alias("accounts"), pl.col("flagged").mean().alias("recall"))
        .sort("split", "campaign", "detector")
    )


def false_positives_by_archetype(results: list[Result]) -> pl.DataFrame:
    frames = [
        r.frame.filter(pl.col("label") == 0).with_columns(pl.lit(r.detector).alias("detector"))
        for r in results
    ]
    return (
        pl.concat(frames)
        .group_by("detector", "archetype")
        .agg(pl.len().alias("accounts"), pl.col("flagged").sum().alias("false_positives"))
        .with_columns((pl.col("false_positives") / pl.col("accounts")).alias("fpr"))
        .sort("archetype", "detector")
    )


def pr_curves(results: list[Result]):
    """A matplotlib figure: precision-recall curve per detector, pooled over `results`."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name in dict.fromkeys(r.detector for r in results):
        mine = [r.frame for r in results if r.detector == name]
        frame = pl.concat(mine)
        y, s = frame["label"].to_numpy(), frame["score"].to_numpy()
        precision, recall, _ = precision_recall_curve(y, s)
        ax.plot(recall, precision, label=f"{name} (AP {average_precision_score(y, s):.3f})")
    ax.set_xlabel("recall (campaign accounts)")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def score_distributions(results: list[Result], detector: str = "torch"):
    """A matplotlib figure: score histogram of legitimate vs campaign accounts, log counts."""
    import matplotlib.pyplot as plt

    frame = pl.concat([r.frame for r in results if r.detector == detector])
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, 1, 41)
    for label, name in ((0, "legitimate"), (1, "campaign")):
        ax.hist(
            frame.filter(pl.col("label") == label)["score"].to_numpy(),
            bins=bins,
            alpha=0.6,
            label=name,
        )
    ax.set_yscale("log")
    ax.set_xlabel(f"{detector} score")
    ax.set_ylabel("accounts")
    ax.legend()
    fig.tight_layout()
    return fig
