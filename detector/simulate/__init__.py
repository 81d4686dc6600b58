"""A traffic simulator with labelled distillation campaigns, hard negatives and evasion knobs.

`simulate(config)` returns the three contract tables (requests, accounts, labels) as polars
frames; nothing here writes files. See data/SIMULATOR.md for the archetypes and tactics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from faker import Faker

from detector.simulate import corpus
from detector.simulate.archetypes import ARCHETYPES, realise
from detector.simulate.config import CAMPAIGNS, SCENARIOS, Knobs, SimConfig, scenario
from detector.simulate.traffic import build_requests
from detector.simulate.world import build_accounts
from features.schema import ACCOUNTS, REQUESTS, polars_schema


@dataclass(frozen=True)
class World:
    """A simulated world: contract tables, labels with each account's archetype, and per-request
    ground truth (`kinds`: request_id and the prompt kind the simulator drew) for evaluation."""

    config: SimConfig
    requests: pl.DataFrame
    accounts: pl.DataFrame
    labels: pl.DataFrame
    kinds: pl.DataFrame


def simulate(config: SimConfig) -> World:
    """Generate a world; the same config (seed included) always gives the same world."""
    rng = np.random.default_rng(config.seed)
    fake = Faker("en_US")
    fake.seed_instance(config.seed)
    corpus.seed_locales(config.seed)
    archetypes = realise(ARCHETYPES, rng, config.randomise)
    accounts = build_accounts(config, archetypes, rng, fake)
    requests = build_requests(config, accounts, archetypes, rng, fake)
    return World(
        config=config,
        requests=requests.select(REQUESTS.names).cast(polars_schema(REQUESTS)),
        accounts=accounts.select(ACCOUNTS.names),
        labels=accounts.select(
            "account_id",
            pl.col("label").cast(pl.Int8),
            "campaign",
            "archetype",
        ),
        kinds=requests.select("request_id", pl.col("_kind").alias("kind")),
    )


__all__ = ["CAMPAIGNS", "SCENARIOS", "Knobs", "SimConfig", "World", "scenario", "simulate"]
