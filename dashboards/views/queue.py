"""Campaign queue: the night's campaigns by score, filtered, paged, with bulk decisions."""

from __future__ import annotations

from urllib.parse import quote

import polars as pl
import streamlit as st

from dashboards import queries, ui


def _select_page(ids: list[str]) -> None:
    st.session_state["q_chosen"] = list(ids) if st.session_state["q_all"] else []


SCORE = st.column_config.ProgressColumn("score", min_value=0.0, max_value=1.0, format="%.3f")


def _opens(page: str):
    """A link column to `page?id=...`, showing the id."""
    return st.column_config.LinkColumn(page, display_text=rf"{page}\?id=(.*)", width="medium")


def _held(day) -> None:
    """Accounts held for review: flagged by the model but unlike anything it was trained on,
    and linked to no campaign. Never alerted; an analyst decides."""
    rows, total = ui.paged("h_page", "held", day)
    st.subheader(f"Held for review ({total:,})")
    if total == 0:
        st.caption("No account held for review this night.")
        return
    st.caption(
        "The model would flag these accounts, but their inputs lie outside everything it was "
        "trained on and no link ties them to a campaign: look before acting, and label them "
        "for `distillguard train`."
    )
    shown = rows.select(
        ("account?id=" + pl.col("account_id")).alias("open"),
        "score",
        pl.col("reasons").list.first().alias("why held"),
    )
    ui.table(
        shown,
        column_config={"open": _opens("account"), "score": SCORE},
    )
    ui.pager("h_page", total, queries.PAGE)


def _within_the_day() -> None:
    """The latest hourly run and the campaigns first alerted in the 24 hours before it (text
    and links only: the hourly job's early warning, before the night's record exists)."""
    latest = ui.read("latest_hourly")
    if latest is None:
        return
    st.markdown(
        f"**Latest hourly run** {latest['hour']:%Y-%m-%d %H:%M} UTC: {latest['status']}, "
        f"{latest['n_flagged'] or 0:,} accounts flagged, {latest['n_campaigns'] or 0:,} "
        f"campaign(s), {latest['n_new_campaigns'] or 0:,} new."
    )
    fresh = ui.read("first_seen_within_day")
    if fresh.is_empty():
        st.caption("No campaign first alerted within the 24 hours before it.")
        return
    lines = [
        f"- [{ui.plain(r['campaign_id'])}](campaign?id={quote(r['campaign_id'])}) first alerted "
        f"{r['first_at']:%Y-%m-%d %H:%M} UTC by the {r['source']} job"
        + (f", {r['n_accounts']:,} accounts" if r["n_accounts"] is not None else "")
        for r in fresh.head(10).iter_rows(named=True)
    ]
    st.markdown("**First seen within the day**\n" + "\n".join(lines))


st.title("Campaign queue")
ui.flash()
_within_the_day()
day = ui.night()

left, middle, right, far = st.columns([3, 2, 3, 2])
statuses = left.multiselect("Status", queries.STATUSES, default=["new", "open"], key="q_status")
min_score = middle.slider("Minimum score", 0.0, 1.0, 0.0, 0.05, key="q_score")
tactics = right.multiselect("Tactic", ui.read("tactic_names", day), key="q_tactic")
who = far.selectbox("Assignee", ["anyone", "me", "unassigned"], key="q_assignee")
assignee = {"anyone": None, "me": ui.user().name, "unassigned": ""}[who]

rows, total = ui.paged("q_page", "queue", day, statuses, min_score, tactics, assignee)
if total == 0:
    st.info(f"No campaign matches these filters on {day.isoformat()}.")
    _held(day)
    st.stop()

shown = rows.with_columns(
    ("campaign?id=" + pl.col("campaign_id")).alias("open"),
    pl.col("tactics").list.join(", "),
).select(
    "open",
    "score",
    "status",
    "n_accounts",
    "growth",
    "n_flagged",
    "assignee",
    "first_seen",
    "last_seen",
    "n_requests",
    "tactics",
)
ui.table(
    shown,
    column_config={
        "open": _opens("campaign"),
        "score": SCORE,
        "growth": st.column_config.NumberColumn(
            "growth", help="accounts added since the night before"
        ),
    },
)
ui.pager("q_page", total, queries.PAGE)

if ui.user().can_decide:
    st.subheader("Bulk actions")
    ids = rows["campaign_id"].to_list()
    # keep only this page's ids (filters or the page may have changed since the last run)
    kept = [c for c in st.session_state.get("q_chosen", []) if c in ids]
    st.session_state["q_chosen"] = kept
    st.checkbox(
        "Select every campaign on this page", key="q_all", on_change=_select_page, args=(ids,)
    )
    chosen = st.multiselect("Campaigns", ids, key="q_chosen")
    reason = st.text_input("Reason (required for confirm and dismiss)", key="q_reason")
    to = st.text_input("Assign to (analyst)", key="q_to")
    claim, give, drop, confirm, dismiss = st.columns(5)
    if claim.button("Claim", key="q_claim", disabled=not chosen):
        ui.record("assign", campaign_ids=chosen, analyst=ui.user().name)
    if give.button("Assign", key="q_give", disabled=not chosen):
        ui.record("assign", campaign_ids=chosen, analyst=to)
    if drop.button("Unassign", key="q_drop", disabled=not chosen):
        ui.record("assign", campaign_ids=chosen, analyst=None)
    if confirm.button("Confirm", key="q_confirm", disabled=not chosen, type="primary"):
        ui.record("decide", kind="campaign", ids=chosen, verdict="confirmed", reason=reason)
    if dismiss.button("Dismiss", key="q_dismiss", disabled=not chosen):
        ui.record("decide", kind="campaign", ids=chosen, verdict="dismissed", reason=reason)

_held(day)
