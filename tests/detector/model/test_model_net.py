"""The network: shapes, cluster pooling, and that messages travel exactly along links."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from detector.model.config import ModelConfig
from detector.model.graph import LINK_TYPES, Graph, Preprocessor, make_graph, structure
from detector.model.net import DetectorNet, pool
from tests.detector.model.conftest import EDGE_SCHEMA


def _graph(n_features=4):
    """Five accounts: a-b linked by payment, b-c by template, d alone, e alone; {a,b} a cluster."""
    ids = ["a", "b", "c", "d", "e"]
    frame = pl.DataFrame(
        {
            "account_id": ids,
            "n_requests": [1.0, 2.0, 3.0, 4.0, 5.0],
            "share_elicitation": [0.1, 0.2, 0.3, 0.4, 0.5],
            "cluster": ["c00000", "c00000", None, None, None],
            "label": [1, 1, 0, 0, 0],
        }
    )
    edges = pl.DataFrame(
        [("a", "b", "payment", 1.0, "pm"), ("b", "c", "template", 0.5, "t")],
        schema=EDGE_SCHEMA,
        orient="row",
    )
    prep = Preprocessor.fit(frame, np.ones(5, bool))
    return make_graph(frame, edges, prep), prep


def _dense(pair, n=5):
    index, weight = pair
    out = np.zeros((n, n))
    np.add.at(out, (index[0], index[1]), weight)
    return out


def test_adjacency_is_symmetric_and_row_normalised():
    g, _ = _graph()
    dense = _dense(g.adjacency[LINK_TYPES.index("payment")])
    assert dense[0, 1] == pytest.approx(1.0) and dense[1, 0] == pytest.approx(1.0)
    t = _dense(g.adjacency[LINK_TYPES.index("template")])
    assert t[1, 2] == pytest.approx(1.0) and t[2, 1] == pytest.approx(1.0)
    assert dense.sum(1)[[3, 4]].tolist() == [0.0, 0.0]


def test_clusters_first_then_one_slot_per_loner():
    g, _ = _graph()
    assert g.cluster_names == ["c00000"]
    assert g.cluster.tolist()[:2] == [0, 0]
    assert sorted(g.cluster.tolist()[2:]) == [1, 2, 3]
    assert g.cluster_y.tolist() == [1.0]


def test_pool_matches_numpy_mean_and_max():
    h = torch.tensor([[1.0, 5.0], [3.0, 1.0], [2.0, 2.0]])
    out, size = pool(h, torch.tensor([0, 0, 1]), 2)
    assert out[0].tolist() == [2.0, 3.0, 3.0, 5.0]
    assert out[1].tolist() == [2.0, 2.0, 2.0, 2.0]
    assert size.tolist() == [2.0, 1.0]


def test_messages_follow_links_two_hops_and_no_further():
    g, _ = _graph()
    torch.manual_seed(0)
    net = DetectorNet(
        ModelConfig(g.x.shape[1], len(LINK_TYPES), hidden=8, layers=2, dropout=0.0)
    ).eval()
    base = net(g.tensors())[0].detach().numpy()

    def changed(node):
        x = g.x.copy()
        x[node] += 3.0
        moved = Graph(g.ids, x, g.adjacency, g.cluster, g.cluster_names)
        return np.abs(net(moved.tensors())[0].detach().numpy() - base) > 1e-6

    # c reaches b (1 hop) and a (2 hops); nothing reaches the loners d and e
    assert changed(2).tolist() == [True, True, True, False, False]
    # d is linked to nobody and in no cluster: only d moves
    assert changed(3).tolist() == [False, False, False, True, False]


def test_forward_shapes_and_campaign_head_per_real_cluster():
    g, _ = _graph()
    net = DetectorNet(ModelConfig(g.x.shape[1], len(LINK_TYPES))).eval()
    account, campaign = net(g.tensors())
    assert account.shape == (5,) and campaign.shape == (1,)


def test_preprocessor_handles_unseen_category_and_missing_columns():
    frame = pl.DataFrame(
        {
            "account_id": ["a", "b", "c"],
            "n_requests": [10.0, 1000.0, 100000.0],
            "signup_channel": ["self_serve", "education", None],
        }
    )
    prep = Preprocessor.fit(frame, np.ones(3, bool))
    assert "n_requests" in prep.log
    new = pl.DataFrame({"account_id": ["x"], "signup_channel": ["brand_new_path"]})
    x = prep.transform(new)
    assert x.shape == (1, len(prep.columns))
    row = dict(zip(prep.columns, x[0], strict=True))
    assert row["signup_channel=other"] == 1.0
    assert np.isfinite(x).all() and np.abs(x).max() <= 8.0
    again = Preprocessor.from_dict(prep.to_dict())
    assert np.array_equal(again.transform(frame), prep.transform(frame))


def test_structure_adds_degree_per_link_type_and_cluster_size():
    frame = pl.DataFrame({"account_id": ["a", "b", "c"]})
    edges = pl.DataFrame([("a", "b", "payment", 2.0, "pm")], schema=EDGE_SCHEMA, orient="row")
    members = pl.DataFrame(
        {"account_id": ["a", "b", "c"], "cluster": ["c0", "c0", None], "cluster_size": [2, 2, 1]}
    )
    out = structure(frame, edges, members).sort("account_id")
    assert out["deg_payment"].to_list() == [2.0, 2.0, 0.0]
    assert out["deg_template"].to_list() == [0.0, 0.0, 0.0]
    assert out["cluster_size"].to_list() == [2.0, 2.0, 1.0]


def test_unfamiliar_names_inputs_beyond_the_training_range_and_new_categories():
    frame = pl.DataFrame(
        {
            "account_id": ["a", "b", "c", "d"],
            "n_requests": [10.0, 100.0, 1000.0, 5000.0],
            "mean_tools": [0.0, 1.0, 2.0, 3.0],
            "signup_channel": ["self_serve", "education", "self_serve", None],
        }
    )
    prep = Preprocessor.fit(frame, np.ones(4, bool))
    assert Preprocessor.from_dict(prep.to_dict()).high == prep.high
    new = pl.DataFrame(
        {
            "account_id": ["inside", "edge", "far", "new_path", "missing"],
            "n_requests": [500.0, 5200.0, 5e8, 50.0, None],
            "mean_tools": [1.5, 3.0, 90.0, 1.0, None],
            "signup_channel": ["education", "self_serve", "self_serve", "brand_new", None],
        }
    )
    why = prep.unfamiliar(new)
    assert why[0] == [] and why[1] == [] and why[4] == []  # in range, just past it, missing
    assert len(why[2]) == 2 and all("above every training account" in w for w in why[2])
    assert why[2][0].startswith("mean_tools = 90")  # the farthest first
    assert why[3] == ["signup_channel = 'brand_new', never seen in training"]
    assert prep.unfamiliar(new, limit=1)[2] == why[2][:1]


def test_structure_adds_population_percentiles_within_the_window():
    frame = pl.DataFrame({"account_id": ["a", "b", "c", "d"], "n_requests": [1.0, 5.0, 5.0, None]})
    edges = pl.DataFrame(schema=EDGE_SCHEMA)
    members = pl.DataFrame(
        schema={"account_id": pl.String, "cluster": pl.String, "cluster_size": pl.Int64}
    )
    out = structure(frame, edges, members).sort("account_id")
    assert out["pct_n_requests"].to_list() == pytest.approx([1 / 6, 2 / 3, 2 / 3, 0.5])
    assert out["pct_mean_tools"].to_list() == [0.5] * 4  # absent feature: the middle
    doubled = structure(frame.with_columns(pl.col("n_requests") * 100), edges, members)
    assert doubled.sort("account_id")["pct_n_requests"].equals(out["pct_n_requests"])
