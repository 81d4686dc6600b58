"""Simulator configuration: world size, evasion knobs and the documented scenario presets."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

CAMPAIGNS = (
    "reasoning_grading",
    "agentic_capability",
    "hydra_proxy",
    "quiet_grader",
    "lockstep_swarm",
)


@dataclass(frozen=True)
class Knobs:
    """Evasion tactics of the campaign operators, each one parameter.

    paraphrase: share of campaign accounts that word their prompts with their own paraphrases
        instead of the campaign's shared template.
    low_and_slow: multiplier on each campaign account's daily volume (0.1 = ten times slower).
    distinct_infra: each account gets its own payment instrument and residential-proxy IPs.
    staggered_creation: accounts are created over months instead of in one week.
    round_robin: the proxy spreads load evenly across accounts (False: heavy-tailed per account).
    cover_share: share of campaign requests that are ordinary customers' prompts mixed in.
    mimic_diurnal: campaign traffic follows office hours instead of running 24/7.
    shared_playbook: every cell of a campaign runs from one controller: the cells send the
        campaign's own dataset (task texts from the campaign's slice of the prompt pools) with
        one client build, and lockstep cells fire in the same bursts, within seconds.
    cell_size: campaign cells (proxy ranges, payment groups) of this many accounts (0: the
        archetype's own group sizes); a hydra of 48 accounts in cells of 8 runs six ranges.
    """

    paraphrase: float = 0.0
    low_and_slow: float = 1.0
    distinct_infra: bool = False
    staggered_creation: bool = False
    round_robin: bool = True
    cover_share: float = 0.0
    mimic_diurnal: bool = False
    shared_playbook: bool = False
    cell_size: int = 0

    def __post_init__(self) -> None:
        if self.cell_size < 0:
            raise ValueError(f"cell_size must be 0 or positive, got {self.cell_size}")
        for name in ("paraphrase", "cover_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not 0.0 < self.low_and_slow <= 10.0:
            raise ValueError(f"low_and_slow must be in (0, 10], got {self.low_and_slow}")


@dataclass(frozen=True)
class SimConfig:
    """One simulated world: how many accounts, over which days, which campaigns and tactics."""

    accounts: int = 1000
    days: int = 14
    seed: int = 0
    start: datetime = datetime(2026, 2, 2, tzinfo=UTC)
    campaign_share: float = 0.08
    campaigns: tuple[str, ...] = CAMPAIGNS
    knobs: Knobs = field(default_factory=Knobs)
    volume_scale: float = 1.0
    scenario: str = "default"
    randomise: float = 1.0
    """Domain randomisation: how far each archetype's parameters are drawn from their base
    values in this world (0: the base values exactly; see `archetypes.realise`)."""

    def __post_init__(self) -> None:
        if self.accounts < 20:
            raise ValueError(f"accounts must be at least 20, got {self.accounts}")
        if not 1 <= self.days <= 120:
            raise ValueError(f"days must be in [1, 120], got {self.days}")
        if not 0.0 <= self.campaign_share < 0.5:
            raise ValueError(f"campaign_share must be in [0, 0.5), got {self.campaign_share}")
        unknown = set(self.campaigns) - set(CAMPAIGNS)
        if unknown:
            raise ValueError(f"campaigns must be among {CAMPAIGNS}, got {sorted(unknown)}")
        if self.volume_scale <= 0:
            raise ValueError(f"volume_scale must be positive, got {self.volume_scale}")
        if not 0.0 <= self.randomise <= 2.0:
            raise ValueError(f"randomise must be in [0, 2], got {self.randomise}")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware (UTC)")

    @property
    def release_day(self) -> int:
        """Day (from start) on which the newest model is released."""
        return self.days // 2


SCENARIOS: dict[str, dict] = {
    "default": {},
    "naive": {"knobs": Knobs(round_robin=False)},
    "evasive": {
        "knobs": Knobs(
            paraphrase=0.8,
            low_and_slow=0.3,
            distinct_infra=True,
            staggered_creation=True,
            round_robin=False,
            cover_share=0.3,
            mimic_diurnal=True,
        )
    },
    "paraphrase": {"knobs": Knobs(paraphrase=1.0)},
    "low_and_slow": {"knobs": Knobs(low_and_slow=0.1)},
    "distinct_infra": {"knobs": Knobs(distinct_infra=True, staggered_creation=True)},
    "cover_traffic": {"knobs": Knobs(cover_share=0.5, mimic_diurnal=True)},
    "benign_heavy": {"campaign_share": 1 / 101},
    "hydra_only": {"campaigns": ("hydra_proxy",)},
    "quiet": {"campaigns": ("quiet_grader", "lockstep_swarm")},
    "no_campaigns": {"campaign_share": 0.0},
    "operations": {
        "knobs": Knobs(shared_playbook=True, cell_size=8, distinct_infra=False),
        "campaign_share": 0.12,
    },
}
"""Presets for `--scenario`; data/SIMULATOR.md describes each."""


def scenario(name: str, **overrides) -> SimConfig:
    """The config of a named scenario, with explicit overrides (accounts, days, seed, ...)."""
    if name not in SCENARIOS:
        raise ValueError(f"scenario must be one of {sorted(SCENARIOS)}, got {name!r}")
    base = SimConfig(**{k: v for k, v in overrides.items() if v is not None})
    return replace(base, scenario=name, **SCENARIOS[name])
