"""Who sends traffic in a simulated world: legitimate archetypes and campaign archetypes.

Every trait a campaign has (agentic tool use, round-the-clock hours, grading prompts, reasoning
requests, temperature 0, big thinking budgets, new accounts, datacenter egress, templated
prompts, fast adoption of a new model, many accounts on one payment method, education or startup
sign-ups, synchronised timing) is also carried by at least two legitimate archetypes, so no
single trait separates the classes (`TRAITS`, checked by the tests and tabulated in
data/SIMULATOR.md). `realise` draws each archetype's parameters per world from wide ranges
(domain randomisation): a model trained on many worlds cannot lean on any one threshold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

PROFILES = ("evening", "business", "consumer", "flat", "bursty", "sync")
SHARED = ("payment", "net", "domain", "created", "ua")
"""What the accounts of one group (an organisation, a NAT, a campaign cell) may share."""


@dataclass(frozen=True)
class Archetype:
    """How one kind of account behaves (the base values; `realise` jitters them per world)."""

    name: str
    label: int
    share: float  # of legitimate accounts (legit) or of campaign accounts (campaign)
    rate: float  # median requests per active day
    sigma: float  # log-normal spread of the per-account rate
    profile: str  # timing, one of PROFILES
    kinds: dict[str, float]  # prompt kinds and their shares
    thinking: float = 0.1  # share of requests with thinking enabled
    batch: float = 0.0  # share of requests through the batch API
    group: tuple[int, int] = (1, 1)  # accounts per group (same org / NAT / campaign cell)
    shared: tuple[str, ...] = ()  # what a group's accounts share, among SHARED
    channels: tuple[str, ...] = ("self_serve",)
    adopt_days: float = 6.0  # mean lag to adopt a newly released model
    adopt_share: float = 0.6  # share of traffic on the new model once adopted
    temp_zero: float = 0.1  # share of requests at temperature 0
    budget: tuple[int, int] = (0, 4)  # [lo, hi) index range into traffic.BUDGETS
    max_tokens: tuple[int, int] = (0, 6)  # [lo, hi) index range into traffic.MAX_TOKENS
    tools: tuple[int, int] = (3, 30)  # [lo, hi) tool definitions on tool-using kinds
    datacenter: float = 0.0  # share of accounts (groups) egressing from cloud ranges
    age_days: tuple[float, float] = (1.0, 700.0)  # account age at the world's start
    end_users: bool = False  # serves many end users (end_user_id set)
    own_phrasing: bool = True  # words reasoning requests its own way (campaigns share a template)
    alt_profiles: tuple[str, ...] = field(default=())  # timing a world may draw instead


# One row per archetype; kept as a table (unformatted) so the rows read side by side.
# fmt: off
LEGIT = (
    Archetype("hobbyist", 0, 0.30, 4, 1.0, "evening", {"question": 0.8, "code": 0.2}),
    Archetype(
        "product_backend", 0, 0.10, 150, 1.2, "consumer", {"support": 1.0}, 0.02,
        channels=("self_serve", "enterprise", "reseller"), datacenter=0.5, end_users=True,
        alt_profiles=("flat",),
    ),
    Archetype(
        "enterprise_rag", 0, 0.08, 60, 1.0, "business", {"rag": 1.0}, 0.05,
        channels=("enterprise",), datacenter=0.5, temp_zero=0.5,
    ),
    Archetype(
        "coding_agent", 0, 0.10, 40, 1.0, "business", {"agent_code": 0.7, "code": 0.3}, 0.3,
        alt_profiles=("evening", "flat"),
    ),
    Archetype(
        "benchmark_runner", 0, 0.03, 150, 0.8, "bursty", {"benchmark": 1.0}, 0.5, 0.3,
        channels=("self_serve", "startup_program"), temp_zero=0.9, adopt_days=0.8,
        budget=(1, 5), datacenter=0.5,
    ),
    Archetype(
        "judge_product", 0, 0.02, 120, 0.8, "consumer", {"judge_product": 1.0}, 0.1,
        temp_zero=0.8, end_users=True, alt_profiles=("flat",),
    ),
    Archetype(
        "university_lab", 0, 0.06, 8, 0.9, "business",
        {"question": 0.5, "code": 0.3, "cot_homework": 0.2}, 0.15, group=(15, 60),
        shared=("net", "domain", "created"), channels=("education",),
    ),
    Archetype(
        "company_workspace", 0, 0.05, 40, 1.0, "business",
        {"support": 0.5, "rag": 0.3, "code": 0.2}, 0.05, group=(3, 8),
        shared=("net", "domain", "payment"), channels=("enterprise", "self_serve"),
    ),
    Archetype(
        "catalogue_bulk", 0, 0.03, 250, 0.7, "business", {"catalogue": 1.0}, 0.0, 0.6,
        temp_zero=0.6, alt_profiles=("flat",),
    ),
    # the legitimate classes a provider has that look most like campaigns
    Archetype(
        "agent_platform", 0, 0.04, 200, 1.0, "flat",
        {"agentic": 0.45, "agent_code": 0.35, "question": 0.2}, 0.5, group=(1, 4),
        shared=("payment", "domain"), channels=("self_serve", "enterprise", "startup_program"),
        adopt_days=0.7, adopt_share=0.7, budget=(1, 5), max_tokens=(2, 6), tools=(10, 90),
        datacenter=0.8, end_users=True, alt_profiles=("consumer",),
    ),
    Archetype(
        "eval_harness", 0, 0.02, 180, 0.9, "sync",
        {"benchmark": 0.45, "rubric": 0.25, "elicit": 0.15, "code": 0.15}, 0.6, 0.3,
        group=(2, 8), shared=("payment", "domain", "net"),
        channels=("self_serve", "startup_program", "enterprise"), adopt_days=0.4,
        adopt_share=0.8, temp_zero=0.9, budget=(2, 5), max_tokens=(2, 6), datacenter=0.9,
        alt_profiles=("bursty",),
    ),
    Archetype(
        "research_lab", 0, 0.03, 30, 1.0, "business",
        {"elicit": 0.3, "question": 0.3, "code": 0.2, "reconstruct": 0.2}, 0.85, group=(3, 12),
        shared=("net", "domain"), channels=("education", "enterprise"), adopt_days=1.0,
        adopt_share=0.7, budget=(2, 5), max_tokens=(3, 6), age_days=(2.0, 200.0),
        alt_profiles=("flat", "evening"),
    ),
    Archetype(
        "translation_vendor", 0, 0.02, 160, 0.8, "flat", {"translate": 0.75, "rewrite": 0.25},
        0.02, 0.4, group=(1, 3), shared=("payment", "net"), temp_zero=0.7, datacenter=0.4,
        alt_profiles=("business",),
    ),
    Archetype(
        "labelling_vendor", 0, 0.02, 140, 0.9, "business",
        {"rubric": 0.55, "judge_product": 0.2, "question": 0.25}, 0.3, 0.2, group=(3, 12),
        shared=("payment", "domain"), channels=("enterprise", "self_serve"), temp_zero=0.8,
        datacenter=0.6, alt_profiles=("flat", "sync"),
    ),
    Archetype(
        "education_platform", 0, 0.03, 6, 0.9, "evening",
        {"cot_homework": 0.6, "question": 0.3, "elicit": 0.1}, 0.3, group=(10, 40),
        shared=("domain", "payment"), channels=("education",), age_days=(1.0, 30.0),
        alt_profiles=("business",),
    ),
    Archetype(
        "ci_pipeline", 0, 0.02, 90, 0.9, "flat", {"ci_review": 0.7, "agent_code": 0.3}, 0.1,
        group=(1, 3), shared=("payment", "net", "ua"), temp_zero=0.9, datacenter=1.0,
        adopt_days=2.0, alt_profiles=("sync", "bursty"),
    ),
    Archetype(
        "proxy_company", 0, 0.02, 300, 1.0, "flat",
        {"question": 0.35, "support": 0.2, "code": 0.15, "agentic": 0.15, "elicit": 0.05,
         "rewrite": 0.1}, 0.4, channels=("reseller", "enterprise"), adopt_days=1.0,
        datacenter=0.9, end_users=True, alt_profiles=("consumer",),
    ),
    Archetype(
        "startup_newco", 0, 0.03, 50, 1.2, "business",
        {"agent_code": 0.4, "support": 0.3, "question": 0.3}, 0.3, group=(1, 4),
        shared=("payment", "domain"), channels=("startup_program", "self_serve"),
        adopt_days=0.8, age_days=(1.0, 20.0), datacenter=0.5, alt_profiles=("flat",),
    ),
)

CAMPAIGN = {
    "reasoning_grading": Archetype(
        "reasoning_grading", 1, 0.2, 60, 0.5, "sync",
        {"elicit": 0.55, "rubric": 0.3, "rewrite": 0.15}, 0.9, group=(4, 12),
        shared=("payment", "net", "ua", "created"), channels=("self_serve", "education"),
        adopt_days=2.0, budget=(2, 5), age_days=(2.0, 21.0), own_phrasing=False,
    ),
    "agentic_capability": Archetype(
        "agentic_capability", 1, 0.25, 80, 0.7, "flat",
        {"agentic": 0.6, "code": 0.15, "reconstruct": 0.25}, 0.6, 0.25, group=(6, 20),
        shared=("payment", "net", "ua", "created"),
        channels=("self_serve", "startup_program", "enterprise"), adopt_days=2.0,
        budget=(2, 5), age_days=(2.0, 21.0), own_phrasing=False,
    ),
    "hydra_proxy": Archetype(
        "hydra_proxy", 1, 0.4, 100, 0.3, "flat",
        {"elicit": 0.35, "self_instruct": 0.25, "agentic": 0.15, "question": 0.25}, 0.7,
        group=(20, 80), shared=("payment", "net", "ua", "created"),
        channels=("reseller", "self_serve"), adopt_days=0.5, adopt_share=0.5, budget=(2, 5),
        age_days=(2.0, 21.0), datacenter=0.5, own_phrasing=False,
    ),
    # quiet campaigns: few requests per account, no shared infrastructure to speak of
    "quiet_grader": Archetype(
        "quiet_grader", 1, 0.08, 12, 0.5, "business",
        {"rubric": 0.6, "elicit": 0.25, "question": 0.15}, 0.7, group=(5, 15),
        shared=("created",), channels=("self_serve", "education"), adopt_days=1.5,
        temp_zero=0.6, budget=(2, 5), age_days=(5.0, 120.0), own_phrasing=False,
    ),
    "lockstep_swarm": Archetype(
        "lockstep_swarm", 1, 0.07, 8, 0.3, "sync",
        {"elicit": 0.4, "reconstruct": 0.3, "self_instruct": 0.3}, 0.8, group=(30, 90),
        shared=("created",), channels=("self_serve",), adopt_days=0.5, adopt_share=0.6,
        budget=(2, 5), age_days=(2.0, 40.0), own_phrasing=False,
    ),
}

# fmt: on

ARCHETYPES = {a.name: a for a in (*LEGIT, *CAMPAIGN.values())}


def realise(base: dict[str, Archetype], rng: np.random.Generator, strength: float) -> dict:
    """This world's archetypes: each parameter drawn around its base value (`strength` 0 keeps
    the base values; 1 is the default spread: rates and shares by up to ~2x, kind mixes from a
    Dirichlet around the base mix, a quarter of archetypes on an alternative timing profile)."""
    if strength <= 0:
        return dict(base)
    out = {}
    for name, a in base.items():
        jitter = lambda spread: float(np.exp(rng.normal(0, spread * strength)))  # noqa: E731
        unit = lambda v, spread: float(np.clip(v + rng.normal(0, spread * strength), 0, 1))  # noqa: E731
        names, p = zip(*a.kinds.items())
        mix = rng.dirichlet(np.array(p) * 12 / strength + 1e-3)
        profile = a.profile
        if a.alt_profiles and rng.random() < 0.25 * strength:
            profile = a.alt_profiles[int(rng.integers(len(a.alt_profiles)))]
        out[name] = replace(
            a,
            share=a.share * jitter(0.4),
            rate=a.rate * jitter(0.5),
            sigma=a.sigma * jitter(0.2),
            profile=profile,
            kinds=dict(zip(names, mix.tolist(), strict=True)),
            thinking=unit(a.thinking, 0.15),
            batch=unit(a.batch, 0.1),
            adopt_days=a.adopt_days * jitter(0.6),
            adopt_share=unit(a.adopt_share, 0.1),
            temp_zero=unit(a.temp_zero, 0.15),
            datacenter=unit(a.datacenter, 0.15),
        )
    return out


TRAITS: dict[str, Callable[[Archetype], bool]] = {
    "agentic tool use": lambda a: a.kinds.get("agentic", 0) + a.kinds.get("agent_code", 0) >= 0.3,
    "round-the-clock hours": lambda a: a.profile == "flat" or "flat" in a.alt_profiles,
    "synchronised timing": lambda a: a.profile == "sync" or "sync" in a.alt_profiles,
    "grading / rubric prompts": lambda a: (
        a.kinds.get("rubric", 0) + a.kinds.get("judge_product", 0) >= 0.2
    ),
    "step-by-step reasoning requests": lambda a: (
        a.kinds.get("elicit", 0)
        + a.kinds.get("cot_homework", 0)
        + a.kinds.get("benchmark", 0)
        + a.kinds.get("reconstruct", 0)
        >= 0.1
    ),
    "rewrites": lambda a: a.kinds.get("rewrite", 0) >= 0.1,
    "temperature 0": lambda a: a.temp_zero >= 0.5,
    "large thinking budgets": lambda a: a.thinking >= 0.3 and a.budget[1] >= 5,
    "new accounts": lambda a: a.age_days[1] <= 200,
    "datacenter ranges": lambda a: a.datacenter >= 0.5,
    "templated prompts": lambda a: any(
        a.kinds.get(k, 0) >= 0.3
        for k in ("catalogue", "benchmark", "translate", "ci_review", "rubric", "elicit")
    ),
    "fast adoption of a new model": lambda a: a.adopt_days <= 2.0,
    "many accounts on one payment": lambda a: "payment" in a.shared and a.group[1] >= 3,
    "education / startup sign-ups": lambda a: bool(
        {"education", "startup_program"} & set(a.channels)
    ),
}
"""Campaign traits, each a predicate on an archetype's base parameters."""


def trait_matrix() -> list[dict]:
    """One row per trait: which campaign and which legitimate archetypes carry it."""
    return [
        {
            "trait": trait,
            "campaigns": [a.name for a in CAMPAIGN.values() if has(a)],
            "legitimate": [a.name for a in LEGIT if has(a)],
        }
        for trait, has in TRAITS.items()
    ]


def trait_table() -> str:
    """The trait matrix as the markdown table in data/SIMULATOR.md."""
    lines = [
        "| trait | campaigns with it | legitimate archetypes with it |",
        "| --- | --- | --- |",
    ]
    for row in trait_matrix():
        lines.append(
            f"| {row['trait']} | {', '.join(row['campaigns']) or '-'} | "
            f"{', '.join(row['legitimate'])} |"
        )
    return "\n".join(lines)


MATRIX_MARKERS = ("<!-- trait-matrix:start -->", "<!-- trait-matrix:end -->")


def with_trait_table(doc: str) -> str:
    """`doc` with the text between the trait-matrix markers replaced by `trait_table()`."""
    start, end = MATRIX_MARKERS
    head, _, rest = doc.partition(start)
    _, found, tail = rest.partition(end)
    if not found:
        raise ValueError(f"the document has no {start} ... {end} markers")
    return f"{head}{start}\n{trait_table()}\n{end}{tail}"
