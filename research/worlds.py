"""Labelled graphs for training and evaluation, built from simulated worlds and cached.

A `WorldSpec` names one simulated world (scenario, seed, size) and the windows it is cut into.
`build(spec)` simulates it, computes per-account features, typed links and clusters for each
window, joins the labels, and caches the result as Parquet, so experiments that reuse a world
(every baseline, every leave-one-tactic-out split) pay for it once.

`sparse=True` nulls a seeded random subset of the optional log columns before featurising,
because a provider's logs rarely carry every field the simulator writes (no source IPs, no
thinking parameters, no payment fingerprints): a model that never saw a missing field falls
over on the first real log that lacks one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl

from detector import simulate as sim
from detector.linking.frames import link_frames

CACHE_VERSION = "2"  # 2: archetypes with every campaign trait, domain randomisation
_PARTS = ("features", "edges", "members", "evidence")
DAY = 86400.0

# Optional columns that real logs often lack; `sparse` worlds null some of them.
DROPPABLE_REQUEST = (
    "api_key_id",
    "end_user_id",
    "session_id",
    "source_ip",
    "user_agent",
    "is_batch",
    "system",
    "n_messages",
    "n_tools",
    "thinking_mode",
    "thinking_budget_tokens",
    "max_tokens",
    "temperature",
    "response",
    "finish_reason",
    "usage_reasoning_tokens",
    "status_code",
)
DROPPABLE_ACCOUNT = (
    "email_domain",
    "payment_fingerprint",
    "billing_country",
    "signup_ip",
    "tier",
    "signup_channel",
)


@dataclass(frozen=True)
class WorldSpec:
    """One simulated world and the trailing windows (in days) it is featurised over."""

    scenario: str = "default"
    seed: int = 0
    accounts: int = 1500
    days: int = 14
    volume_scale: float = 0.3
    campaigns: tuple[str, ...] | None = None
    windows: tuple[int, ...] = (7, 14)
    sparse: bool = False
    randomise: float = 1.0  # domain-randomisation strength (`SimConfig.randomise`)
    tags: tuple[str, ...] = field(default=(), compare=False)

    @property
    def name(self) -> str:
        camp = "" if self.campaigns is None else "-" + "+".join(self.campaigns)
        wide = "" if self.randomise == 1.0 else f"-r{self.randomise:g}"
        return f"{self.scenario}{camp}-s{self.seed}{'-sparse' if self.sparse else ''}{wide}"

    def config(self) -> sim.SimConfig:
        overrides = {} if self.campaigns is None else {"campaigns": self.campaigns}
        cfg = sim.scenario(
            self.scenario,
            accounts=self.accounts,
            days=self.days,
            seed=self.seed,
            volume_scale=self.volume_scale,
        )
        return replace(cfg, randomise=self.randomise, **overrides)

    def key(self) -> str:
        spec = {k: v for k, v in asdict(self).items() if k != "tags"}
        if self.randomise == 1.0:  # the default: keys of earlier specs stay valid
            del spec["randomise"]
        text = json.dumps({"v": CACHE_VERSION, **spec}, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Example:
    """One window of one world: features with labels, typed edges and cluster members."""

    world: str
    window_days: int
    features: pl.DataFrame  # feature table + label, campaign, archetype
    edges: pl.DataFrame
    members: pl.DataFrame
    evidence: pl.DataFrame

    @property
    def labels(self) -> np.ndarray:
        return self.features["label"].to_numpy()


def thin_columns(world: sim.World, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The world's requests and accounts with a seeded random half of optional columns nulled."""
    rng = np.random.default_rng(seed + 7919)
    req_drop = [c for c in DROPPABLE_REQUEST if rng.random() < 0.5]
    acc_drop = [c for c in DROPPABLE_ACCOUNT if rng.random() < 0.5]
    return _null(world.requests, req_drop), _null(world.accounts, acc_drop)


def _null(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    return frame.with_columns(pl.lit(None, dtype=frame.schema[c]).alias(c) for c in columns)


def featurise(
    requests: pl.DataFrame,
    accounts: pl.DataFrame | None,
    labels: pl.DataFrame | None,
    end_s: float,
    window_days: int,
    world: str,
) -> Example:
    """Features, links and clusters over the `window_days` ending at `end_s`, labels joined."""
    feats, edges, clusters = link_frames(requests, accounts, end_s - window_days * DAY, end_s)
    if labels is not None:
        feats = feats.join(labels, on="account_id", how="left").with_columns(
            pl.col("label").fill_null(0)
        )
    return Example(world, window_days, feats, edges, clusters.members, clusters.evidence)


def build(spec: WorldSpec, cache: Path | None = None) -> list[Example]:
    """The examples of a world spec, from the cache when it holds them."""
    folder = None if cache is None else cache / f"{spec.name}-{spec.key()}"
    if folder is not None and (folder / "done").exists():
        return [_load(folder, spec.name, w) for w in spec.windows]
    world = sim.simulate(spec.config())
    requests, accounts = (
        thin_columns(world, spec.seed) if spec.sparse else (world.requests, world.accounts)
    )
    end_s = spec.config().start.timestamp() + spec.days * DAY
    examples = [
        featurise(requests, accounts, world.labels, end_s, w, spec.name) for w in spec.windows
    ]
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        for ex in examples:
            for part in _PARTS:
                getattr(ex, part).write_parquet(folder / f"w{ex.window_days}-{part}.parquet")
        (folder / "done").write_text(json.dumps(asdict(spec), default=list))
    return examples


def _load(folder: Path, name: str, window: int) -> Example:
    parts = {p: pl.read_parquet(folder / f"w{window}-{p}.parquet") for p in _PARTS}
    return Example(name, window, **parts)


def build_all(specs: list[WorldSpec], cache: Path | None, progress=None) -> list[Example]:
    """Examples of many specs; `progress(spec)` is called after each world."""
    out: list[Example] = []
    for spec in specs:
        out.extend(build(spec, cache))
        if progress is not None:
            progress(spec)
    return out
