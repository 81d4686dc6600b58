"""A synthetic warehouse of any size, for the dashboard's tests, benchmark and screenshots.

It has every table the nightly job writes, filled with random but well-formed rows (scores,
campaigns that grow night to night, typed links, hourly activity, redactable sample prompts,
features for every account), written through the nightly job's own writer. It is not a
simulation of traffic: `distillguard demo` is that.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from detector import nightly, warehouse
from detector.linking.edges import EDGE_TYPES
from detector.pipeline.casefile import TARGETS
from detector.pipeline.scoring import CAMPAIGN_CELLS
from features.registry import FEATURES

PROMPTS = (
    "Solve step by step and write out your internal reasoning before the answer: {i}",
    "Grade the answer below against the rubric (1-10), output JSON only. Item {i}",
    "Rewrite this paragraph so it is safe for review, contact ops@example.com. Case {i}",
    "You are an agent with tools. Fix the failing test in repo {i} and call run_tests.",
)


def build(
    path: Path,
    accounts: int = 2_000,
    campaigns: int = 40,
    nights: int = 3,
    seed: int = 0,
    end: date = date(2026, 2, 15),
) -> Path:
    """Write a warehouse with `accounts` scored accounts and `campaigns` campaigns per night."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"acct_{i:07d}" for i in range(accounts)])
    members_total = min(accounts // 2, max(campaigns * 2, accounts // 10))
    sizes = np.maximum(2, rng.multinomial(members_total, np.ones(campaigns) / campaigns))
    base_scores = rng.beta(0.4, 12, accounts)
    con = warehouse.connect(path)
    try:
        for k in range(nights):
            day = end - timedelta(days=nights - 1 - k)
            frames = _night(rng, ids, sizes, base_scores, day, k)
            con.execute("BEGIN TRANSACTION")
            nightly.replace_night(con, day, frames)
            n_flagged = int(frames["account_scores"]["flagged"].sum())
            con.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, 'ok', ?, ?, 'shipped default', "
                "'account-v1', 7, ?, ?, ?, ?, 0, 1.0, NULL, ?)",
                [
                    day,
                    datetime.combine(day, datetime.min.time(), UTC) + timedelta(days=1),
                    datetime.combine(day, datetime.min.time(), UTC) + timedelta(days=1, minutes=5),
                    int(frames["daily_requests"]["n_requests"].sum()),
                    accounts,
                    n_flagged,
                    campaigns,
                    int((frames["account_scores"]["status"] == "review").sum()),
                ],
            )
            con.execute("COMMIT")
    finally:
        con.close()
    return path


def _night(rng, ids, sizes, base_scores, day: date, k: int) -> dict[str, pl.DataFrame]:
    n = ids.size
    start = datetime.combine(day, datetime.min.time(), UTC)
    grown = np.minimum(sizes + k, sizes * 2)  # campaigns grow by one member a night
    offsets = np.concatenate([[0], np.cumsum(sizes * 2)])
    member_rows, campaign_rows, link_rows, evidence_rows, sample_rows = [], [], [], [], []
    cell_rows = []
    campaign_of = np.full(n, None, dtype=object)
    for c, size in enumerate(grown):
        cid = f"cmp_{c:06d}"
        who = ids[offsets[c] : offsets[c] + size]
        campaign_of[offsets[c] : offsets[c] + size] = cid
        member_rows += [(cid, a) for a in who]
        kinds = rng.choice(list(EDGE_TYPES), size=2, replace=False)
        if c == 0:  # the first campaign shows every link type (the graph's legend is tested)
            kinds = np.array(list(EDGE_TYPES))
        for i in range(len(who)):
            j = (i + 1) % len(who)
            if i != j:
                kind = kinds[i % len(kinds)]
                link_rows.append((cid, who[i], who[j], kind, 1.0, f"pm_{c:04x}"))
        for kind in kinds:
            evidence_rows.append((f"c{c:05d}", kind, len(who), float(len(who)), [f"pm_{c:04x}"]))
        for i, account in enumerate(who[:3]):
            text = PROMPTS[c % len(PROMPTS)].format(i=i)
            sample_rows.append(
                (cid, account, f"req_{c}_{i}", start, "atlas-4.5", text, len(text), "ok")
            )
        campaign_rows.append(
            (
                cid,
                float(0.9 + 0.1 * rng.random()),
                len(who),
                len(who),
                start - timedelta(days=3),
                start + timedelta(hours=23),
                int(len(who) * 200),
                [f"members' median share_grading = 0.3 vs legitimate median 0 (campaign {c})"],
                f"c{c:05d}",
                [list(TARGETS.values())[c % len(TARGETS)], EDGE_TYPES[kinds[0]].meaning],
                2 if c == 0 else 1,
                ["the same 412 task texts sent from 2 of its cells"] if c == 0 else [],
            )
        )
        halves = [who[: len(who) // 2], who[len(who) // 2 :]] if c == 0 else [who]
        for h, part in enumerate(halves):
            cell_rows.append(
                (
                    cid,
                    f"cell_{c:06d}{h}",
                    f"c{c:05d}",
                    len(part),
                    len(part),
                    0.9,
                    [f"{len(part)} link(s): payment (pm_{c:04x})"],
                    ["with the other cell: 412 shared task texts"] if c == 0 else [],
                )
            )
    in_campaign = campaign_of != None  # noqa: E711 (numpy elementwise)
    scores = np.where(in_campaign, 0.95 + 0.05 * rng.random(n), base_scores)
    requests = rng.poisson(30, n) + 1
    hourly = pl.DataFrame(
        {
            "account_id": np.repeat(ids[in_campaign], 24),
            "hour": np.tile(
                np.array(
                    [start.replace(tzinfo=None) + timedelta(hours=h) for h in range(24)],
                    dtype="datetime64[us]",
                ),
                int(in_campaign.sum()),
            ),
            "n_requests": rng.poisson(8, int(in_campaign.sum()) * 24),
        }
    ).with_columns(pl.col("hour").dt.replace_time_zone("UTC"))
    features = pl.DataFrame(
        {
            f.name: (
                rng.choice(["self_serve", "education", "enterprise"], n)
                if f.dtype == "VARCHAR"
                else rng.integers(0, 500, n)
                if f.dtype == "BIGINT"
                else rng.random(n)
            )
            for f in FEATURES
        }
    ).with_columns(pl.Series("account_id", ids))
    return {
        "account_scores": pl.DataFrame(
            {
                "account_id": ids,
                "score": scores,
                "flagged": scores >= 0.5,
                "status": np.where(
                    scores >= 0.5,
                    "flagged",
                    np.where((scores >= 0.3) & ~in_campaign, "review", "clear"),
                ),
                "campaign_id": campaign_of.tolist(),
                "reasons": [
                    ["share_grading = 0.3 vs legitimate median 0 (weight 20%)"] if m else []
                    for m in in_campaign
                ],
                "cluster": [None] * n,
            },
            schema_overrides={"campaign_id": pl.String, "cluster": pl.String},
        ),
        "campaigns": pl.DataFrame(
            campaign_rows,
            schema=list(warehouse.CAMPAIGN_COLUMNS),
            orient="row",
        ),
        "campaign_members": pl.DataFrame(
            member_rows, schema=["campaign_id", "account_id"], orient="row"
        ),
        "campaign_cells": pl.DataFrame(
            cell_rows,
            schema=CAMPAIGN_CELLS,
            orient="row",
        ),
        "evidence": pl.DataFrame(
            evidence_rows,
            schema=["cluster", "edge_type", "n_edges", "weight", "top_values"],
            orient="row",
        ),
        "account_features": features,
        "campaign_links": pl.DataFrame(
            link_rows,
            schema=["campaign_id", "src", "dst", "edge_type", "weight", "evidence"],
            orient="row",
        ),
        "samples": pl.DataFrame(
            sample_rows,
            schema=[
                "campaign_id",
                "account_id",
                "request_id",
                "ts",
                "request_model",
                "prompt",
                "prompt_chars",
                "response",
            ],  # fmt: skip
            orient="row",
        ),
        "daily_requests": pl.DataFrame(
            {"account_id": ids, "n_requests": requests, "n_tokens": requests * 900}
        ),
        "hourly_requests": hourly,
        "rule_hits": _rule_hits(campaign_rows, ids[in_campaign]),
    }


def _rule_hits(campaign_rows: list[tuple], flagged_ids: np.ndarray) -> pl.DataFrame:
    """The shipped campaign rule reports every campaign; a shadow rule fires on every other
    campaign member (hits as the nightly job records them)."""
    import orjson

    hits = [
        ("campaign_report", 1, "enforce", "campaign", row[0], orjson.dumps({"n_flagged": row[3]}))
        for row in campaign_rows
    ]
    hits += [
        ("reseller_hydra", 1, "shadow", "account", a, orjson.dumps({"cluster_size": 9.0}))
        for a in flagged_ids[::2]
    ]
    return pl.DataFrame(
        [(*h[:5], h[5].decode()) for h in hits],
        schema=["rule_id", "rule_version", "mode", "subject_kind", "subject_id", "evidence"],
        orient="row",
    )
