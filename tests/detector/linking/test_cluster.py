"""Leiden clusters on toy graphs with exact answers, and on a simulated world with floors."""

from __future__ import annotations

import polars as pl
import pytest

from detector.linking import ClusterConfig, cluster
from detector.linking.frames import link_frames
from detector.linking.quality import benign_in_campaign_clusters, campaign_cohesion
from detector.simulate import SimConfig, simulate


def edges(rows: list[tuple[str, str, str, float, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema=["src", "dst", "edge_type", "weight", "evidence"], orient="row"
    )


def test_two_cliques_and_a_loner():
    def clique(names, value):
        return [(a, b, "payment", 0.8, value) for i, a in enumerate(names) for b in names[i + 1 :]]

    e = edges(
        clique(["a", "b", "c", "d"], "pm_1")
        + clique(["e", "f", "g"], "pm_2")
        + [("d", "e", "behaviour", 0.16, "cos")]
    )
    out = cluster(pl.Series(list("abcdefgh")), e)
    groups = out.members.group_by("cluster").agg(pl.col("account_id").sort()).sort("cluster")
    assert groups.filter(pl.col("cluster").is_not_null())["account_id"].to_list() == [
        list("abcd"),
        list("efg"),
    ]
    assert out.members.filter(pl.col("account_id") == "h").row(0, named=True) == {
        "account_id": "h",
        "cluster": None,
        "cluster_size": 1,
    }


def test_light_edges_are_left_out():
    e = edges([("a", "b", "model_switch", 0.1, "hour 5")])
    out = cluster(pl.Series(["a", "b"]), e, ClusterConfig(min_weight=0.15))
    assert out.members["cluster"].null_count() == 2


def test_types_between_a_pair_add_up():
    e = edges(
        [("a", "b", "model_switch", 0.1, "hour 5"), ("a", "b", "source_subnet", 0.1, "10.0.0")]
    )
    out = cluster(pl.Series(["a", "b"]), e, ClusterConfig(min_weight=0.15))
    assert out.members["cluster"].n_unique() == 1 and out.members["cluster"].null_count() == 0


def test_evidence_names_types_and_shared_values():
    e = edges(
        [
            ("a", "b", "payment", 0.8, "pm_1"),
            ("a", "c", "payment", 0.8, "pm_1"),
            ("b", "c", "source_subnet", 0.3, "10.1.2"),
        ]
    )
    ev = cluster(pl.Series(["a", "b", "c"]), e).evidence
    assert ev["edge_type"].to_list() == ["payment", "source_subnet"]
    assert ev.row(0, named=True)["top_values"] == ["pm_1"] and ev.row(0, named=True)["n_edges"] == 2


def test_cluster_ids_are_deterministic():
    e = edges([("a", "b", "payment", 0.8, "x"), ("c", "d", "payment", 0.8, "y")])
    first = cluster(pl.Series(list("abcd")), e).members
    assert first.equals(cluster(pl.Series(list("dcba")), e).members)
    assert first["cluster"].to_list() == ["c00000", "c00000", "c00001", "c00001"]


def test_bad_resolution_is_refused():
    with pytest.raises(ValueError, match="resolution must be positive"):
        ClusterConfig(resolution=0)


@pytest.fixture(scope="module")
def world_clusters():
    world = simulate(SimConfig(accounts=500, days=5, seed=21))
    start = world.config.start.timestamp()
    _, _, clusters = link_frames(world.requests, world.accounts, start, start + 5 * 86400)
    return world, clusters


def test_each_campaign_falls_mostly_in_one_cluster(world_clusters):
    world, clusters = world_clusters
    cohesion = campaign_cohesion(clusters.members, world.labels)
    assert cohesion.height == 5
    # the campaigns that share infrastructure; the quiet ones share little but timing by design
    linked = cohesion.filter(
        pl.col("campaign").is_in(["reasoning_grading", "agentic_capability", "hydra_proxy"])
    )
    assert linked.height == 3 and (linked["share_in_largest"] >= 0.8).all(), cohesion


def test_hard_negative_groups_stay_out_of_campaign_clusters(world_clusters):
    world, clusters = world_clusters
    merged = dict(benign_in_campaign_clusters(clusters.members, world.labels).iter_rows())
    assert merged.get("university_lab", 0) == 0
    assert merged.get("company_workspace", 0) == 0
    assert sum(merged.values()) <= 0.02 * (world.labels["label"] == 0).sum()
