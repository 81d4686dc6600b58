"""Decisions: the audit log, the live allow-list, and the labels decisions give training."""

from __future__ import annotations

import io

import streamlit as st

from dashboards import queries, ui

st.title("Decisions")

st.subheader("Audit log")
mine = st.toggle("Only mine", key="d_mine")
rows, total = ui.paged("d_page", "audit", ui.user().name if mine else None)
ui.table(rows)
ui.pager("d_page", total, queries.PAGE)

st.subheader("Allow-list")
allowed, total = ui.paged("d_allow_page", "allowlist")
ui.table(allowed)
ui.pager("d_allow_page", total, queries.PAGE)

st.subheader("Training labels from decisions")
st.caption(
    "Confirmed accounts and members of confirmed campaigns are label 1; dismissed and "
    "allow-listed ones 0. `distillguard labels --warehouse W --out labels.parquet` writes the "
    "same table for `distillguard train --labels`."
)
if st.button("Prepare labels file", key="d_labels"):
    labels = ui.read("labels")
    buffer = io.BytesIO()
    labels.write_parquet(buffer)
    st.write(f"{labels.height:,} labelled account(s), {int(labels['label'].sum()):,} positive.")
    st.download_button("Download labels.parquet", buffer.getvalue(), "labels.parquet")
