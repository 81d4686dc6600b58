"""Campaign page: evidence, the operation's cells and what joins them, members, link graph,
timeline, samples and the decision on it."""

from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import charts, queries, ui

st.title("Campaign")
ui.flash()

text = ui.lookup("Campaign id", "c_id", "Enter a campaign id, or open one from the queue.")
night = ui.read("latest_night", text)
if night is None:
    ui.not_found(
        f"No campaign {ui.plain(text)}.",
        "views/campaign.py",
        ui.read("search_campaigns", text),
        "Did you mean one of these?",
    )
row = ui.read("campaign", text, night)

st.caption(
    f"{ui.plain(text)} · latest night {night.isoformat()} · status {row['status']} · "
    f"assignee {ui.plain(row['assignee'] or 'none')}"
)
cols = st.columns(6)
cols[0].metric("score", f"{row['score']:.3f}")
cols[1].metric("accounts", row["n_accounts"], delta=row["growth"] or None)
cols[2].metric("flagged", row["n_flagged"])
cols[3].metric("requests", f"{row['n_requests']:,}")
cols[4].metric("first seen", row["first_seen"].strftime("%b %d"))
cols[5].metric("last seen", row["last_seen"].strftime("%b %d"))
if row["tactics"]:
    st.caption("Tactics: " + " · ".join(row["tactics"]))

why, infra = st.columns([3, 2])
with why:
    st.subheader("Why it was flagged")
    for reason in row["reasons"] or []:
        ui.inert(reason, limit=600)
    fired = ui.read("rule_hits_on", "campaign", text, night)
    st.caption("Rules that fired on the campaign" if fired.height else "No campaign rule fired.")
    if fired.height:
        ui.table(fired)
with infra:
    st.subheader("Shared infrastructure")
    shared = ui.read("evidence", row["cluster"], night)
    ui.table(shared.with_columns(pl.col("top_values").list.join(", ")))

cells = ui.read("cells", text, night)
if cells.height > 1:
    st.subheader(f"Operation: {cells.height} cells")
    st.caption("What joins them into one operation:")
    for line in ui.read("attribution", text, night):
        ui.inert(line, limit=300)
    ui.table(
        cells.with_columns(
            pl.col("shares").list.join("; "),
            pl.col("joined_by").list.join(" | "),
        )
    )

nights = ui.read("campaign_nights", text)
if nights.height > 1:
    st.subheader("Size over nights")
    st.altair_chart(charts.line(nights, "run_date", ["n_accounts", "n_flagged"], "accounts"))

st.subheader("Link graph")
nodes, edges = ui.read("graph", text, night)
if nodes.height:
    st.altair_chart(charts.link_graph(nodes, edges), width="stretch")
    if row["n_accounts"] > nodes.height:
        st.caption(f"The {nodes.height} highest-scored of {row['n_accounts']} members.")

st.subheader("Activity")
hours = ui.read("timeline", text, night)
if hours.height:
    st.altair_chart(charts.heatmap(hours), width="stretch")
else:
    st.caption("No hourly activity stored for this night.")

st.subheader("Members")
members, total = ui.paged("c_page", "members", text, night)
ui.table(
    members.with_columns(("account?id=" + pl.col("account_id")).alias("account_id")),
    column_config={
        "account_id": st.column_config.LinkColumn("account", display_text=r"account\?id=(.*)"),
        "score": st.column_config.ProgressColumn(
            "score", min_value=0.0, max_value=1.0, format="%.3f"
        ),
    },
)
ui.pager("c_page", total, queries.PAGE)

st.subheader("Sample prompts (redacted)")
samples = ui.read("samples", text, night)
if samples.is_empty():
    st.caption("No samples stored for this night.")
for sample in samples.iter_rows(named=True):
    with st.expander(
        f"{ui.plain(sample['account_id'])} · {sample['ts']:%Y-%m-%d %H:%M} · "
        f"{ui.plain(sample['request_model'])} · "
        f"{sample['prompt_chars']:,} characters"
    ):
        ui.inert(sample["prompt"])
        if sample["response"]:
            st.caption("Response")
            ui.inert(sample["response"], limit=1_000)

if ui.user().can_decide:
    st.subheader("Decision")
    with st.form("c_decision"):
        verdict = st.radio(
            "Verdict", ["confirmed", "dismissed", "reopened"], horizontal=True, key="c_verdict"
        )
        reason = st.text_input("Reason", key="c_reason")
        also = st.checkbox("Also allow-list every member (dismissals only)", key="c_allow")
        expires = ui.expiry_input("c_expiry")
        if st.form_submit_button("Record decision", type="primary"):
            steps = [
                (
                    "decide",
                    {"kind": "campaign", "ids": [text], "verdict": verdict, "reason": reason},
                )
            ]
            if also and verdict == "dismissed":
                everyone = ui.read("member_ids", text, night)
                steps.append(
                    ("allow", {"account_ids": everyone, "reason": reason, "expires_at": expires})
                )
            ui.record_all(steps)
    claim, release = st.columns(2)
    if claim.button("Claim", key="c_claim"):
        ui.record("assign", campaign_ids=[text], analyst=ui.user().name)
    if release.button("Unassign", key="c_release"):
        ui.record("assign", campaign_ids=[text], analyst=None)

st.subheader("History of decisions")
ui.table(ui.read("decisions_on", "campaign", text))
