"""What every page shares: the warehouse reader, paging, inert text and decision buttons.

Reads share one read-only connection per script run, closed when the page is done (`app.py`),
so the warehouse is never held open between runs and the nightly job can take its write lock;
results are cached per query and per version of the warehouse file (any write, the nightly's
or a decision, makes a new version). Writes go through `detector.decisions`, the only code that
touches the decision tables.

DuckDB will not open one file read-only and read-write at once in one process, so the sessions
of this server take turns through a readers-writer lock: page runs share it, a decision waits
for the page runs in flight (short) and keeps new ones out until it is written. Without it a
decision failed whenever another analyst's page happened to be reading.
"""

from __future__ import annotations

import os
import re
import threading
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


_RUN = threading.local()
"""This script run's read-only connection: a run executes in one thread, start to finish."""
TURN_S = 30.0
"""How long a page run or a decision waits for its turn among this server's sessions."""


class ReadersWriter:
    """Readers share; a writer waits for the readers in flight and keeps new ones out."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    def acquire_read(self, timeout: float) -> bool:
        with self._cond:
            return (
                self._cond.wait_for(lambda: not self._writer and not self._writers_waiting, timeout)
                and self._add_reader()
            )

    def _add_reader(self) -> bool:
        self._readers += 1
        return True

    def release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            self._cond.notify_all()

    def acquire_write(self, timeout: float) -> bool:
        with self._cond:
            self._writers_waiting += 1
            try:
                ok = self._cond.wait_for(lambda: not self._writer and not self._readers, timeout)
            finally:
                self._writers_waiting -= 1
            if ok:
                self._writer = True
            else:
                self._cond.notify_all()
            return ok

    def release_write(self) -> None:
        with self._cond:
            self._writer = False
            self._cond.notify_all()


@st.cache_resource
def turns() -> ReadersWriter:
    """The one readers-writer lock of this server process."""
    return ReadersWriter()


def _connection(path: Path):
    """This run's read-only connection (opened on first use, in its turn)."""
    held = getattr(_RUN, "held", None)
    if held is None or held[0] != path:
        close_connection()
        if not turns().acquire_read(TURN_S):
            raise warehouse.WarehouseBusy(f"{path}: a decision is being written; reload")
        try:
            con = warehouse.open_waiting(path, read_only=True, wait_s=5.0)
        except BaseException:
            turns().release_read()
            raise
        held = (path, con)
        _RUN.held = held
    return held[1]


def close_connection() -> None:
    """Release the warehouse (end of every run, and before a decision is written)."""
    held = getattr(_RUN, "held", None)
    _RUN.held = None
    if held is not None:
        held[1].close()
        turns().release_read()


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
    except warehouse.WarehouseBusy as exc:
        st.warning(f"The warehouse is busy; reload in a few seconds. ({plain(exc)})")
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
    if not turns().acquire_write(TURN_S):
        st.warning("Other pages of this server kept the warehouse busy; nothing was recorded.")
        return
    done = []
    try:
        for action, kwargs in steps:
            try:
                n = getattr(decisions, action)(warehouse_path(), who.name, **kwargs)
            except ValueError as exc:
                st.error(str(exc))
                return
            except warehouse.WarehouseBusy as exc:
                st.warning(f"Nothing was recorded: {plain(exc)}. Try again.")
                return
            done.append(f"{action} on {n} subject(s)")
            st.session_state["flash"] = "Recorded " + "; ".join(done) + "."
    finally:
        turns().release_write()
    st.rerun()


def flash() -> None:
    if message := st.session_state.pop("flash", None):
        st.success(message)
