"""Accounts of a simulated world: archetypes, groups, metadata and infrastructure.

Each account has one archetype. Legitimate archetypes include hard negatives that look like
distillation (benchmark runners, judge products, universities behind NAT, companies with several
workspaces on one card, templated bulk generation). Campaign archetypes follow the public reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import polars as pl
from faker import Faker

from detector.simulate.config import SimConfig


@dataclass(frozen=True)
class Archetype:
    """How one kind of account behaves."""

    name: str
    label: int
    share: float  # of legitimate accounts (legit) or of campaign accounts (campaign)
    rate: float  # median requests per active day
    sigma: float  # log-normal spread of the per-account rate
    profile: str  # timing: evening, business, consumer, flat, bursty, sync
    kinds: dict[str, float]  # prompt kinds and their shares
    thinking: float = 0.1  # share of requests with thinking enabled
    batch: float = 0.0  # share of requests through the batch API
    group: tuple[int, int] = (1, 1)  # accounts per group (same org / NAT / campaign cell)
    channels: tuple[str, ...] = ("self_serve",)
    adopt_days: float = 6.0  # mean lag to adopt a newly released model
    adopt_share: float = 0.6  # share of traffic on the new model once adopted


LEGIT = (
    Archetype("hobbyist", 0, 0.35, 4, 1.0, "evening", {"question": 0.8, "code": 0.2}),
    Archetype(
        "product_backend",
        0,
        0.12,
        150,
        1.2,
        "consumer",
        {"support": 1.0},
        0.02,
        channels=("self_serve", "enterprise", "reseller"),
    ),
    Archetype(
        "enterprise_rag", 0, 0.10, 60, 1.0, "business", {"rag": 1.0}, 0.05, channels=("enterprise",)
    ),
    Archetype("coding_agent", 0, 0.13, 40, 1.0, "business", {"agent_code": 0.7, "code": 0.3}, 0.3),
    Archetype(
        "benchmark_runner",
        0,
        0.03,
        150,
        0.8,
        "bursty",
        {"benchmark": 1.0},
        0.5,
        0.3,
        channels=("self_serve", "startup_program"),
    ),
    Archetype("judge_product", 0, 0.02, 120, 0.8, "consumer", {"judge_product": 1.0}, 0.1),
    Archetype(
        "university_lab",
        0,
        0.08,
        8,
        0.9,
        "business",
        {"question": 0.5, "code": 0.3, "cot_homework": 0.2},
        0.15,
        group=(15, 60),
        channels=("education",),
    ),
    Archetype(
        "company_workspace",
        0,
        0.06,
        40,
        1.0,
        "business",
        {"support": 0.5, "rag": 0.3, "code": 0.2},
        0.05,
        group=(3, 8),
        channels=("enterprise", "self_serve"),
    ),
    Archetype("catalogue_bulk", 0, 0.03, 250, 0.7, "business", {"catalogue": 1.0}, 0.0, 0.6),
)

CAMPAIGN = {
    "reasoning_grading": Archetype(
        "reasoning_grading",
        1,
        0.2,
        60,
        0.5,
        "sync",
        {"elicit": 0.55, "rubric": 0.3, "rewrite": 0.15},
        0.9,
        group=(4, 12),
        channels=("self_serve", "education"),
        adopt_days=2.0,
    ),
    "agentic_capability": Archetype(
        "agentic_capability",
        1,
        0.3,
        80,
        0.7,
        "flat",
        {"agentic": 0.6, "code": 0.15, "reconstruct": 0.25},
        0.6,
        0.25,
        group=(6, 20),
        channels=("self_serve", "startup_program", "enterprise"),
        adopt_days=2.0,
    ),
    "hydra_proxy": Archetype(
        "hydra_proxy",
        1,
        0.5,
        100,
        0.3,
        "flat",
        {"elicit": 0.35, "self_instruct": 0.25, "agentic": 0.15, "question": 0.25},
        0.7,
        group=(20, 80),
        channels=("reseller", "self_serve"),
        adopt_days=0.5,
        adopt_share=0.5,
    ),
}

ARCHETYPES = {a.name: a for a in (*LEGIT, *CAMPAIGN.values())}

FREEMAIL = ("gmail.com", "outlook.com", "yahoo.com", "proton.me", "icloud.com", "qq.com", "163.com")
COUNTRIES = (
    "US",
    "GB",
    "DE",
    "FR",
    "IN",
    "BR",
    "JP",
    "KR",
    "CA",
    "AU",
    "SG",
    "NL",
    "ES",
    "IT",
    "PL",
)
TZ_OF = {
    "US": -6,
    "GB": 0,
    "DE": 1,
    "FR": 1,
    "IN": 5,
    "BR": -3,
    "JP": 9,
    "KR": 9,
    "CA": -5,
    "AU": 10,
    "SG": 8,
    "NL": 1,
    "ES": 1,
    "IT": 1,
    "PL": 1,
}
CLOUD_RANGES = (0x22000000, 0x23000000, 0x34000000)  # big shared cloud /8s (many customers)


def _ip24(rng: np.random.Generator) -> int:
    """A random routable /24 base address."""
    return (
        int(rng.integers(11, 223)) << 24
        | int(rng.integers(0, 256)) << 16
        | int(rng.integers(0, 256)) << 8
    )


def _assign(rng: np.random.Generator, cfg: SimConfig) -> list[tuple[Archetype, str | None, int]]:
    """(archetype, campaign, group number) for every account."""
    n_campaign = int(round(cfg.accounts * cfg.campaign_share)) if cfg.campaigns else 0
    chosen = [CAMPAIGN[c] for c in cfg.campaigns]
    shares = np.array([a.share for a in chosen]) if chosen else np.array([])
    counts = np.floor(shares / shares.sum() * n_campaign).astype(int) if n_campaign else []
    out: list[tuple[Archetype, str | None, int]] = []
    group = 0
    for arch, k in zip(chosen, counts):
        k = max(int(k), arch.group[0])
        remaining = k
        while remaining > 0:
            size = min(remaining, int(rng.integers(arch.group[0], arch.group[1] + 1)))
            out.extend((arch, arch.name, group) for _ in range(size))
            group += 1
            remaining -= size
    n_legit = cfg.accounts - len(out)
    shares = np.array([a.share for a in LEGIT])
    targets = np.floor(shares / shares.sum() * n_legit).astype(int)
    targets[0] += n_legit - targets.sum()  # the remainder are hobbyists
    for arch, target in zip(LEGIT, targets):
        while target > 0:
            size = min(int(target), int(rng.integers(arch.group[0], arch.group[1] + 1)))
            out.extend((arch, None, group) for _ in range(size))
            group += 1
            target -= size
    return out[: cfg.accounts]


def build_accounts(cfg: SimConfig, rng: np.random.Generator, fake: Faker) -> pl.DataFrame:
    """One row per account: contract columns plus the simulator's private attributes (`_`)."""
    assigned = _assign(rng, cfg)
    k = cfg.knobs
    groups: dict[int, dict] = {}
    rows = []
    for arch, campaign, group in assigned:
        g = groups.get(group)
        if g is None:
            country = COUNTRIES[int(rng.integers(len(COUNTRIES)))]
            g = groups[group] = {
                "country": country,
                "domain": fake.domain_name(),
                "payment": f"pm_{rng.integers(2**48):012x}",
                "net": _ip24(rng),
                "created": cfg.start
                - timedelta(days=float(rng.uniform(2, 21) if campaign else rng.uniform(10, 400))),
                "ua": f"{fake.word()}-client/{rng.integers(1, 5)}.{rng.integers(0, 20)}",
                "payments": [
                    f"pm_{rng.integers(2**48):012x}" for _ in range(max(1, int(rng.integers(1, 4))))
                ],
            }
        country = (
            g["country"] if arch.group[1] > 1 else COUNTRIES[int(rng.integers(len(COUNTRIES)))]
        )
        created = (
            g["created"]
            if arch.group[1] > 1
            else cfg.start - timedelta(days=float(rng.uniform(1, 700)))
        )
        created += timedelta(hours=float(rng.uniform(0, 120)))
        payment = f"pm_{rng.integers(2**48):012x}"
        net = _ip24(rng)
        domain = FREEMAIL[int(rng.integers(len(FREEMAIL)))]
        ua = None
        if arch.name == "university_lab":
            net, domain = g["net"], g["domain"].rsplit(".", 1)[0] + ".edu"
        elif arch.name == "company_workspace":
            net, domain, payment = g["net"], g["domain"], g["payment"]
        elif arch.name in ("enterprise_rag", "product_backend"):
            domain = fake.domain_name()
            if rng.random() < 0.5:
                net = (
                    CLOUD_RANGES[int(rng.integers(len(CLOUD_RANGES)))]
                    | int(rng.integers(0, 2**16)) << 8
                )
        elif campaign is not None:
            if not k.distinct_infra:
                payment = g["payments"][int(rng.integers(len(g["payments"])))]
                net, ua = g["net"], g["ua"]
                domain = (
                    FREEMAIL[int(rng.integers(len(FREEMAIL)))]
                    if rng.random() < 0.7
                    else g["domain"]
                )
            if k.staggered_creation:
                created = cfg.start - timedelta(days=float(rng.uniform(1, 240)))
            country = COUNTRIES[int(rng.integers(len(COUNTRIES)))]
        rate = arch.rate * float(np.exp(rng.normal(0, arch.sigma)))
        if campaign is not None:
            rate = (
                arch.rate
                * k.low_and_slow
                * (
                    float(np.exp(rng.normal(0, 1.0)))
                    if not k.round_robin
                    else float(np.exp(rng.normal(0, 0.15)))
                )
            )
        rows.append(
            {
                "account_id": f"acct_{rng.integers(2**40):010x}",
                "created_at": created,
                "email_domain": domain,
                "payment_fingerprint": payment,
                "billing_country": country,
                "signup_ip": _ip_text(net | int(rng.integers(1, 255))),
                "tier": _tier(rng, rate),
                "signup_channel": arch.channels[int(rng.integers(len(arch.channels)))],
                "label": arch.label,
                "campaign": campaign,
                "archetype": arch.name,
                "_group": group,
                "_rate": rate * cfg.volume_scale,
                "_tz": TZ_OF[country] if campaign is None or k.mimic_diurnal else 8,
                "_net": net,
                "_ua": ua,
                "_paraphrase": campaign is not None and rng.random() < k.paraphrase,
            }
        )
    frame = pl.DataFrame(rows)
    return frame.with_columns(pl.col("created_at").dt.cast_time_unit("us"))


def _tier(rng: np.random.Generator, rate: float) -> str:
    if rate > 500:
        return "tier_4"
    if rate > 100:
        return "tier_3"
    if rate > 20:
        return "tier_2"
    return "tier_1" if rng.random() < 0.8 else "free"


def _ip_text(ip: int) -> str:
    return f"{ip >> 24 & 255}.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}"
