"""Runs and model: nightly runs, alert delivery, the model in use, score drift."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import polars as pl
import streamlit as st

from dashboards import charts, ui

st.title("Runs and model")

runs, total = ui.paged("r_page", "runs", page_size=30)
if total == 0:
    st.info("No nightly run recorded yet.")
    st.stop()
failed = runs.filter(pl.col("status") != "ok")
if failed.height:
    st.error(f"{failed.height} failed run(s) on this page; the error is in the last column.")
ui.table(runs)
ui.pager("r_page", total, 30)

hourly, n_hours = ui.paged("hr_page", "hourly_runs", page_size=24)
if n_hours:
    st.subheader("Hourly runs")
    st.caption(
        "`distillguard hourly`: the trailing window ending at each hour, alerts within the day "
        "(the nights stay the record)."
    )
    ui.table(hourly)
    ui.pager("hr_page", n_hours, 24)

st.subheader("Alert delivery")
outbox = ui.read("outbox")
if outbox.is_empty():
    st.caption("No alert events queued (no webhook endpoints configured, or nothing to say).")
else:
    ui.table(outbox)

st.subheader("Score drift")
quantiles = ui.read("score_quantiles")
left, right = st.columns(2)
left.altair_chart(
    charts.line(quantiles, "run_date", ["p50", "p90", "p99", "flagged_share"], "score"),
    width="stretch",
)
dates = quantiles["run_date"].to_list()
compare = sorted({dates[-1], dates[max(0, len(dates) - 8)]})
right.altair_chart(charts.histograms(ui.read("score_histogram", compare)), width="stretch")
right.caption(f"Score distribution, {' vs '.join(d.isoformat() for d in compare)}")

st.subheader("Model")
latest = runs.filter(pl.col("status") == "ok").head(1)
used = latest["model"][0] if latest.height else None
if used and used != "shipped default":
    card = Path(used) / "model.json"
else:
    card = resources.files("detector.model") / "default" / "model.json"
try:
    meta = json.loads(card.read_text())
except (OSError, ValueError) as exc:
    st.warning(f"Cannot read the model card {ui.plain(card)}: {ui.plain(exc)}")
    st.stop()
cols = st.columns(4)
cols[0].metric("model", "shipped" if used in (None, "shipped default") else Path(used).name)
cols[1].metric("feature set", meta.get("feature_set", "?"))
cols[2].metric("trained", str(meta.get("created", "?"))[:10])
cols[3].metric("threshold", f"{meta.get('threshold', float('nan')):.4g}")
validation = {k: v for k, v in meta.get("validation", {}).items() if not isinstance(v, dict)}
st.caption("Validation figures at training time (held-out account groups)")
ui.table(
    pl.DataFrame({"figure": list(validation), "value": [float(v) for v in validation.values()]})
)
