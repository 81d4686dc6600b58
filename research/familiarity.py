"""Does distance to the training set tell a left-out legitimate archetype from a campaign?

    python -m research.familiarity ARCHETYPE [ARCHETYPE ...]   (about 2 minutes each, 2 cores)

For each archetype: train the torch model without it (as `report`'s leave-one-out does), embed
accounts in three spaces (standardised inputs, encoder output, state after message passing),
and measure each account's mean distance to its 5 nearest training accounts (campaign accounts
only, or all). The familiar radius is a high quantile of that distance among validation
accounts the model flags. Printed per space, reference and quantile: how many of the left-out
archetype's accounts are flagged, and how many would still be flagged if flagged accounts
beyond the radius and outside a reported campaign were held for review instead; the same for
all legitimate and all campaign accounts. One JSON line per row.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import torch
from sklearn.neighbors import NearestNeighbors

from detector.pipeline.scoring import ACTIVITY, score_window
from research import evaluate, experiments
from research.baselines import detectors
from research.worlds import build_all

SPACES = ("input", "encoder", "final")
QUANTILES = (0.99, 0.995, 1.0)
K, REFERENCE = 5, 6000


def embed(net, graph, space: str) -> np.ndarray:
    g = graph.tensors("cpu")
    with torch.no_grad():
        if space == "input":
            return g.x.numpy()
        h = net.encoder(g.x)
        if space == "final":
            for conv in net.convs:
                h = conv(h, g.adjacency)
        return h.numpy()


def run(archetype: str, cache: Path) -> list[dict]:
    tr, va, te = (
        build_all(s, cache) for s in (experiments.TRAIN, experiments.VALIDATION, experiments.TEST)
    )
    prep, tw = evaluate.windows_of(evaluate.drop_archetype(tr, archetype))
    _, vw = evaluate.windows_of(evaluate.drop_archetype(va, archetype), prep)
    _, sw = evaluate.windows_of(te, prep)
    det = detectors()[0].fit(tw, vw, prep)
    net = det.fitted.net.eval()
    fitted = replace(det.fitted, threshold=det.threshold)
    in_campaign = []
    for ex, w in zip(te, sw, strict=True):
        accounts = score_window(
            fitted,
            ex.features,
            ex.edges,
            ex.members,
            ex.evidence,
            pl.DataFrame(schema=ACTIVITY),
            False,
        ).accounts
        order = w.frame.select("account_id").join(
            accounts.select("account_id", "campaign_id"),
            on="account_id",
            how="left",
            maintain_order="left",
        )
        in_campaign.append(order["campaign_id"].is_not_null().to_numpy())
    rng = np.random.default_rng(0)
    rows = []
    for space in SPACES:
        for reference in ("campaign", "all"):
            ref = np.concatenate(
                [
                    embed(net, w.graph, space)[
                        w.graph.masked()[0] & ((w.graph.y == 1) | (reference == "all"))
                    ]
                    for w in tw
                ]
            )
            if len(ref) > REFERENCE:
                ref = ref[rng.choice(len(ref), REFERENCE, replace=False)]
            knn = NearestNeighbors(n_neighbors=K).fit(ref)

            def distance(g, knn=knn, space=space):
                return knn.kneighbors(embed(net, g, space))[0].mean(axis=1)

            flagged_val = np.concatenate(
                [
                    distance(w.graph)[(det.score(w) > det.threshold) & w.graph.masked()[0]]
                    for w in vw
                ]
            )
            row = {"left_out": archetype, "space": space, "reference": reference}
            counts: dict[str, int] = {}
            for q in QUANTILES:
                radius = float(np.quantile(flagged_val, q))
                row[f"radius_q{q}"] = radius
                for w, camp in zip(sw, in_campaign, strict=True):
                    flagged = det.score(w) > det.threshold
                    kept = flagged & ~((distance(w.graph) > radius) & ~camp)
                    label = w.frame["label"].to_numpy() == 1
                    mine = (w.frame["archetype"] == archetype).to_numpy()
                    for name, who in (("left_out", mine), ("legit", ~label), ("campaign", label)):
                        for what, mask in (("flagged", flagged), ("kept", kept)):
                            key = f"{name}_{what}_q{q}"
                            counts[key] = counts.get(key, 0) + int((who & mask).sum())
            rows.append(row | counts)
            print(json.dumps(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    for name in sys.argv[1:]:
        run(name, Path("data/cache"))
