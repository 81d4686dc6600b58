"""Request generation for a simulated world, vectorised over numpy arrays and polars columns.

Per-account loops touch only account-level draws; every per-request quantity is an array op.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from faker import Faker

from detector.simulate import corpus, templates
from detector.simulate.archetypes import Archetype
from detector.simulate.config import SimConfig

MODELS = ("atlas-3", "atlas-4", "atlas-4.5")
SDK_AGENTS = (
    "OpenAI/Python 2.3.0",
    "Anthropic/Python 0.71.0",
    "python-httpx/0.28.1",
    "node-fetch/3.3",
    "curl/8.7.1",
    "litellm/1.80.0",
    "langchain/0.3",
    "Go-http-client/2.0",
)
BUDGETS = np.array([1024, 4096, 8192, 16000, 32768])
MAX_TOKENS = np.array([1024, 2048, 4096, 8192, 16000, 32000])
OUTPUT_MEDIAN = {
    "question": 350,
    "code": 600,
    "support": 150,
    "rag": 250,
    "agent_code": 700,
    "benchmark": 400,
    "judge_product": 120,
    "cot_homework": 500,
    "catalogue": 90,
    "elicit": 1400,
    "rubric": 250,
    "rewrite": 500,
    "agentic": 800,
    "reconstruct": 1600,
    "self_instruct": 2000,
    "translate": 400,
    "ci_review": 300,
}
KINDS = tuple(OUTPUT_MEDIAN)
TOOL_KINDS = ("agent_code", "agentic")
MULTI_TURN = {
    "agent_code": (8, 60),
    "agentic": (6, 50),
    "support": (1, 6),
    "question": (1, 5),
    "code": (1, 6),
    "rag": (1, 4),
    "cot_homework": (1, 3),
}
PROFILES = {
    "evening": np.r_[np.full(7, 0.2), np.full(10, 0.6), np.full(7, 2.0)],
    "business": np.r_[np.full(8, 0.1), np.full(10, 2.5), np.full(6, 0.3)],
    "consumer": np.r_[np.full(7, 0.3), np.full(10, 1.4), np.full(7, 1.2)],
    "flat": np.ones(24),
}
WEEKEND_KEEP = {"business": 0.25, "evening": 1.4, "consumer": 1.0, "flat": 1.0}


def build_pools(rng: np.random.Generator, fake: Faker, scale: int) -> dict[str, list[str]]:
    """Text pools per prompt kind; `scale` sets pool sizes (diversity grows with the world)."""
    n = scale
    v = corpus.Vocab.make(fake)
    answers = corpus.answers(rng, v, n)
    tasks = corpus.math_problems(rng, v, n) + corpus.legit_questions(rng, v, n)
    customers = [
        f"{v.pick(rng, 'sentences')} Order {rng.integers(10**5, 10**7)} for "
        f"{v.pick(rng, 'words')} {v.pick(rng, 'words')} hasn't arrived."
        if rng.random() < 0.5
        else corpus.legit_questions(rng, v, 1)[0]
        for _ in range(n)
    ]
    homework_tails = (
        "Please explain step by step.",
        "Show your work.",
        "explain ur reasoning pls",
        "Walk me through it.",
        "I don't get the textbook's answer.",
    )
    products = [
        f"{v.pick(rng, 'words')} {v.pick(rng, 'words')} {v.pick(rng, 'words')}" for _ in range(n)
    ]
    return {
        "question": corpus.legit_questions(rng, v, 2 * n),
        "code": corpus.code_tasks(rng, v, n),
        "support": customers,
        "rag": [
            f"According to the {v.pick(rng, 'companies')} handbook, {q}\n\nContext:\n"
            + corpus.passages(rng, v, int(rng.integers(2, 6)))
            for q in corpus.legit_questions(rng, v, n)
        ],
        "agent_code": [
            f"{task}\n\nTool result:\n{corpus.tool_output(rng, v)}"
            for task in corpus.code_tasks(rng, v, n)
        ],
        "benchmark": corpus.mcq(rng, v, n),
        "judge_product": corpus.fill(
            rng, v, templates.JUDGE_PRODUCT, n, {"c": customers, "r": answers}
        ),
        "cot_homework": [
            f"{q} {homework_tails[int(rng.integers(len(homework_tails)))]}"
            for q in corpus.math_problems(rng, v, n)
        ],
        "catalogue": corpus.fill(
            rng,
            v,
            templates.CATALOGUE,
            n,
            {
                "p": products,
                "a": [", ".join(v.pick(rng, "words") for _ in range(3)) for _ in range(n)],
                "s": [f"SKU-{rng.integers(10**6, 10**7)}" for _ in range(n)],
            },
        ),
        "tasks": tasks,
        "elicit_phrases": corpus.elicitation_phrases(rng, n),
        "rubric": corpus.fill(
            rng, v, templates.RUBRIC, n, {"q": tasks, "r": answers, "r2": answers}
        ),
        "rewrite": corpus.fill(rng, v, templates.REWRITE, n, {"r": answers}),
        "agentic": [
            f"{task}\n\nObservation:\n{corpus.tool_output(rng, v)}" if rng.random() < 0.6 else task
            for task in corpus.fill(
                rng, v, templates.AGENTIC, n, {"p": list(corpus.humaneval_prompts()) + tasks[:50]}
            )
        ],
        "reconstruct": corpus.fill(
            rng,
            v,
            templates.RECONSTRUCT,
            n,
            {"q": tasks, "a": [str(rng.integers(1, 999)) for _ in range(50)]},
        ),
        "self_instruct": corpus.fill(rng, v, templates.SELF_INSTRUCT, n, {}),
        "translate": corpus.fill(rng, v, templates.TRANSLATE, n, {"r": answers}),
        "ci_review": corpus.fill(
            rng,
            v,
            templates.CI_REVIEW,
            n,
            {
                "d": corpus.code_tasks(rng, v, n // 4 + 1),
                "o": [corpus.tool_output(rng, v) for _ in range(n // 4 + 1)],
            },
        ),
        "answers": answers,
        "systems": [templates.SUPPORT_SYSTEM.format(c=c) for c in v.companies],
        "contexts": [f"{templates.RAG_SYSTEM}\n[doc-{i}] {p}" for i, p in enumerate(v.paragraphs)],
    }


def _param(accounts: pl.DataFrame, archetypes: dict[str, Archetype], attr: str) -> np.ndarray:
    """One archetype parameter per account (the world's realised value)."""
    values = {name: getattr(a, attr) for name, a in archetypes.items()}
    return np.array([values[a] for a in accounts["archetype"].to_list()], dtype=object)


def _counts(
    rng: np.random.Generator, accounts: pl.DataFrame, cfg: SimConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Requests per account, and the first active day of each account."""
    start_us = int(cfg.start.timestamp() * 1e6)
    created = (accounts["created_at"].dt.epoch("us").to_numpy() - start_us) / 86400e6
    first_day = np.clip(np.ceil(created), 0, cfg.days - 1).astype(int)
    active = cfg.days - first_day
    return rng.poisson(accounts["_rate"].to_numpy() * active), first_day


def _timestamps(rng, acct, accounts: pl.DataFrame, archetypes, first_day, cfg) -> np.ndarray:
    """Seconds from `cfg.start` for each request, by the account's timing profile."""
    n = len(acct)
    profiles = _param(accounts, archetypes, "profile").astype(str)
    if cfg.knobs.mimic_diurnal:
        profiles = np.where(accounts["label"].to_numpy() == 1, "business", profiles)
    prof = profiles[acct]
    lo = first_day[acct]
    day = lo + np.floor(rng.random(n) * (cfg.days - lo)).astype(int)
    tz = accounts["_tz"].to_numpy()[acct]
    secs = np.zeros(n)
    for name, weights in PROFILES.items():
        mask = prof == name
        if not mask.any():
            continue
        weekday = (cfg.start.weekday() + day[mask]) % 7
        redraw = (weekday >= 5) & (rng.random(mask.sum()) > WEEKEND_KEEP[name])
        d = day[mask]
        d[redraw] = lo[mask][redraw] + np.floor(
            rng.random(redraw.sum()) * (cfg.days - lo[mask][redraw])
        ).astype(int)
        day[mask] = d
        hour = rng.choice(24, size=mask.sum(), p=weights / weights.sum())
        secs[mask] = day[mask] * 86400 + (hour - tz[mask]) * 3600 + rng.random(mask.sum()) * 3600
    bursty = prof == "bursty"
    if bursty.any():
        runs = rng.random((len(accounts), 6)) * cfg.days * 86400
        pick = rng.integers(0, 6, bursty.sum())
        secs[bursty] = runs[acct[bursty], pick] + rng.random(bursty.sum()) * 2400
    sync = prof == "sync"
    if sync.any():
        group = accounts["_group"]
        spread = 900.0
        if cfg.knobs.shared_playbook:  # one controller fires every cell of a campaign at once
            group = accounts.select(
                pl.when(pl.col("campaign").is_not_null())
                .then(pl.col("_group").min().over("campaign"))
                .otherwise("_group")
            ).to_series()
            spread = 20.0
        groups = group.to_numpy()[acct[sync]]
        n_bursts = cfg.days * 4
        bursts = rng.random((groups.max() + 1, n_bursts)) * cfg.days * 86400
        pick = rng.integers(0, n_bursts, sync.sum())
        secs[sync] = bursts[groups, pick] + rng.random(sync.sum()) * spread
    return np.clip(secs, first_day[acct] * 86400, cfg.days * 86400 - 1)


def _kinds(rng, acct, secs, accounts: pl.DataFrame, archetypes, cfg: SimConfig) -> np.ndarray:
    """The prompt kind of each request, by archetype mix, cover traffic and campaign phase."""
    archetype = accounts["archetype"].to_numpy()[acct]
    kinds = np.empty(len(acct), dtype=object)
    for name, arch in archetypes.items():
        mask = archetype == name
        if mask.any():
            names, p = zip(*arch.kinds.items())
            kinds[mask] = np.array(names, dtype=object)[
                rng.choice(len(names), mask.sum(), p=np.array(p) / sum(p))
            ]
    late = secs > cfg.days * 86400 / 2
    early_reconstruct = (kinds == "reconstruct") & ~late
    kinds[early_reconstruct] = "agentic"
    campaign = accounts["label"].to_numpy()[acct] == 1
    cover = campaign & (rng.random(len(acct)) < cfg.knobs.cover_share)
    kinds[cover] = np.where(rng.random(cover.sum()) < 0.7, "question", "code")
    return kinds


def _models(rng, acct, secs, accounts: pl.DataFrame, archetypes, cfg: SimConfig) -> np.ndarray:
    """Model asked for: legacy mix, then adoption of the model released mid-window."""
    adopt_days = _param(accounts, archetypes, "adopt_days").astype(float)
    adopt_share = _param(accounts, archetypes, "adopt_share").astype(float)
    adopt_at = (cfg.release_day + rng.exponential(adopt_days)) * 86400
    legacy = rng.uniform(0, 0.4, len(accounts))
    r = rng.random(len(acct))
    model = np.where(r < legacy[acct], 0, 1)
    adopted = (secs >= adopt_at[acct]) & (rng.random(len(acct)) < adopt_share[acct])
    return np.array(MODELS)[np.where(adopted, 2, model)]


def _ips(rng, acct, accounts: pl.DataFrame, cfg: SimConfig) -> pl.Series:
    net = accounts["_net"].to_numpy().astype(np.int64)[acct]
    residential = (accounts["label"].to_numpy()[acct] == 1) & cfg.knobs.distinct_infra
    host = rng.integers(1, 4, len(acct)) + (accounts["_group"].to_numpy()[acct] % 50) * 4
    ip = net | np.where(residential, rng.integers(1, 255, len(acct)), host % 254 + 1)
    resi_net = (rng.integers(11, 223, len(acct)) << 24) | (rng.integers(0, 65536, len(acct)) << 8)
    ip = np.where(residential, resi_net | (ip & 255), ip)
    octets = [pl.Series(f"o{k}", (ip >> k) & 255) for k in (24, 16, 8, 0)]
    return pl.select(pl.concat_str(octets, separator=".")).to_series().alias("source_ip")


def build_requests(
    cfg: SimConfig,
    accounts: pl.DataFrame,
    archetypes: dict[str, Archetype],
    rng: np.random.Generator,
    fake: Faker,
) -> pl.DataFrame:
    """All requests of the world, sorted by time, in the canonical schema."""
    counts, first_day = _counts(rng, accounts, cfg)
    acct = np.repeat(np.arange(len(accounts)), counts)
    n = len(acct)
    pools = build_pools(rng, fake, scale=int(np.clip(n // 50, 400, 4000)))
    secs = _timestamps(rng, acct, accounts, archetypes, first_day, cfg)
    kinds = _kinds(rng, acct, secs, accounts, archetypes, cfg)
    prompts = np.empty(n, dtype=object)
    for kind in KINDS:
        mask = kinds == kind
        if mask.any() and kind != "elicit":
            pool = pools[kind]
            prompts[mask] = np.array(pool, dtype=object)[rng.integers(0, len(pool), mask.sum())]
    benchmark = kinds == "benchmark"
    if benchmark.any():  # a runner re-runs a fixed item bank
        bank = (acct[benchmark] * 7919 + rng.integers(0, 150, benchmark.sum())) % len(
            pools["benchmark"]
        )
        prompts[benchmark] = np.array(pools["benchmark"], dtype=object)[bank]
    elicit = kinds == "elicit"
    if elicit.any():
        own = accounts["_paraphrase"].to_numpy()[acct[elicit]]
        key = np.where(own, acct[elicit] * 3 + 7, accounts["_group"].to_numpy()[acct[elicit]] * 3)
        phrase = (key + rng.integers(0, 3, elicit.sum())) % len(pools["elicit_phrases"])
        task = rng.integers(0, len(pools["tasks"]), elicit.sum())
        p = np.array(pools["elicit_phrases"], dtype=object)[phrase]
        t = np.array(pools["tasks"], dtype=object)[task]
        prompts[elicit] = t + "\n\n" + p
    if cfg.knobs.shared_playbook:
        _campaign_datasets(rng, accounts, pools, acct, kinds, prompts)
    frame = _columns(cfg, rng, accounts, archetypes, pools, acct, secs, kinds, prompts)
    return frame.with_columns(pl.Series("_kind", kinds.astype(str))).sort("ts", "request_id")


def _campaign_datasets(rng, accounts: pl.DataFrame, pools, acct, kinds, prompts) -> None:
    """Each campaign's requests draw their task texts from the campaign's own fifth of each
    pool (its dataset), whichever cell sends them; elicitation keeps its phrasing."""
    names = accounts["campaign"].to_list()
    index = {c: i for i, c in enumerate(sorted({c for c in names if c is not None}))}
    camp = np.array([index.get(c, -1) for c in names])[acct]
    for kind in KINDS:
        pool = pools["tasks" if kind == "elicit" else kind]
        mask = (kinds == kind) & (camp >= 0)
        if not mask.any() or kind == "benchmark":
            continue
        size = max(10, len(pool) // 5)
        pick = (camp[mask] * size + rng.integers(0, size, mask.sum())) % len(pool)
        texts = np.array(pool, dtype=object)[pick]
        if kind == "elicit":  # keep the phrasing after the task
            texts = texts + "\n\n" + np.array([p.rsplit("\n\n", 1)[-1] for p in prompts[mask]])
        prompts[mask] = texts


def _columns(cfg, rng, accounts, archetypes, pools, acct, secs, kinds, prompts) -> pl.DataFrame:
    n = len(acct)
    param = lambda attr: _param(accounts, archetypes, attr)[acct]  # noqa: E731
    thinking = rng.random(n) < param("thinking").astype(float)
    budget_lo, budget_hi = (np.array([b[i] for b in param("budget")]) for i in (0, 1))
    budget_idx = np.minimum(
        budget_lo + np.floor(rng.random(n) * (budget_hi - budget_lo)).astype(int), len(BUDGETS) - 1
    )
    budget = np.where(thinking, BUDGETS[budget_idx], 0)
    median = np.array([OUTPUT_MEDIAN[k] for k in kinds])
    visible = np.maximum(1, rng.lognormal(np.log(median), 0.6)).astype(np.int64)
    reasoning = np.where(
        thinking, np.minimum(budget, rng.lognormal(np.log(np.maximum(budget, 1) * 0.35), 0.5)), 0
    ).astype(np.int64)
    mt_lo, mt_hi = (np.array([b[i] for b in param("max_tokens")]) for i in (0, 1))
    mt_idx = np.minimum(mt_lo + np.floor(rng.random(n) * (mt_hi - mt_lo)).astype(int), 5)
    max_tokens = MAX_TOKENS[mt_idx]
    max_tokens = np.maximum(max_tokens, budget + 1024)
    output = visible + reasoning
    truncated = output > max_tokens
    output = np.minimum(output, max_tokens)
    multi = np.ones(n, dtype=np.int32)
    for kind, (lo, hi) in MULTI_TURN.items():
        m = kinds == kind
        multi[m] = rng.integers(lo, hi + 1, m.sum())
    tools_lo, tools_hi = (np.array([t[i] for t in param("tools")]) for i in (0, 1))
    tools = np.where(
        np.isin(kinds, TOOL_KINDS),
        tools_lo + np.floor(rng.random(n) * (tools_hi - tools_lo)).astype(int),
        np.where(rng.random(n) < 0.05, rng.integers(1, 4, n), 0),
    )
    rate = accounts["_rate"].to_numpy()[acct]
    r = rng.random(n)
    status = np.select(
        [
            r < np.clip(rate / 4000, 0.002, 0.15),
            r < np.clip(rate / 4000, 0.002, 0.15) + 0.003,
            r < np.clip(rate / 4000, 0.002, 0.15) + 0.007,
        ],
        [429, 500, 400],
        200,
    )
    ok = status == 200
    system = np.full(n, None, dtype=object)
    sys_pool = {"support": "systems", "judge_product": "systems", "rag": "contexts"}
    for kind, pool_name in sys_pool.items():
        m = kinds == kind
        system[m] = np.array(pools[pool_name], dtype=object)[acct[m] % len(pools[pool_name])]
    agentish = np.isin(kinds, TOOL_KINDS)
    system[agentish] = templates.AGENT_SYSTEM
    prompt_chars = pl.Series(prompts.tolist(), dtype=pl.String).str.len_chars().to_numpy()
    sys_chars = pl.Series(system.tolist(), dtype=pl.String).str.len_chars().fill_null(0).to_numpy()
    input_tokens = (prompt_chars + sys_chars) // 4 + 1 + (multi - 1) * rng.integers(60, 500, n)
    finish = np.where(
        truncated, "max_tokens", np.where(agentish & (rng.random(n) < 0.6), "tool_use", "end_turn")
    )
    answer = np.array(pools["answers"], dtype=object)[rng.integers(0, len(pools["answers"]), n)]
    ua_group = accounts["_ua"].to_numpy()[acct]
    sdk = np.array(SDK_AGENTS, dtype=object)[(acct * 31 + rng.integers(0, 2, n)) % len(SDK_AGENTS)]
    ua = np.where(accounts["_ua"].is_null().to_numpy()[acct], sdk, ua_group)
    end_users = np.isin(kinds, ("support", "judge_product")) | param("end_users").astype(bool)
    account_ids = accounts["account_id"].to_numpy()[acct]
    ts = pl.select(
        pl.lit(cfg.start) + pl.Series(secs * 1e6).cast(pl.Int64).cast(pl.Duration("us"))
    ).to_series()
    ids = pl.int_range(n, eager=True).hash(cfg.seed)
    frame = pl.DataFrame(
        {
            "request_id": "req_" + ids.cast(pl.String),
            "ts": ts,
            "account_id": account_ids.tolist(),
            "api_key_id": account_ids.astype(str)
            + "_k"
            + (rng.integers(0, 3, n) % np.where(rate > 50, 3, 1)).astype(str),
            "end_user_id": "eu_" + rng.integers(0, 5000, n).astype(str),
            "session_id": account_ids.astype(str) + "_s" + (secs // 1800).astype(int).astype(str),
            "source_ip": _ips(rng, acct, accounts, cfg),
            "user_agent": ua.tolist(),
            "request_model": _models(rng, acct, secs, accounts, archetypes, cfg),
            "is_batch": rng.random(n) < param("batch").astype(float),
            "system": system.tolist(),
            "prompt": prompts.tolist(),
            "n_messages": multi,
            "n_tools": tools.astype(np.int32),
            "thinking_mode": np.where(thinking, "enabled", "disabled"),
            "thinking_budget_tokens": budget.astype(np.int32),
            "max_tokens": max_tokens.astype(np.int32),
            "temperature": np.where(
                rng.random(n) < param("temp_zero").astype(float),
                0.0,
                rng.choice([0.2, 0.7, 1.0], n),
            ).astype(np.float32),
            "response": answer.tolist(),
            "finish_reason": finish,
            "usage_input_tokens": input_tokens.astype(np.int64),
            "usage_output_tokens": np.where(ok, output, 0).astype(np.int64),
            "usage_reasoning_tokens": reasoning.astype(np.int64),
            "status_code": status.astype(np.int16),
            "_end_users": end_users,
            "_multi": multi > 1,
            "_thinking": thinking,
            "_ok": ok,
        }
    )
    return frame.with_columns(
        pl.when("_end_users").then("end_user_id"),
        pl.when("_multi").then("session_id"),
        pl.when("_thinking").then("thinking_budget_tokens"),
        pl.when("_ok").then("response"),
        pl.when("_ok").then("finish_reason"),
        pl.when(pl.col("_ok") & pl.col("_thinking")).then("usage_reasoning_tokens"),
    ).drop("_end_users", "_multi", "_thinking", "_ok")
