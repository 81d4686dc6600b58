"""Account page: any account's score history, features, links, requests and decisions."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import charts, ui

st.title("Account")
ui.flash()

text = ui.lookup("Account id", "a_id", "Enter an account id, or open one from a campaign.")
history = ui.read("account_history", text)
if history.is_empty():
    ui.not_found(
        f"No scores for account {ui.plain(text)}.",
        "views/account.py",
        ui.read("find_accounts", text),
        "Accounts starting so:",
    )

last = history.row(-1, named=True)
night = last["run_date"]
allowed = ui.read("allow_entry", text)
st.caption(f"{ui.plain(text)} · latest night {night.isoformat()}")
cols = st.columns(4)
cols[0].metric("score", f"{last['score']:.3f}")
cols[1].metric("status", last["status"])
cols[2].metric("requests that day", f"{last['n_requests'] or 0:,}")
cols[3].metric(
    "allow-listed",
    "until "
    + (f"{allowed['expires_at']:%Y-%m-%d}" if allowed and allowed["expires_at"] else "revoked")
    if allowed
    else "no",
)
if last["campaign_id"]:
    st.page_link(
        "views/campaign.py",
        label=f"Member of campaign {ui.plain(last['campaign_id'])}",
        query_params={"id": last["campaign_id"]},
        icon=":material/hub:",
    )

st.subheader("Why")
for reason in last["reasons"] or ["(not flagged: no reasons kept)"]:
    ui.inert(reason, limit=600)
fired = ui.read("rule_hits_on", "account", text, night)
st.caption("Rules that fired (enforced and shadow)" if fired.height else "No rule fired.")
if fired.height:
    ui.table(fired)

scores, volume = st.columns(2)
with scores:
    st.subheader("Score over nights")
    st.altair_chart(charts.line(history, "run_date", "score", "score"), width="stretch")
with volume:
    st.subheader("Requests per day")
    st.altair_chart(
        charts.bars(history.fill_null(0), "run_date", "n_requests", "requests", daily=True),
        width="stretch",
    )
hours = ui.read("account_hours", text, night)
if hours.height:
    st.altair_chart(charts.bars(hours, "hour", "n_requests", "requests per hour"), width="stretch")

features, links = st.columns(2)
with features:
    st.subheader(f"Features ({night.isoformat()})")
    medians = ui.read("feature_medians", night)
    features = ui.read("account_features", text, night).with_columns(
        pl.col("feature")
        .replace_strict(medians, default=None, return_dtype=pl.Float64)
        .alias("median")
    )
    ui.table(features, height=420)
    st.caption("median: over the night's unflagged accounts")
with links:
    st.subheader("Links within its campaign")
    ui.table(ui.read("account_links", text, night))
    st.subheader("Campaigns over nights")
    ui.table(
        history.select("run_date", "campaign_id", "flagged").filter(
            pl.col("campaign_id").is_not_null()
        )
    )

if ui.user().can_decide:
    st.subheader("Decision")
    with st.form("a_decision"):
        verdict = st.radio(
            "Verdict", ["confirmed", "dismissed", "reopened"], horizontal=True, key="a_verdict"
        )
        reason = st.text_input("Reason", key="a_reason")
        if st.form_submit_button("Record verdict", type="primary"):
            ui.record("decide", kind="account", ids=[text], verdict=verdict, reason=reason)
    with st.form("a_allow"):
        why_allow = st.text_input(
            "Allow-list reason (e.g. known benchmark customer)", key="a_allow_reason"
        )
        expires = ui.expiry_input("a_expiry")
        add, remove = st.columns(2)
        if add.form_submit_button("Allow-list"):
            ui.record("allow", account_ids=[text], reason=why_allow, expires_at=expires)
        if remove.form_submit_button("Remove from allow-list"):
            ui.record("disallow", account_ids=[text], reason=why_allow)

st.subheader("History of decisions")
ui.table(ui.read("decisions_on", "account", text))
