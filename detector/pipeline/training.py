"""Training on a provider's own labels (`distillguard train`).

Labels cover a few accounts (past enforcement, analyst verdicts); accounts without a label are
taken as legitimate, which is what almost all of them are. Validation holds out one account group
in five (a group is a cluster of the whole-span window, or a lone account), stratified so that
groups with campaign accounts are held out too; linked accounts never sit on both sides and the
threshold is chosen on accounts the model did not train on.
The data is featurised over the whole span and over trailing 7-day windows (up to four), so the
model meets both the window lengths `score` and `nightly` use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import polars as pl

from detector.model.config import TrainConfig
from detector.model.graph import fit_preprocessor, make_graph, structure
from detector.model.train import Fitted, fit, pick_device
from detector.pipeline.featurise import WindowData
from features.pipeline import Window

VALIDATION_SHARE = 5  # one group in five


def training_windows(whole: Window, step_days: int = 7, most: int = 4) -> list[Window]:
    """The whole span, then trailing `step_days` windows ending each week back from its end."""
    out = [whole]
    if whole.days > step_days:
        for k in range(most):
            end = whole.dates[-1 - k * step_days]
            if (end - whole.dates[0]).days + 1 < step_days:
                break
            out.append(Window(end, step_days))
    return out


def validation_groups(group: dict[str, str], positive: set[str]) -> set[str]:
    """One group in `VALIDATION_SHARE`, stratified: as many groups with a campaign account as
    without (at least one of each kind where there are two), chosen by a hash of the group."""
    kinds: dict[bool, list[str]] = {True: [], False: []}
    bad_groups = {group.get(a, a) for a in positive}
    for g in sorted(set(group.values())):
        kinds[g in bad_groups].append(g)
    chosen: set[str] = set()
    for names in kinds.values():
        names.sort(key=lambda g: hashlib.sha256(g.encode()).hexdigest())
        take = -(-len(names) // VALIDATION_SHARE) if len(names) >= 2 else 0
        chosen.update(names[:take])
    return chosen


def fit_on_labels(
    windows: list[WindowData],
    labels: pl.DataFrame,
    cfg: TrainConfig,
    progress: Callable[[int, dict], None] | None = None,
) -> tuple[Fitted, dict]:
    """Train on featurised windows with `labels`; the model and a description of its data."""
    members = windows[0].clusters.members.with_columns(
        pl.when(pl.col("cluster").is_null())
        .then(pl.col("account_id"))
        .otherwise(pl.col("account_id").min().over("cluster"))
        .alias("group")
    )
    group = dict(zip(members["account_id"], members["group"], strict=True))
    frames = []
    for w in windows:
        frame = structure(w.features, w.edges, w.clusters.members)
        frames.append(
            frame.join(
                labels.select("account_id", "label"), on="account_id", how="left"
            ).with_columns(pl.col("label").fill_null(0))
        )
    prep = fit_preprocessor(frames)
    positive = set(labels.filter(pl.col("label") == 1)["account_id"].to_list())
    held_groups = validation_groups(group, positive)
    train, val = [], []
    for frame, w in zip(frames, windows, strict=True):
        g = make_graph(frame, w.edges, prep)
        held = np.array([group.get(a, a) in held_groups for a in g.ids])
        train.append(g.with_mask(~held))
        val.append(g.with_mask(held))
    for name, graphs in (("training", train), ("validation", val)):
        y = np.concatenate([g.y[g.mask] for g in graphs])
        if y.sum() == 0 or y.sum() == y.size:
            raise ValueError(
                f"the {name} split has no {'campaign' if y.sum() == 0 else 'legitimate'} accounts: "
                f"label more accounts (validation holds out 1 account group in {VALIDATION_SHARE})"
            )
    fitted = fit(train, val, prep, cfg, progress)
    labelled = frames[0]["label"].to_numpy()
    info = {
        "source": "provider labels",
        "accounts": int(labelled.size),
        "positives": int(labelled.sum()),
        "windows": [f"{w.window.dates[0]}..{w.window.end}" for w in windows],
        "device": str(pick_device(cfg.device)),
    }
    return fitted, info
