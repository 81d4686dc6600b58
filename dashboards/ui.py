"""What every page shares: the warehouse reader, paging, inert text and decision buttons.

Reads share one read-only connection per script run, closed when the page is done (`app.py`),
so the warehouse is never held open between runs and the nightly job can take its write lock;
results are cached per query and per version of the warehouse file (any write, the nightly's
or a decision, makes a new version). Writes go through
`detector.decisions`, the only code that touches the decision tables.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import polars as pl
import streamlit as st

from dashboards import queries
from dashboards.access import User
from detector import decisions, warehouse

DISPLAY_CHARS = 4_000
"""Prompt text shown per sample; the rest is counted, never sent to the browser."""


def warehouse_path() -> Path:
    return Path(os.environ.get("DISTILLGUARD_WAREHOUSE", "warehouse.duckdb"))


def _version(path: Path) -> tuple:
    stamp = []
    for file in (path, Path(f"{path}.wal")):
        if file.exists():
            info = file.stat()
            stamp.append((info.st_mtime_ns, info.st_size))
    return tuple(stamp)


_CON = "_warehouse_connection"


def _connection(path: Path):
    """This run's read-only connection (opened on first use)."""
    held = st.session_state.get(_CON)
    if held is None or held[0] != path:
        close_connection()
        held = (path, warehouse.open_waiting(path, read_only=True, wait_s=5.0))
        st.session_state[_CON] = held
    return held[1]


def close_connection() -> None:
    """Release the warehouse (end of every run, and before a decision is written)."""
    held = st.session_state.pop(_CON, None)
    if held is not None:
        held[1].close()


@st.cache_data(ttl=600, max_entries=1000, show_spinner=False)
def _cached(path: str, version: tuple, name: str, args: tuple, kwargs: tuple):
    return getattr(queries, name)(_connection(Path(path)), *args, **dict(kwargs))


def read(name: str, *args, **kwargs):
    """`queries.<name>(con, *args, **kwargs)` on the warehouse; stops the page with a message
    when there is no warehouse or it stays busy."""
    path = warehouse_path()
    try:
        return _cached(str(path), _version(path), name, args, tuple(sorted(kwargs.items())))
    except FileNotFoundError:
        st.info(
            f"No warehouse at `{path}` yet. Run `distillguard nightly --warehouse {path}` "
            "(or `make demo`) and reload."
        )
        st.stop()
    except warehouse.WarehouseBusy:
        st.warning("The nightly job is writing the warehouse; reload in a few seconds.")
        st.stop()


def night(key: str = "night"):
    """The run date chosen in the sidebar (newest by default); stops when there is none."""
    dates = read("run_dates")
    if not dates:
        st.info("The warehouse has no successful nightly run yet.")
        st.stop()
    return st.sidebar.selectbox("Night", dates, key=key, format_func=lambda d: d.isoformat())


def lookup(label: str, key: str, hint: str) -> str:
    """An id typed into the page or given in the URL (`?id=`), kept in step with the URL so a
    page can be linked and bookmarked; stops the page with `hint` while it is empty."""
    wanted = st.query_params.get("id", "")
    text = st.text_input(label, value=wanted, key=key).strip()
    if text != wanted:
        st.query_params["id"] = text
    if not text:
        st.info(hint)
        st.stop()
    return text


def not_found(message: str, page: str, matches: list[str], offer: str) -> None:
    """Say an id is unknown, link the close ones (`offer` introduces them) and stop the page."""
    st.warning(message + (f" {offer}" if matches else ""))
    for match in matches:
        st.page_link(page, label=match, query_params={"id": match})
    st.stop()


def user() -> User:
    return st.session_state["user"]


def paged(key: str, name: str, *args, **kwargs) -> tuple[pl.DataFrame, int]:
    """One page of `queries.<name>` (which returns rows and the total), the page number kept in
    the session under `key`; a page past the end (filters changed) falls back to the first."""
    page = int(st.session_state.get(key, 1)) - 1
    rows, total = read(name, *args, page=page, **kwargs)
    if rows.is_empty() and page > 0:
        st.session_state[key] = 1
        rows, total = read(name, *args, page=0, **kwargs)
    return rows, total


def pager(key: str, total: int, page_size: int) -> None:
    """The page number input under a table that `paged` read with the same key."""
    pages = max(1, -(-total // page_size))
    if pages == 1:
        st.caption(f"{total:,} row(s)")
        return
    st.number_input(f"Page (of {pages:,}; {total:,} rows)", 1, pages, key=key, width=220)


def inert(text: str | None, limit: int = DISPLAY_CHARS) -> None:
    """Untrusted text (prompts, responses, values from traffic) as plain preformatted text:
    never HTML, never markdown, cut to `limit` characters."""
    text = text or ""
    st.text(text[:limit])
    if len(text) > limit:
        st.caption(f"... {len(text) - limit:,} more characters not shown")


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def plain(text: object) -> str:
    """Text from outside (an id typed into the URL, a model name from traffic, a user name) made
    safe inside a label or message that Streamlit renders as markdown: every markdown character
    backslash-escaped, so it shows as typed and never becomes a link, image or markup."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def table(frame: pl.DataFrame, **kwargs) -> None:
    st.dataframe(frame, hide_index=True, width="stretch", **kwargs)


def expiry_input(key: str) -> datetime | None:
    days = st.selectbox(
        "Allow-list for",
        [30, 90, 365, None],
        format_func=lambda d: "no expiry" if d is None else f"{d} days",
        key=key,
    )
    if days is None:
        return None
    return datetime.combine(datetime.now(UTC).date() + timedelta(days=days), time(0), UTC)


def record(action: str, **kwargs) -> None:
    """Run a `detector.decisions` writer for the current analyst and say what happened."""
    record_all([(action, kwargs)])


def record_all(steps: list[tuple[str, dict]]) -> None:
    """Run `detector.decisions` writers in order, stopping at the first refusal."""
    who = user()
    if not who.can_decide:
        st.error("Viewers cannot record decisions.")
        return
    close_connection()  # a writer needs the file to itself
    done = []
    for action, kwargs in steps:
        try:
            n = getattr(decisions, action)(warehouse_path(), who.name, **kwargs)
        except ValueError as exc:
            st.error(str(exc))
            return
        except warehouse.WarehouseBusy:
            st.warning("The warehouse is busy (nightly run); nothing was recorded, try again.")
            return
        done.append(f"{action} on {n} subject(s)")
        st.session_state["flash"] = "Recorded " + "; ".join(done) + "."
    st.rerun()


def flash() -> None:
    if message := st.session_state.pop("flash", None):
        st.success(message)
