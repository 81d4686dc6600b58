"""Rules: each rule's metadata and mode, its hits over nights, its backtest and its known false
positives; an analyst changes a rule's mode here (audit-logged, read by the next nightly run)."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import streamlit as st

from dashboards import charts, ui
from detector import rules

st.title("Rules")
ui.flash()

folder = os.environ.get("DISTILLGUARD_RULES")
try:
    ruleset = rules.load(Path(folder) if folder else None)
except rules.RuleError as exc:
    st.error(f"Your rule files could not be loaded; showing the shipped rules only. {exc}")
    ruleset = rules.load()
changes = ui.read("rule_modes")
ruleset = ruleset.with_modes({rid: row["mode"] for rid, row in changes.items()})
per_night = ui.read("rule_hits_per_night")
last = per_night["run_date"].max() if per_night.height else None
last_hits = dict(
    per_night.filter(pl.col("run_date") == last).select("rule_id", "hits").iter_rows()
    if last
    else []
)

ui.table(
    pl.DataFrame(
        {
            "rule": [r.id for r in ruleset.rules],
            "version": [r.version for r in ruleset.rules],
            "mode": [ruleset.mode(r) for r in ruleset.rules],
            "default mode": [r.mode for r in ruleset.rules],
            "severity": [r.severity for r in ruleset.rules],
            "subject": [r.subject for r in ruleset.rules],
            "hits last night": [last_hits.get(r.id, 0) for r in ruleset.rules],
            "title": [r.title for r in ruleset.rules],
        }
    )
)
st.caption(
    "enforce: a hit flags (account rules), reports (cluster rules) or re-alerts (campaign "
    "history rules); shadow: the hit is recorded and never acts or alerts; off: not run. New "
    "detection rules ship in shadow; promote one after its backtest."
)

st.subheader("Hits per night")
if per_night.is_empty():
    st.caption("No rule hits recorded yet.")
else:
    wide = per_night.pivot(on="rule_id", index="run_date", values="hits").fill_null(0)
    st.altair_chart(
        charts.line(wide.sort("run_date"), "run_date", wide.columns[1:], "hits"), width="stretch"
    )

ids = [r.id for r in ruleset.rules]
chosen = st.selectbox("Rule", ids, key="rule_id", index=0)
rule = ruleset.get(chosen)
st.subheader(f"{rule.id} v{rule.version}: {rule.title}")
cols = st.columns(3)
cols[0].metric("mode", ruleset.mode(rule))
cols[1].metric("severity", rule.severity)
cols[2].metric("hits last night", f"{last_hits.get(rule.id, 0):,}")
st.caption(
    f"Reads the `{rule.table}` table, fires on a {rule.subject}. File: {ui.plain(rule.source)}"
)
st.write(rule.description)
st.markdown("**Runbook.** " + rule.runbook)
left, right = st.columns(2)
left.markdown("**Known false positives**\n\n" + "\n".join(f"- {t}" for t in rule.false_positives))
right.markdown("**Known gaps**\n\n" + "\n".join(f"- {t}" for t in rule.gaps or ["none listed"]))
ui.table(
    pl.DataFrame(
        {
            "threshold": list(rule.thresholds),
            "value": [str(v) for v in rule.thresholds.values()],
        },
        schema={"threshold": pl.String, "value": pl.String},
    )
)
if rule.id in changes:
    change = changes[rule.id]
    st.caption(
        f"Mode set to {change['mode']} by {ui.plain(change['analyst'])} on "
        f"{change['changed_at']:%Y-%m-%d %H:%M} UTC: {ui.plain(change['reason'])}"
    )

st.subheader("Backtest")
backtest = ui.read("rule_backtest", rule.id)
if backtest.is_empty():
    st.caption(
        "No backtest recorded. `distillguard rules backtest --store S --from D1 --to D2 "
        "--labels L --warehouse W` runs every rule over the store's nights and writes here."
    )
else:
    ui.table(backtest)

st.subheader("Its hits that analysts dismissed")
dismissed = ui.read("rule_dismissed_hits", rule.id)
if dismissed.is_empty():
    st.caption("None of this rule's hits is dismissed or allow-listed.")
else:
    ui.table(dismissed)

if ui.user().can_decide:
    st.subheader("Change mode")
    with st.form("rule_mode"):
        modes = list(rules.MODES)
        mode = st.radio(
            "Mode", modes, index=modes.index(ruleset.mode(rule)), horizontal=True, key="r_mode"
        )
        reason = st.text_input("Reason", key="r_reason")
        if st.form_submit_button("Set mode"):
            ui.record("set_rule_mode", rule_id=rule.id, mode=mode, reason=reason)
