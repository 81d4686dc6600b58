"""The baseline users would otherwise write: the same per-account features in plain pandas.

Reads the store's Parquet partitions whole, applies the marker lexicons and skeleton masking
with pandas string methods, and aggregates with groupby. Near-duplicates are approximated by
exact skeleton duplicates (pandas has no MinHash). Used only by bench_features.py.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from features.markers import FAMILIES
from features.signals import MASK

COLUMNS = [
    "account_id",
    "ts",
    "prompt",
    "system",
    "request_model",
    "source_ip",
    "api_key_id",
    "user_agent",
    "n_tools",
    "n_messages",
    "thinking_mode",
    "thinking_budget_tokens",
    "status_code",
    "usage_input_tokens",
    "usage_output_tokens",
    "is_batch",
    "end_user_id",
]


def features(store: Path) -> pd.DataFrame:
    files = sorted((store / "requests").glob("dt=*/*.parquet"))
    df = pd.concat([pd.read_parquet(f, columns=COLUMNS) for f in files], ignore_index=True)
    prompt = df["prompt"].fillna("")
    low = prompt.str.slice(0, 4000).str.lower()
    for fam in FAMILIES:
        pattern = "|".join([re.escape(p) for p in fam.phrases] + list(fam.patterns))
        df[fam.name] = low.str.contains(pattern, regex=True, flags=re.IGNORECASE)
    skel = prompt.str.slice(0, 240).str.replace(MASK.replace("(?-u:\\b)", "\\b"), "§", regex=True)
    df["skel"] = skel.str.lower().str.replace(r"\s+", " ", regex=True).str.strip()
    df["head"] = df["skel"].str.slice(0, 60)
    df["tail"] = df["skel"].str.slice(-60)
    df["hour"] = df["ts"].dt.hour
    df["dow"] = df["ts"].dt.dayofweek
    df["subnet"] = df["source_ip"].str.rsplit(".", n=1).str[0]
    df["t"] = df["ts"].astype("int64") / 1e6
    g = df.groupby("account_id")
    out = pd.DataFrame(
        {
            "n_requests": g.size(),
            "n_active_days": g["ts"].apply(lambda s: s.dt.date.nunique()),
            "input_tokens": g["usage_input_tokens"].sum(),
            "output_tokens": g["usage_output_tokens"].sum(),
            "mean_prompt_chars": g["prompt"].apply(lambda s: s.str.len().mean()),
            "weekend_share": g["dow"].apply(lambda s: (s >= 5).mean()),
            "distinct_skeleton_share": g["skel"].nunique() / g.size(),
            "top_head_share": g["head"].agg(lambda s: s.value_counts().iloc[0]) / g.size(),
            "top_tail_share": g["tail"].agg(lambda s: s.value_counts().iloc[0]) / g.size(),
            "near_dup_rate": g["skel"].agg(lambda s: s.duplicated(keep=False).mean()),
            "thinking_share": g["thinking_mode"].apply(
                lambda s: s.isin(["enabled", "adaptive"]).mean()
            ),
            "tools_share": g["n_tools"].apply(lambda s: (s > 0).mean()),
            "rate_429": g["status_code"].apply(lambda s: (s == 429).mean()),
            "n_ips": g["source_ip"].nunique(),
            "n_subnets": g["subnet"].nunique(),
            "n_api_keys": g["api_key_id"].nunique(),
            "n_user_agents": g["user_agent"].nunique(),
            "batch_share": g["is_batch"].mean(),
            "n_models": g["request_model"].nunique(),
        }
    )
    for fam in FAMILIES:
        out["share_" + fam.name.removeprefix("marker_")] = g[fam.name].mean()

    def entropy(hours: pd.Series) -> float:
        p = hours.value_counts(normalize=True).to_numpy()
        return float(-(p * np.log(p)).sum() / np.log(24))

    def burstiness(t: pd.Series) -> float:
        gaps = t.sort_values().diff().dropna()
        if gaps.empty or gaps.std(ddof=0) + gaps.mean() == 0:
            return 0.0
        return float((gaps.std(ddof=0) - gaps.mean()) / (gaps.std(ddof=0) + gaps.mean()))

    out["hour_entropy"] = g["hour"].apply(entropy)
    out["active_hours_share"] = g["hour"].nunique() / 24
    out["burstiness"] = g["t"].apply(burstiness)
    return out.reset_index()


if __name__ == "__main__":
    frame = features(Path(sys.argv[1]))
    frame.to_parquet(sys.argv[2])
