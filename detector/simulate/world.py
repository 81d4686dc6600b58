"""Accounts of a simulated world: archetype, group, metadata and infrastructure of each.

The archetypes (legitimate ones, hard negatives among them, and campaigns following the public
reports) are in `archetypes`; this module turns a world's realised archetypes into accounts.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import polars as pl
from faker import Faker

from detector.simulate.archetypes import LEGIT, Archetype
from detector.simulate.config import SimConfig

FREEMAIL = ("gmail.com", "outlook.com", "yahoo.com", "proton.me", "icloud.com", "qq.com", "163.com")
TZ_OF = {
    "US": -6, "GB": 0, "DE": 1, "FR": 1, "IN": 5, "BR": -3, "JP": 9, "KR": 9, "CA": -5,
    "AU": 10, "SG": 8, "NL": 1, "ES": 1, "IT": 1, "PL": 1,
}  # fmt: skip
COUNTRIES = tuple(TZ_OF)
CLOUD_RANGES = (0x22000000, 0x23000000, 0x34000000)  # big shared cloud /8s (many customers)


def _ip24(rng: np.random.Generator) -> int:
    """A random routable /24 base address."""
    return (
        int(rng.integers(11, 223)) << 24
        | int(rng.integers(0, 256)) << 16
        | int(rng.integers(0, 256)) << 8
    )


def _cloud24(rng: np.random.Generator) -> int:
    """A /24 inside one of the big shared cloud ranges."""
    return CLOUD_RANGES[int(rng.integers(len(CLOUD_RANGES)))] | int(rng.integers(0, 2**16)) << 8


def _assign(
    rng: np.random.Generator, cfg: SimConfig, archetypes: dict[str, Archetype]
) -> list[tuple[Archetype, str | None, int]]:
    """(archetype, campaign, group number) for every account."""
    n_campaign = int(round(cfg.accounts * cfg.campaign_share)) if cfg.campaigns else 0
    chosen = [archetypes[c] for c in cfg.campaigns]
    shares = np.array([a.share for a in chosen]) if chosen else np.array([])
    counts = np.floor(shares / shares.sum() * n_campaign).astype(int) if n_campaign else []
    out: list[tuple[Archetype, str | None, int]] = []
    group = 0
    for arch, k in zip(chosen, counts):
        remaining = max(int(k), 2)  # small worlds get small cells, never a missing campaign
        while remaining > 0:
            size = min(remaining, int(rng.integers(arch.group[0], arch.group[1] + 1)))
            if cfg.knobs.cell_size:
                size = min(remaining, cfg.knobs.cell_size)
            out.extend((arch, arch.name, group) for _ in range(size))
            group += 1
            remaining -= size
    legit = [archetypes[a.name] for a in LEGIT]
    n_legit = cfg.accounts - len(out)
    shares = np.array([a.share for a in legit])
    targets = np.floor(shares / shares.sum() * n_legit).astype(int)
    targets[0] += n_legit - targets.sum()  # the remainder are hobbyists
    for arch, target in zip(legit, targets):
        while target > 0:
            size = min(int(target), int(rng.integers(arch.group[0], arch.group[1] + 1)))
            out.extend((arch, None, group) for _ in range(size))
            group += 1
            target -= size
    return out[: cfg.accounts]


def _group(rng: np.random.Generator, fake: Faker, arch: Archetype, cfg: SimConfig) -> dict:
    """What one group's accounts may share (used for the attributes in `arch.shared`)."""
    domain = fake.domain_name()
    if "education" in arch.channels and arch.label == 0:
        domain = domain.rsplit(".", 1)[0] + ".edu"
    return {
        "country": COUNTRIES[int(rng.integers(len(COUNTRIES)))],
        "domain": domain,
        "payments": [f"pm_{rng.integers(2**48):012x}" for _ in range(int(rng.integers(1, 4)))],
        "net": _cloud24(rng) if rng.random() < arch.datacenter else _ip24(rng),
        "created": cfg.start - timedelta(days=float(rng.uniform(*arch.age_days))),
        "ua": f"{fake.word()}-client/{rng.integers(1, 5)}.{rng.integers(0, 20)}",
    }


def build_accounts(
    cfg: SimConfig, archetypes: dict[str, Archetype], rng: np.random.Generator, fake: Faker
) -> pl.DataFrame:
    """One row per account: contract columns plus the simulator's private attributes (`_`)."""
    k = cfg.knobs
    groups: dict[int, dict] = {}
    playbook: dict[str, str] = {}
    rows = []
    for arch, campaign, group in _assign(rng, cfg, archetypes):
        g = groups.get(group) or groups.setdefault(group, _group(rng, fake, arch, cfg))
        if campaign is not None and k.shared_playbook:  # one controller: the campaign's client
            g["ua"] = playbook.setdefault(campaign, g["ua"])
        shared = set(arch.shared) if arch.group[1] > 1 else set()
        if campaign is not None and k.distinct_infra:
            shared -= {"payment", "net", "ua", "domain"}
        if campaign is not None and k.staggered_creation:
            shared.discard("created")
        country = g["country"] if shared else COUNTRIES[int(rng.integers(len(COUNTRIES)))]
        if "created" in shared:
            created = g["created"]
        elif campaign is not None and k.staggered_creation:
            created = cfg.start - timedelta(days=float(rng.uniform(1, 240)))
        else:
            created = cfg.start - timedelta(days=float(rng.uniform(*arch.age_days)))
        created += timedelta(hours=float(rng.uniform(0, 120)))
        payment = f"pm_{rng.integers(2**48):012x}"
        if "payment" in shared:  # campaign cells rotate a few cards, organisations use one
            payment = g["payments"][int(rng.integers(len(g["payments"]))) if campaign else 0]
        net = (
            g["net"]
            if "net" in shared
            else (_cloud24(rng) if rng.random() < arch.datacenter else _ip24(rng))
        )
        domain = FREEMAIL[int(rng.integers(len(FREEMAIL)))]
        if "domain" in shared and (campaign is None or rng.random() < 0.3):
            domain = g["domain"]
        elif campaign is None and arch.channels != ("self_serve",) and rng.random() < 0.7:
            domain = fake.domain_name()  # a business sign-up with its own domain
        if campaign is not None:
            country = COUNTRIES[int(rng.integers(len(COUNTRIES)))]
        rate = arch.rate * float(np.exp(rng.normal(0, arch.sigma)))
        if campaign is not None:
            spread = 1.0 if not k.round_robin else 0.15
            rate = arch.rate * k.low_and_slow * float(np.exp(rng.normal(0, spread)))
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
                "_ua": g["ua"] if "ua" in shared else None,
                "_paraphrase": arch.own_phrasing or rng.random() < k.paraphrase,
            }
        )
    frame = pl.DataFrame(rows, infer_schema_length=None)
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
