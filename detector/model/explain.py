"""Reasons an analyst can check: which features and links moved an account's score.

Occlusion: for each feature, the flagged accounts' value is replaced by the legitimate median
and the model rerun; for each link type, the accounts' links of that type are removed. The drop
in the account's logit is that feature's or link's contribution, reported as its share of all
positive contributions ("weight 31%"). Logits, not calibrated scores: a confident model's score
sits at 0.9999 and barely moves when one piece of evidence goes, while its logit falls in
proportion. Occlusion is slower than gradients but means exactly what the reason says, and it
runs only on the flagged accounts' neighbourhood: the accounts within `layers` hops of them or
of their cluster mates, which is all that their scores depend on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

from detector.linking.edges import EDGE_TYPES
from detector.model.graph import LINK_TYPES, STRUCTURE_MEANING, Graph, TorchGraph
from detector.model.train import Fitted
from features.registry import FEATURES

MEANING = {f.name: f.meaning for f in FEATURES} | STRUCTURE_MEANING
MIN_SHARE = 0.05


@dataclass
class Attribution:
    """Score contributions of the target accounts: per numeric feature and per link type."""

    targets: np.ndarray  # indices into the graph
    base: np.ndarray  # logits
    features: np.ndarray  # [targets, numeric features] logit drop when set to the median
    links: np.ndarray  # [targets, link types] logit drop without that link type
    names: list[str]

    def shares(self) -> tuple[np.ndarray, np.ndarray]:
        """Contributions as shares of each target's total positive contribution."""
        total = np.clip(self.features, 0, None).sum(1) + np.clip(self.links, 0, None).sum(1)
        total = np.where(total > 0, total, 1.0)[:, None]
        return self.features / total, self.links / total


def attribute(fitted: Fitted, graph: Graph, targets: np.ndarray) -> Attribution:
    """Occlusion contributions for `targets` (indices into `graph`)."""
    names = list(fitted.prep.numeric)
    if targets.size == 0:
        return Attribution(
            targets, np.zeros(0), np.zeros((0, len(names))), np.zeros((0, len(LINK_TYPES))), names
        )
    sub, local = _neighbourhood(graph, targets, fitted.config.layers)
    net = fitted.net.eval()

    def scores(g: TorchGraph, adjacency=None) -> np.ndarray:
        with torch.no_grad():
            logits, _ = net(g, adjacency)
        return logits[local].double().numpy()

    base = scores(sub)
    feats = np.zeros((targets.size, len(names)))
    for j in range(len(names)):
        if names[j].startswith("deg_"):
            continue  # counted with its link type below
        x = sub.x.clone()
        x[local, j] = 0.0  # standardised legitimate median
        feats[:, j] = base - scores(TorchGraph(x, sub.adjacency, sub.cluster, sub.n_slots, 0))
    links = np.zeros((targets.size, len(LINK_TYPES)))
    for t, kind in enumerate(LINK_TYPES):
        # without its links of this type: no messages along them, and no degree either
        adjacency = [None if k == t else a for k, a in enumerate(sub.adjacency)]
        x = sub.x.clone()
        if f"deg_{kind}" in names:
            x[local, names.index(f"deg_{kind}")] = 0.0
        graph_t = TorchGraph(x, sub.adjacency, sub.cluster, sub.n_slots, 0)
        links[:, t] = base - scores(graph_t, adjacency)
    return Attribution(targets, base, feats, links, names)


def _neighbourhood(graph: Graph, targets: np.ndarray, hops: int) -> tuple[TorchGraph, np.ndarray]:
    """The subgraph the targets' scores depend on, and the targets' positions in it."""
    n = len(graph.ids)
    union = sp.csr_matrix((n, n))
    for index, weight in graph.adjacency:
        union = union + sp.csr_matrix((np.ones_like(weight), (index[0], index[1])), shape=(n, n))
    mates = np.isin(graph.cluster, np.unique(graph.cluster[targets]))
    keep = mates.copy()
    keep[targets] = True
    for _ in range(hops):
        keep = keep | (union @ keep.astype(np.float64) > 0)
    nodes = np.flatnonzero(keep)
    position = np.full(n, -1)
    position[nodes] = np.arange(nodes.size)
    adjacency = []
    for index, weight in graph.adjacency:
        inside = keep[index[0]] & keep[index[1]]
        idx = torch.from_numpy(position[index[:, inside]])
        adjacency.append(
            torch.sparse_coo_tensor(
                idx,
                torch.from_numpy(weight[inside]),
                (nodes.size, nodes.size),
                check_invariants=False,
            ).coalesce()
        )
    _, cluster = np.unique(graph.cluster[nodes], return_inverse=True)
    sub = TorchGraph(
        x=torch.from_numpy(graph.x[nodes]),
        adjacency=adjacency,
        cluster=torch.from_numpy(cluster.astype(np.int64)),
        n_slots=int(cluster.max()) + 1,
        n_clusters=0,
    )
    return sub, position[targets]


def account_reasons(
    attr: Attribution,
    frame: pl.DataFrame,
    edges: pl.DataFrame,
    medians: dict[str, float],
    top_features: int = 3,
    top_links: int = 2,
) -> list[list[str]]:
    """Human-readable reasons per target: top features and links by score contribution."""
    ids = frame["account_id"].to_list()
    linked = _link_summary(edges, [ids[i] for i in attr.targets])
    feature_share, link_share = attr.shares()
    out = []
    for row, i in enumerate(attr.targets):
        account = ids[i]
        reasons = []
        order = np.argsort(-attr.features[row])
        picked = [
            j
            for j in order
            if feature_share[row, j] >= MIN_SHARE and not attr.names[j].startswith("deg_")
        ]
        for j in (picked or list(order[:1]))[:top_features]:
            name = attr.names[j]
            value = frame[name][int(i)]
            reasons.append(
                f"{name} = {_fmt(value)} vs legitimate median {_fmt(medians.get(name, 0.0))} "
                f"({MEANING.get(name, name)}; weight {feature_share[row, j]:.0%})"
            )
        for t in np.argsort(-attr.links[row])[:top_links]:
            if link_share[row, t] < MIN_SHARE:
                continue
            kind = LINK_TYPES[t]
            count, example = linked.get((account, kind), (0, None))
            shared = f", e.g. {example}" if example else ""
            reasons.append(
                f"linked to {count} account(s): {EDGE_TYPES[kind].meaning}{shared} "
                f"(weight {link_share[row, t]:.0%})"
            )
        out.append(reasons)
    return out


def campaign_reasons(
    attr: Attribution,
    member_cluster: list[str | None],
    frame: pl.DataFrame,
    evidence: pl.DataFrame,
    medians: dict[str, float],
    top_features: int = 3,
    top_links: int = 3,
) -> dict[str, list[str]]:
    """Per cluster with flagged members: the features that moved its members most, on average,
    with the members' median value, and the link types that hold it together."""
    out: dict[str, list[str]] = {}
    clusters = np.asarray(member_cluster, dtype=object)
    feature_share = attr.shares()[0]
    by_cluster = evidence.partition_by("cluster", as_dict=True, maintain_order=True)
    no_evidence = evidence.clear()
    for name in sorted({c for c in member_cluster if c is not None}):
        rows = np.flatnonzero(clusters == name)
        mean = feature_share[rows].mean(axis=0)
        idx = attr.targets[rows]
        reasons = []
        for j in [j for j in np.argsort(-mean) if not attr.names[j].startswith("deg_")][
            :top_features
        ]:
            if mean[j] < MIN_SHARE and reasons:
                break
            feature = attr.names[j]
            value = float(np.median(frame[feature].to_numpy()[idx]))
            reasons.append(
                f"members' median {feature} = {_fmt(value)} vs legitimate median "
                f"{_fmt(medians.get(feature, 0.0))} ({MEANING.get(feature, feature)}; "
                f"weight {mean[j]:.0%})"
            )
        held = by_cluster.get((name,), no_evidence)
        for ev in held.head(top_links).iter_rows(named=True):
            values = ", ".join(ev["top_values"][:2])
            reasons.append(
                f"{ev['n_edges']} link(s): {EDGE_TYPES[ev['edge_type']].meaning}"
                + (f" (shared: {values})" if values else "")
            )
        out[name] = reasons
    return out


def _link_summary(
    edges: pl.DataFrame, accounts: list[str] | None = None
) -> dict[tuple[str, str], tuple[int, str | None]]:
    """Per (account, link type): how many links, and the example a reason quotes: the evidence
    of its heaviest link of that type, ties broken by the text, so reruns quote the same one.
    With `accounts`, only theirs (the accounts being explained, not every end of every edge)."""
    columns = ("edge_type", "weight", "evidence")
    ends = pl.concat(
        [
            edges.select(pl.col("src").alias("account_id"), *columns),
            edges.select(pl.col("dst").alias("account_id"), *columns),
        ]
    )
    if accounts is not None:
        ends = ends.filter(pl.col("account_id").is_in(accounts))
    n = ends.group_by("account_id", "edge_type").len("n")
    example = (
        ends.drop_nulls("evidence")
        .sort(["weight", "evidence"], descending=[True, False])
        .group_by("account_id", "edge_type", maintain_order=True)
        .agg(pl.col("evidence").first().alias("example"))
    )
    summary = n.join(example, on=["account_id", "edge_type"], how="left")
    return {(r[0], r[1]): (r[2], r[3]) for r in summary.iter_rows()}


def _fmt(value) -> str:
    value = float(value)
    if value == int(value) and abs(value) < 1e12:
        return str(int(value))
    return f"{value:.3g}"
