"""From feature table, typed edges and clusters to model inputs.

`structure` adds what the link graph says about each account (weighted degree per link type,
cluster size) and its standing in the scored population (percentiles of `POPULATION` features
within the window) as columns every model can use, baselines included. `Preprocessor` turns the
feature table into a standardised matrix: heavy-tailed columns go through log1p, every column is
centred on the legitimate median and scaled by the legitimate inter-quartile range (robust to a
few huge accounts; percentiles, bounded, are only centred on 0.5 and scaled by 4), clipped, and
categoricals are one-hot with an `other` slot for values never seen in training. `Graph` holds
one window's matrix, per-type normalised adjacency and cluster index, ready to move to a torch
device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl
import torch

from detector.linking.cluster import ordered_sum
from detector.linking.edges import EDGE_TYPES
from features.registry import BY_NAME, CATEGORICAL, FEATURES, NUMERIC, POPULATION

LINK_TYPES = tuple(name for name, e in EDGE_TYPES.items() if e.model_input)
"""The link types the model reads; links of other types (lockstep) shape clusters and
operations only, until a model is trained with them."""
GRAPH_MEANING = {
    **{f"deg_{t}": f"weight of links by {EDGE_TYPES[t].meaning}" for t in LINK_TYPES},
    "cluster_size": "accounts in its cluster (1 when unclustered)",
}
POPULATION_MEANING = {
    f"pct_{name}": f"percentile of {name} among the accounts scored in the same window"
    for name in POPULATION
}
STRUCTURE_MEANING = GRAPH_MEANING | POPULATION_MEANING
"""The inputs `structure` adds to every account's features (from the link graph and from the
scored population), and what each means."""
STRUCTURE = tuple(STRUCTURE_MEANING)
FAMILY = (
    {f.name: f.family for f in FEATURES}
    | {c: "graph" for c in GRAPH_MEANING}
    | {f"pct_{name}": BY_NAME[name].family for name in POPULATION}
)
CLIP = 8.0
FAMILIAR_MARGIN = 1.0
"""Robust units (legitimate IQRs, after log1p where used) an input may lie beyond the training
range before the account counts as unfamiliar."""
CLIP_WARN_SHARE = 0.05
log = logging.getLogger(__name__)


def structure(features: pl.DataFrame, edges: pl.DataFrame, members: pl.DataFrame) -> pl.DataFrame:
    """The feature table with link-graph columns: weighted degree per link type, cluster size."""
    edges = edges.filter(pl.col("edge_type").is_in(LINK_TYPES))
    ends = pl.concat(
        [
            edges.select(pl.col("src").alias("account_id"), "edge_type", "weight"),
            edges.select(pl.col("dst").alias("account_id"), "edge_type", "weight"),
        ]
    )
    degree = ordered_sum(ends, ["account_id", "edge_type"], "weight").pivot(
        on="edge_type", index="account_id", values="weight"
    )
    degree = degree.rename({t: f"deg_{t}" for t in LINK_TYPES if t in degree.columns})
    out = (
        features.drop([c for c in STRUCTURE if c in features.columns])
        .join(degree, on="account_id", how="left")
        .join(members.select("account_id", "cluster", "cluster_size"), on="account_id", how="left")
    )
    missing = [pl.lit(0.0).alias(c) for c in GRAPH_MEANING if c not in out.columns]
    out = out.with_columns(missing).with_columns(
        pl.col(c).cast(pl.Float64).fill_null(0.0 if c != "cluster_size" else 1.0)
        for c in GRAPH_MEANING
    )
    return out.with_columns(_percentile(out, name).alias(f"pct_{name}") for name in POPULATION)


def _percentile(frame: pl.DataFrame, name: str) -> pl.Expr:
    """Mid-rank percentile of a feature within the frame, in (0, 1); 0.5 where it is missing
    (no value, or the column absent from the table)."""
    if name not in frame.columns:
        return pl.lit(0.5, dtype=pl.Float64)
    value = pl.col(name).cast(pl.Float64).fill_nan(None)
    known = value.is_not_null().sum()
    return ((value.rank("average") - 0.5) / known).fill_null(0.5)


@dataclass
class Preprocessor:
    """Feature table -> standardised float32 matrix; fitted on training data, saved with models."""

    numeric: list[str]
    log: list[str]
    center: list[float]
    scale: list[float]
    categories: dict[str, list[str]]
    medians: dict[str, float] = field(default_factory=dict)  # legitimate medians, raw units
    low: dict[str, float] = field(default_factory=dict)  # training minimum, raw units
    high: dict[str, float] = field(default_factory=dict)  # training maximum, raw units

    @classmethod
    def fit(cls, frame: pl.DataFrame, legit: np.ndarray) -> Preprocessor:
        numeric = [c for c in (*NUMERIC, *STRUCTURE) if c in frame.columns]
        raw = frame.select(numeric).cast(pl.Float64).fill_null(0.0).fill_nan(0.0).to_numpy()
        log = [
            c
            for i, c in enumerate(numeric)
            if raw[:, i].min() >= -1 and np.quantile(raw[:, i], 0.99) > 20
        ]
        values = _transform(raw, numeric, log)[legit]
        q1, med, q3 = np.quantile(values, [0.25, 0.5, 0.75], axis=0)
        spread = np.where(q3 - q1 > 1e-9, q3 - q1, values.std(axis=0))
        scale = np.where(spread > 1e-9, spread, 1.0)
        share = np.array([c.startswith("pct_") for c in numeric], dtype=bool)
        med, scale = np.where(share, 0.5, med), np.where(share, 0.25, scale)  # bounded: as is
        categories = {
            c: sorted(frame[c].drop_nulls().unique().to_list()) for c in CATEGORICAL if c in frame
        }
        medians = dict(zip(numeric, np.median(raw[legit], axis=0).tolist(), strict=True))
        ranged = [i for i, c in enumerate(numeric) if not c.startswith("pct_")]
        low = {numeric[i]: float(raw[:, i].min()) for i in ranged} if raw.size else {}
        high = {numeric[i]: float(raw[:, i].max()) for i in ranged} if raw.size else {}
        return cls(numeric, log, med.tolist(), scale.tolist(), categories, medians, low, high)

    @property
    def columns(self) -> list[str]:
        """Names of the matrix columns."""
        cats = [f"{c}={v}" for c, vs in self.categories.items() for v in [*vs, "other"]]
        return [*self.numeric, *cats]

    def transform(self, frame: pl.DataFrame) -> np.ndarray:
        """The standardised matrix of a feature table.

        Missing columns count as 0 (numeric) or unknown (categorical), null or NaN values as 0,
        and standardised values are clipped to +-CLIP; each is logged, the first two as
        warnings (the table differs from what the model was trained on), clipping as a warning
        only when it touches more than `CLIP_WARN_SHARE` of a column's rows (a shifted
        population), else at info level.
        """
        absent = [c for c in self.numeric if c not in frame.columns]
        absent += [c for c in self.categories if c not in frame.columns]
        if absent:
            log.warning(
                "model inputs missing from the feature table, filled as 0 / unknown: %s", absent
            )
        present = frame.with_columns(
            pl.lit(0.0).alias(c) for c in self.numeric if c not in frame.columns
        )
        raw = present.select(self.numeric).cast(pl.Float64)
        holes = {c: n for c, n in zip(self.numeric, (raw.null_count().row(0)), strict=True) if n}
        nans = raw.select(pl.col(c).is_nan().sum() for c in self.numeric).row(0)
        holes |= {c: holes.get(c, 0) + n for c, n in zip(self.numeric, nans, strict=True) if n}
        if holes:
            log.warning("null or NaN model inputs filled with 0: %s", holes)
        values = _transform(raw.fill_null(0.0).fill_nan(0.0).to_numpy(), self.numeric, self.log)
        unclipped = (values - np.asarray(self.center)) / np.asarray(self.scale)
        _log_clipping(unclipped, self.numeric)
        z = np.clip(unclipped, -CLIP, CLIP)
        blocks = [z]
        for col, vocab in self.categories.items():
            given = (
                present[col].fill_null("unknown").to_list()
                if col in present.columns
                else ["unknown"] * frame.height
            )
            slot = {v: i for i, v in enumerate(vocab)}
            onehot = np.zeros((frame.height, len(vocab) + 1))
            onehot[np.arange(frame.height), [slot.get(v, len(vocab)) for v in given]] = 1.0
            blocks.append(onehot)
        return np.hstack(blocks).astype(np.float32)

    def unfamiliar(self, frame: pl.DataFrame, limit: int = 3) -> list[list[str]]:
        """Per row, what lies outside everything the model was trained on: numeric inputs
        more than `FAMILIAR_MARGIN` robust units beyond the training minimum or maximum, and
        categorical values training never saw (a missing value is not unfamiliar). The
        farthest `limit` of each row, as text; an empty list means familiar."""
        names = [c for c in self.low if c in frame.columns]
        out: list[list[tuple[float, str]]] = [[] for _ in range(frame.height)]
        if names:
            index = {c: i for i, c in enumerate(self.numeric)}
            raw = frame.select(names).cast(pl.Float64).fill_nan(None).to_numpy()
            lo = np.array([self.low[c] for c in names])
            hi = np.array([self.high[c] for c in names])
            center = np.array([self.center[index[c]] for c in names])
            scale = np.array([self.scale[index[c]] for c in names])
            logged = [c in self.log for c in names]

            def z(values: np.ndarray) -> np.ndarray:
                values = np.where(logged, np.log1p(np.maximum(values, 0.0)), values)
                return (values - center) / scale

            with np.errstate(invalid="ignore"):
                beyond = np.maximum(z(lo) - z(raw), z(raw) - z(hi))
            rows, cols = np.nonzero(np.nan_to_num(beyond, nan=0.0) > FAMILIAR_MARGIN)
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                side = f"above every training account (max {hi[c]:.4g})"
                if raw[r, c] < lo[c]:
                    side = f"below every training account (min {lo[c]:.4g})"
                out[r].append((float(beyond[r, c]), f"{names[c]} = {raw[r, c]:.4g}, {side}"))
        for col, vocab in self.categories.items():
            if col not in frame.columns:
                continue
            known = set(vocab)
            for r, value in enumerate(frame[col].to_list()):
                if value is not None and value not in known:
                    out[r].append((CLIP, f"{col} = {value!r}, never seen in training"))
        return [[text for _, text in sorted(row, reverse=True)[:limit]] for row in out]

    def families(self) -> list[str]:
        """Family of each matrix column (for feature-family dropout and reasons)."""
        return [FAMILY.get(c.split("=")[0], "metadata") for c in self.columns]

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessor:
        return cls(**data)


def _log_clipping(unclipped: np.ndarray, names: list[str]) -> None:
    if not unclipped.size:
        return
    counts = (np.abs(unclipped) > CLIP).sum(axis=0)
    clipped = {n: int(c) for n, c in zip(names, counts, strict=True) if c}
    if not clipped:
        return
    rows = unclipped.shape[0]
    shifted = {n: c for n, c in clipped.items() if c > CLIP_WARN_SHARE * rows}
    if shifted:
        log.warning(
            "inputs beyond +-%g robust deviations of the training population, clipped, in more "
            "than %.0f%% of %d rows: %s",
            CLIP,
            100 * CLIP_WARN_SHARE,
            rows,
            shifted,
        )
    log.info("inputs clipped at +-%g (rows per column, of %d): %s", CLIP, rows, clipped)


def _transform(raw: np.ndarray, numeric: list[str], log: list[str]) -> np.ndarray:
    out = raw.copy()
    for i, c in enumerate(numeric):
        if c in log:
            out[:, i] = np.log1p(np.maximum(out[:, i], 0.0))
    return out


@dataclass
class Graph:
    """One window ready for the model: inputs, typed adjacency, clusters and (optional) labels."""

    ids: list[str]
    x: np.ndarray  # [n, f] float32
    adjacency: list[tuple[np.ndarray, np.ndarray]]  # per link type: ([2, e] index, [e] weight)
    cluster: np.ndarray  # [n] int64; clusters first, then one slot per unclustered account
    cluster_names: list[str]  # names of the real clusters (indices 0..n_clusters-1)
    y: np.ndarray | None = None
    cluster_y: np.ndarray | None = None
    mask: np.ndarray | None = None  # accounts that count in loss and metrics (default: all)

    def masked(self) -> tuple[np.ndarray, np.ndarray]:
        """Boolean masks of the accounts and of the real clusters that count."""
        mask = np.ones(len(self.ids), bool) if self.mask is None else self.mask
        hits = np.bincount(self.cluster, weights=mask, minlength=self.n_clusters)
        return mask, hits[: self.n_clusters] > 0

    def with_mask(self, mask: np.ndarray) -> Graph:
        return replace(self, mask=mask)

    @property
    def n_clusters(self) -> int:
        return len(self.cluster_names)

    def tensors(self, device: torch.device | str = "cpu") -> TorchGraph:
        n = len(self.ids)
        adj = []
        for index, weight in self.adjacency:
            adj.append(
                torch.sparse_coo_tensor(
                    torch.from_numpy(index),
                    torch.from_numpy(weight),
                    (n, n),
                    check_invariants=False,
                )
                .coalesce()
                .to(device)
            )
        return TorchGraph(
            x=torch.from_numpy(self.x).to(device),
            adjacency=adj,
            cluster=torch.from_numpy(self.cluster).to(device),
            n_slots=int(self.cluster.max()) + 1 if n else 0,
            n_clusters=self.n_clusters,
        )


@dataclass
class TorchGraph:
    x: torch.Tensor
    adjacency: list[torch.Tensor]
    cluster: torch.Tensor
    n_slots: int
    n_clusters: int


def make_graph(
    frame: pl.DataFrame, edges: pl.DataFrame, prep: Preprocessor, with_labels: bool = True
) -> Graph:
    """A `Graph` of a feature table that `structure` has extended (it carries `cluster`)."""
    ids = frame["account_id"].to_list()
    index = pl.DataFrame({"account_id": ids, "i": np.arange(len(ids), dtype=np.int64)})
    coded = (
        edges.join(index.rename({"account_id": "src", "i": "a"}), on="src")
        .join(index.rename({"account_id": "dst", "i": "b"}), on="dst")
        .filter(pl.col("a") != pl.col("b"))
    )
    adjacency = []
    for t in LINK_TYPES:
        part = coded.filter(pl.col("edge_type") == t)
        src, dst = part["a"].to_numpy(), part["b"].to_numpy()
        w = part["weight"].to_numpy().astype(np.float32)
        rows, cols = np.concatenate([src, dst]), np.concatenate([dst, src])
        vals = np.concatenate([w, w])
        degree = np.bincount(rows, weights=vals, minlength=len(ids))
        vals = (vals / np.maximum(degree[rows], 1e-9)).astype(np.float32)
        adjacency.append((np.vstack([rows, cols]), vals))
    names = sorted(frame["cluster"].drop_nulls().unique().to_list())
    slot = {c: i for i, c in enumerate(names)}
    clusters = frame["cluster"].to_list()
    extra = iter(range(len(names), len(names) + len(ids)))
    cluster = np.array([slot[c] if c is not None else next(extra) for c in clusters], np.int64)
    graph = Graph(ids, prep.transform(frame), adjacency, cluster, names)
    if with_labels and "label" in frame.columns:
        y = frame["label"].fill_null(0).to_numpy().astype(np.float32)
        graph.y = y
        sums = np.bincount(cluster, weights=y, minlength=len(names))[: len(names)]
        sizes = np.bincount(cluster, minlength=len(names))[: len(names)]
        graph.cluster_y = (sums / np.maximum(sizes, 1) > 0.5).astype(np.float32)
    return graph


def extended(examples) -> list[pl.DataFrame]:
    """`structure` applied to each example (`worlds.Example`: features, edges, members)."""
    return [structure(ex.features, ex.edges, ex.members) for ex in examples]


def fit_preprocessor(frames: list[pl.DataFrame]) -> Preprocessor:
    """A preprocessor fitted on the legitimate accounts of labelled, extended frames."""
    stacked = pl.concat(frames, how="diagonal_relaxed")
    return Preprocessor.fit(stacked, stacked["label"].fill_null(0).to_numpy() == 0)
