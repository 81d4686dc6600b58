"""Small hand-made graphs whose right answer is known, for the model's unit tests."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from detector.linking.cluster import EDGE_SCHEMA
from detector.model.graph import Preprocessor, make_graph, structure


def toy_world(seed: int, n_legit: int = 300, n_rings: int = 6, ring: int = 5):
    """Legitimate loners plus rings of campaign accounts that share a payment instrument.

    Campaign accounts have a high `share_elicitation`, but so do 10% of legitimate accounts
    (benchmark runners): only the ring (the links) tells them apart.
    """
    rng = np.random.default_rng(seed)
    rows, edges, members = [], [], []
    for i in range(n_legit):
        hard = rng.random() < 0.1
        rows.append(
            (f"legit{seed}_{i}", 0, 0.6 + 0.3 * rng.random() if hard else 0.05 * rng.random())
        )
        members.append((f"legit{seed}_{i}", None, 1))
    for r in range(n_rings):
        ids = [f"ring{seed}_{r}_{k}" for k in range(ring)]
        for a in ids:
            rows.append((a, 1, 0.6 + 0.3 * rng.random()))
            members.append((a, f"c{r:05d}", ring))
        for a, b in zip(ids, ids[1:], strict=False):
            edges.append((a, b, "payment", 1.0, f"pm_{seed}_{r}"))
    frame = pl.DataFrame(
        rows,
        schema={"account_id": pl.String, "label": pl.Int64, "share_elicitation": pl.Float64},
        orient="row",
    ).with_columns(
        pl.lit(100).alias("n_requests"),
        pl.lit("self_serve").alias("signup_channel"),
        pl.lit("unknown").alias("tier"),
    )
    edge_frame = pl.DataFrame(edges, schema=EDGE_SCHEMA, orient="row")
    member_frame = pl.DataFrame(
        members,
        schema={"account_id": pl.String, "cluster": pl.String, "cluster_size": pl.Int64},
        orient="row",
    )
    return frame, edge_frame, member_frame


@pytest.fixture(scope="session")
def toy():
    """(prep, train graphs, validation graphs, raw parts of one test world)."""
    parts = [toy_world(s) for s in range(4)]
    frames = [structure(f, e, m) for f, e, m in parts]
    stacked = pl.concat(frames, how="diagonal_relaxed")
    prep = Preprocessor.fit(stacked, stacked["label"].to_numpy() == 0)
    graphs = [make_graph(f, p[1], prep) for f, p in zip(frames, parts, strict=True)]
    return prep, graphs[:2], graphs[2:3], parts[3]
