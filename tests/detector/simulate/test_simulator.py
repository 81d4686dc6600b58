"""The simulator: contract schema, determinism, labels, archetypes, and what each knob changes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from detector.simulate import CAMPAIGNS, SCENARIOS, Knobs, SimConfig, scenario, simulate
from detector.simulate.archetypes import ARCHETYPES, realise, trait_matrix, with_trait_table
from detector.simulate.traffic import MODELS
from detector.simulate.world import TZ_OF
from features.schema import ACCOUNTS, LABELS, REQUESTS, polars_schema

BASE = SimConfig(accounts=400, days=6, seed=3)


@pytest.fixture(scope="module")
def world():
    return simulate(BASE)


def with_labels(world) -> pl.DataFrame:
    return world.requests.join(world.labels, on="account_id")


def test_tables_follow_the_contract(world):
    assert dict(world.requests.schema) == polars_schema(REQUESTS)
    assert dict(world.accounts.schema) == polars_schema(ACCOUNTS)
    assert world.labels.columns == [*LABELS.names, "archetype"]
    assert world.requests["request_id"].is_unique().all()
    for name in REQUESTS.required:
        assert world.requests[name].null_count() == 0, name
    assert world.accounts["account_id"].is_unique().all()


def test_same_seed_same_world_and_other_seed_differs():
    small = replace(BASE, accounts=120, days=2)
    a, b, c = simulate(small), simulate(small), simulate(replace(small, seed=4))
    assert a.requests.equals(b.requests) and a.accounts.equals(b.accounts)
    assert not a.requests.equals(c.requests)


def test_label_counts_and_campaign_names(world):
    labels = world.labels
    campaign = labels.filter(pl.col("label") == 1)
    assert 0.06 <= campaign.height / labels.height <= 0.15
    assert set(campaign["campaign"].unique()) == set(CAMPAIGNS)
    assert (
        labels.filter(pl.col("label") == 0)["campaign"].null_count()
        == labels.filter(pl.col("label") == 0).height
    )


def test_every_archetype_and_tactic_appears(world):
    assert set(world.labels["archetype"].unique()) == set(ARCHETYPES)
    kinds = set(world.kinds["kind"].unique())
    assert {
        "elicit",
        "rubric",
        "rewrite",
        "agentic",
        "reconstruct",
        "self_instruct",
        "benchmark",
        "judge_product",
        "catalogue",
    } <= kinds


def test_reconstruction_comes_later_in_the_window(world):
    frame = world.requests.join(world.kinds, on="request_id")
    mid = BASE.start + pl.duration(days=BASE.days / 2)
    early = frame.filter(pl.col("ts") < mid)
    assert early.filter(pl.col("kind") == "reconstruct").height == 0
    assert frame.filter(pl.col("kind") == "reconstruct").height > 0


def test_hydra_moves_to_the_new_model_within_a_day(world):
    release = BASE.start + pl.duration(days=BASE.release_day)
    day_after = with_labels(world).filter(
        (pl.col("ts") >= release) & (pl.col("ts") < release + pl.duration(days=1))
    )
    share = day_after.group_by("archetype").agg(
        (pl.col("request_model") == MODELS[-1]).mean().alias("new")
    )
    new = dict(share.iter_rows())
    assert new["hydra_proxy"] > 0.2  # about half, as reported, less the randomised spread
    assert new["hydra_proxy"] > 2 * max(new["hobbyist"], new["product_backend"])
    assert new["hobbyist"] < 0.15 and new["product_backend"] < 0.15
    before = world.requests.filter(pl.col("ts") < release)
    assert (before["request_model"] == MODELS[-1]).sum() == 0


def test_tokens_are_consistent(world):
    r = world.requests
    ok = r.filter(pl.col("status_code") == 200)
    assert (ok["usage_output_tokens"] >= ok["usage_reasoning_tokens"].fill_null(0)).all()
    thinking = ok.filter(pl.col("thinking_mode") == "enabled")
    assert (thinking["usage_reasoning_tokens"] <= thinking["thinking_budget_tokens"]).all()
    assert (ok["usage_output_tokens"] <= ok["max_tokens"]).all()
    assert (r["usage_input_tokens"] >= r["prompt"].str.len_chars() // 4).all()
    failed = r.filter(pl.col("status_code") != 200)
    assert failed["response"].null_count() == failed.height
    assert set(r["status_code"].unique()) >= {200, 429, 500}


def test_volume_is_heavy_tailed(world):
    per_account = world.requests.group_by("account_id").len()["len"].to_numpy()
    assert np.percentile(per_account, 99) > 10 * np.median(per_account)


def _night_share(world, requests) -> float:
    """Share of requests sent between midnight and 8am in the billing country's time zone."""
    tz = pl.col("billing_country").replace_strict(TZ_OF, return_dtype=pl.Int32)
    local = (pl.col("ts").dt.hour().cast(pl.Int32) + tz) % 24
    joined = requests.join(world.accounts, on="account_id")
    return joined.select((local < 8).mean()).item()


def _campaign_stat(cfg: SimConfig, stat) -> float:
    w = simulate(cfg)
    return stat(
        w, with_labels(w).filter(pl.col("label") == 1), w.labels.filter(pl.col("label") == 1)
    )


KNOB_CASES = [
    # knob, statistic over campaign traffic, direction
    (
        "paraphrase",
        Knobs(paraphrase=1.0),
        lambda w, r, a: (
            r.join(w.kinds, on="request_id")
            .filter(pl.col("kind") == "elicit")["prompt"]
            .str.split("\n\n")
            .list.last()
            .n_unique()
        ),
        "up",
    ),
    ("low_and_slow", Knobs(low_and_slow=0.1), lambda w, r, a: r.height / a.height, "down"),
    (
        "distinct_infra",
        Knobs(distinct_infra=True),
        lambda w, r, a: (
            a.join(w.accounts, on="account_id")["payment_fingerprint"].n_unique() / a.height
        ),
        "up",
    ),
    (
        "distinct_infra_ips",
        Knobs(distinct_infra=True),
        lambda w, r, a: r["source_ip"].n_unique() / r.height,
        "up",
    ),
    (
        "staggered_creation",
        Knobs(staggered_creation=True),
        lambda w, r, a: a.join(w.accounts, on="account_id")["created_at"].dt.epoch("s").std(),
        "up",
    ),
    (
        "round_robin_off",
        Knobs(round_robin=False),
        lambda w, r, a: (lambda c: c.std() / c.mean())(r.group_by("account_id").len()["len"]),
        "up",
    ),
    (
        "cover_share",
        Knobs(cover_share=0.5),
        lambda w, r, a: r.join(w.kinds, on="request_id")["kind"].is_in(["question", "code"]).mean(),
        "up",
    ),
    (
        "mimic_diurnal",
        Knobs(mimic_diurnal=True),
        lambda w, r, a: _night_share(w, r),
        "down",
    ),
]


@pytest.mark.parametrize(
    ("name", "knobs", "stat", "direction"), KNOB_CASES, ids=[c[0] for c in KNOB_CASES]
)
def test_knob_changes_what_it_claims(name, knobs, stat, direction):
    base = replace(BASE, accounts=250, days=4, seed=11)
    before = _campaign_stat(base, stat)
    after = _campaign_stat(replace(base, knobs=knobs), stat)
    assert (after > before * 1.2) if direction == "up" else (after < before * 0.5), (before, after)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_builds(name):
    cfg = scenario(name, accounts=150, days=2, seed=1)
    world = simulate(cfg)
    assert world.requests.height > 0
    if name == "no_campaigns":
        assert world.labels["label"].sum() == 0


def test_benign_heavy_has_a_hundred_legit_per_campaign_account():
    labels = simulate(scenario("benign_heavy", accounts=3000, days=1, seed=2)).labels
    ratio = (labels["label"] == 0).sum() / (labels["label"] == 1).sum()
    assert 60 <= ratio <= 110


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"accounts": 5}, "accounts must be at least 20"),
        ({"days": 0}, "days must be in"),
        ({"campaigns": ("nope",)}, "campaigns must be among"),
    ],
)
def test_bad_config_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SimConfig(**kwargs)


def test_unknown_scenario_is_refused():
    with pytest.raises(ValueError, match="scenario must be one of"):
        scenario("chaos")


def test_knob_range_is_checked():
    with pytest.raises(ValueError, match="cover_share must be in"):
        Knobs(cover_share=1.5)


def test_every_campaign_trait_is_carried_by_two_legitimate_archetypes():
    for row in trait_matrix():
        assert row["campaigns"], row
        assert len(row["legitimate"]) >= 2, row


def test_the_documented_trait_matrix_is_current():
    doc = (Path(__file__).parents[3] / "data" / "SIMULATOR.md").read_text()
    assert with_trait_table(doc) == doc, "stale trait matrix: run python -m research.simulator_doc"


def test_randomised_worlds_differ_in_archetype_parameters():
    a = realise(ARCHETYPES, np.random.default_rng(1), 1.0)
    b = realise(ARCHETYPES, np.random.default_rng(2), 1.0)
    assert realise(ARCHETYPES, np.random.default_rng(1), 0.0) == ARCHETYPES
    for name in ("agent_platform", "eval_harness", "hydra_proxy"):
        assert a[name].rate != b[name].rate and a[name].kinds != b[name].kinds
        assert a[name].kinds.keys() == ARCHETYPES[name].kinds.keys()
        assert abs(sum(a[name].kinds.values()) - 1) < 1e-9
