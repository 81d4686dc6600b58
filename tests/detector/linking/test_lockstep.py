"""Lockstep edges: a swarm whose pairs share few windows is linked; busy look-alikes are not."""

from __future__ import annotations

import duckdb
import igraph as ig
import numpy as np
import polars as pl
import pytest

from detector.linking import EDGE_TYPES
from detector.linking.lockstep import (
    LockstepConfig,
    candidates_sql,
    edges_from,
    focus_edges,
    minutes_sql,
)
from detector.model.graph import LINK_TYPES

DAY = 86400
T0 = 1772409600  # 2026-03-02 00:00 UTC
DAYS = 7


def world(seed: int = 1, swarm: int = 200, share: float = 0.08) -> pl.DataFrame:
    """Signals (account_id, t_s, model, tools, thinking) of a week with:

    - a swarm of `swarm` accounts, each sending 6 requests a day at random on its own and
      joining a `share` of 420 bursts (60 a day; about half its requests), each within 20
      seconds, so every burst is hit by about 20 members;
    - 300 accounts of one company in one time zone, busy 09:00-17:00 sharp;
    - 200 accounts busy at the same popular evening hours (a smooth diurnal curve);
    - 30 accounts running cron jobs at :00 every hour.
    """
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, float]] = []
    bursts = rng.random(420) * DAYS * DAY
    for i in range(swarm):
        rows += [(f"swarm{i:03d}", T0 + t) for t in rng.random(6 * DAYS) * DAYS * DAY]
        rows += [
            (f"swarm{i:03d}", T0 + b + rng.random() * 20) for b in bursts if rng.random() < share
        ]
    for i in range(300):
        for d in range(DAYS):
            k = rng.poisson(60)
            rows += [
                (f"office{i:03d}", T0 + d * DAY + 9 * 3600 + t) for t in rng.random(k) * 8 * 3600
            ]
    for i in range(200):
        hours = rng.normal(20, 2, 30 * DAYS) % 24
        days = rng.integers(0, DAYS, hours.size)
        rows += [(f"evening{i:03d}", T0 + d * DAY + h * 3600) for d, h in zip(days, hours)]
    for i in range(30):
        rows += [(f"cron{i:02d}", T0 + h * 3600 + rng.random() * 20) for h in range(DAYS * 24)]
    return pl.DataFrame(rows, schema=["account_id", "t_s"], orient="row").with_columns(
        pl.lit("m-1").alias("request_model"),
        pl.lit(0).alias("n_tools"),
        pl.lit("disabled").alias("thinking_mode"),
        pl.lit("anthropic-sdk-python/0.40").alias("user_agent"),  # one build for all
    )


def lockstep_edges(signals: pl.DataFrame, cfg: LockstepConfig = LockstepConfig()) -> pl.DataFrame:
    con = duckdb.connect()
    con.register("signals", signals.to_arrow())
    found = pl.from_arrow(con.sql(candidates_sql(cfg)).to_arrow_table())
    return edges_from(found, cfg, EDGE_TYPES["lockstep"].strength)


def test_swarm_with_few_shared_windows_is_linked_into_one_component():
    signals = world()
    swarm = signals.filter(pl.col("account_id").str.starts_with("swarm"))
    windows = swarm.select("account_id", (pl.col("t_s") // 60).alias("w")).unique()
    # what makes it hard: a pair of members shares only a few percent of its windows
    sets = {a: set(w) for a, w in windows.group_by("account_id").agg("w").iter_rows()}
    ids = sorted(sets)[:20]
    overlap = [
        len(sets[a] & sets[b]) / min(len(sets[a]), len(sets[b])) for a in ids for b in ids if a < b
    ]
    assert float(np.mean(overlap)) < 0.05
    edges = lockstep_edges(signals)
    inside = edges.filter(
        pl.col("src").str.starts_with("swarm") & pl.col("dst").str.starts_with("swarm")
    )
    assert inside.height / (200 * 199 / 2) > 0.02
    assert inside.height == edges.height
    assert inside["evidence"][0].count("bursts of 60s together") == 1
    # pairs are weak, the swarm is not: its lockstep links connect nearly all of it
    ids = sorted(set(inside["src"]) | set(inside["dst"]))
    graph = ig.Graph(
        n=len(ids),
        edges=[(ids.index(a), ids.index(b)) for a, b in inside.select("src", "dst").iter_rows()],
    )
    assert max(graph.connected_components().sizes()) >= 170


def test_busy_hours_office_peaks_and_cron_are_not_lockstep():
    edges = lockstep_edges(world(seed=2))
    outside = edges.filter(
        ~pl.col("src").str.starts_with("swarm") | ~pl.col("dst").str.starts_with("swarm")
    )
    assert outside.is_empty()
    assert not edges.is_empty()  # the swarm in the same traffic still links


def test_no_swarm_no_edges():
    assert lockstep_edges(world(seed=3, swarm=0)).is_empty()


def test_accounts_that_rarely_meet_in_bursts_are_not_linked():
    # members join 4% of the bursts: pairs meet in about one burst a fortnight, which their
    # rates explain, so the (stated) false-link rate keeps them apart
    edges = lockstep_edges(world(seed=4, share=0.04))
    assert edges.height <= 5


def test_lockstep_joins_operations_but_is_neither_a_model_input_nor_a_cell_edge():
    assert "lockstep" not in LINK_TYPES
    assert not EDGE_TYPES["lockstep"].cell_input


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window_s": 7},
        {"pair_alpha": 0.0},
        {"min_co": 1},
        {"window_alpha": 1.5},
        {"focus_alpha": 1.0},
    ],
)
def test_bad_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        LockstepConfig(**kwargs)


def under_review(seed: int = 1, swarm: int = 30, share: float = 0.4) -> pl.DataFrame:
    """Signals of a week where a quiet swarm hides in a busy population:

    - 600 background accounts at about 100 requests a day each, round the clock (about 40
      active in any minute);
    - a swarm of `swarm` accounts, 3 requests a day each on its own, each joining a `share` of
      28 bursts (four a day, within 20 seconds), so a burst adds about a dozen accounts to a
      minute: no burst against the population;
    - accounts under review that are not the swarm: 20 office-hours accounts of one company,
      10 cron accounts at :00 and 20 accounts that signed up on the last day and are busy
      all of it (their rate is their rate while they exist, not over the week).
    """
    rng = np.random.default_rng(seed)
    rows: list[tuple[str, float]] = []
    for i in range(600):
        rows += [(f"bg{i:03d}", T0 + t) for t in rng.random(100 * DAYS) * DAYS * DAY]
    bursts = rng.random(4 * DAYS) * DAYS * DAY
    for i in range(swarm):
        rows += [(f"swarm{i:02d}", T0 + t) for t in rng.random(3 * DAYS) * DAYS * DAY]
        rows += [
            (f"swarm{i:02d}", T0 + b + rng.random() * 20) for b in bursts[rng.random(28) < share]
        ]
    for i in range(20):
        for d in range(DAYS):
            rows += [
                (f"office{i:02d}", T0 + d * DAY + 9 * 3600 + t)
                for t in rng.random(rng.poisson(60)) * 8 * 3600
            ]
    for i in range(10):
        rows += [(f"cron{i:02d}", T0 + h * 3600 + rng.random() * 20) for h in range(DAYS * 24)]
    for i in range(20):
        rows += [(f"late{i:02d}", T0 + (DAYS - 1) * DAY + t) for t in rng.random(400) * DAY]
    return pl.DataFrame(rows, schema=["account_id", "t_s"], orient="row").with_columns(
        pl.lit("m-1").alias("request_model"),
        pl.lit("anthropic-sdk-python/0.40").alias("user_agent"),
    )


def focus(signals: pl.DataFrame, cfg: LockstepConfig = LockstepConfig()) -> pl.DataFrame:
    """Lockstep among every account of `signals` that is not background."""
    con = duckdb.connect()
    con.register("signals", signals.to_arrow())
    minutes = pl.from_arrow(con.sql(minutes_sql(cfg)).to_arrow_table())
    review = signals.filter(~pl.col("account_id").str.starts_with("bg"))["account_id"].unique()
    return focus_edges(minutes, review, cfg, EDGE_TYPES["lockstep"].strength)


def test_a_swarm_that_makes_no_burst_is_linked_among_the_accounts_under_review():
    signals = under_review()
    swarm = lambda c: pl.col(c).str.starts_with("swarm")  # noqa: E731
    # against the whole population its bursts are within chance: no population-level edge
    assert lockstep_edges(signals).filter(swarm("src") & swarm("dst")).is_empty()
    edges = focus(signals)
    assert edges.filter(~swarm("src") | ~swarm("dst")).is_empty()  # office, cron, late: none
    ids = sorted(set(edges["src"]) | set(edges["dst"]))
    graph = ig.Graph(
        n=len(ids),
        edges=[(ids.index(a), ids.index(b)) for a, b in edges.select("src", "dst").iter_rows()],
    )
    assert (
        max(graph.connected_components().sizes()) >= 24
    )  # of 30: a member in few bursts stays out
    assert "windows of 60s together" in edges["evidence"][0]


@pytest.mark.parametrize("seed", [2, 3])
def test_independent_accounts_under_review_are_never_linked(seed):
    # the family-wise rate: with no swarm, no edge among office, cron and new accounts
    assert focus(under_review(seed=seed, swarm=0)).is_empty()
