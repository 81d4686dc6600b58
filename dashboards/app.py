"""The distillguard triage dashboard: `distillguard dashboard --warehouse W` starts it."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboards import access, ui

ICON = Path(__file__).parent / "static" / "icon.png"
# a local image: a material icon here makes the browser fetch the favicon from Google's servers
st.set_page_config(page_title="distillguard triage", page_icon=str(ICON), layout="wide")

user = access.current_user()
if user.role is None:
    st.error(f"{ui.plain(user.name)} has no role in the roles file; ask an administrator.")
    st.stop()
st.session_state["user"] = user

queue = st.Page("views/queue.py", title="Campaign queue", icon=":material/list:", url_path="queue")
pages = [
    # the root URL opens the queue; a default page would answer only at "/", and /queue (a
    # link an analyst shares) would say "Page not found"
    st.Page(
        lambda: st.switch_page(queue),
        title="Home",
        url_path="home",
        default=True,
        visibility="hidden",
    ),
    queue,
    st.Page("views/campaign.py", title="Campaign", icon=":material/hub:", url_path="campaign"),
    st.Page(
        "views/account.py", title="Account", icon=":material/person_search:", url_path="account"
    ),
    st.Page("views/runs.py", title="Runs and model", icon=":material/monitoring:", url_path="runs"),
    st.Page("views/rules.py", title="Rules", icon=":material/rule:", url_path="rules"),
    st.Page("views/decisions.py", title="Decisions", icon=":material/gavel:", url_path="decisions"),
]
navigation = st.navigation(pages)
with st.sidebar:
    st.caption(f"{ui.plain(user.name)} · {user.role} · {user.how}")
    st.caption(f"Warehouse: {ui.plain(ui.warehouse_path())}")
try:
    navigation.run()
finally:
    ui.close_connection()
