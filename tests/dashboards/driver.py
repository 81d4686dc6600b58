"""Driving the app under AppTest, and reading the warehouse behind it."""

from __future__ import annotations

from pathlib import Path

import duckdb
from streamlit.testing.v1 import AppTest

import dashboards

APP = str(Path(dashboards.__file__).parent / "app.py")


def open_page(page: str | None = None, **params) -> AppTest:
    """Run the app (and switch to `page`, e.g. "views/campaign.py") with query params."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    if page is not None:
        at.switch_page(page)
        for key, value in params.items():
            at.query_params[key] = value
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def button(at: AppTest, label: str):
    matches = [b for b in at.button if b.label == label]
    assert matches, f"no button {label!r}; have {[b.label for b in at.button]}"
    return matches[0]


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def rows(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()
