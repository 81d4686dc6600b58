"""Dashboard page times on a large warehouse: script time (AppTest, cold and warm cache) and
time to a fully drawn page in headless Chromium, side by side.

    python -m benchmarks.bench_dashboard [--accounts 100000 --campaigns 2000 --nights 7]

The warehouse is `tests.dashboards.sample` (every table the nightly writes, at the given size).
"Cold" clears Streamlit's cache first, so every query runs against DuckDB; "warm" is the same
page run again (an analyst paging back and forth). The browser figure is navigation start to
the page drawn and Streamlit idle, the cache cold: "in app" is what an analyst does most
(a sidebar link, or another id typed into the page's lookup), "URL loaded" also boots
Streamlit's frontend (a new tab, a link from an alert).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import streamlit as st
from rich.console import Console
from rich.progress import track
from rich.table import Table
from streamlit.testing.v1 import AppTest

from benchmarks.common import machine
from tests.dashboards import sample, serve

APP = str(Path(serve.__file__).parent / "app.py")
PAGE_TITLES = {"queue": "Campaign queue", "runs": "Runs and model", "decisions": "Decisions"}


def apptest_seconds(page: str, params: dict) -> tuple[float, float]:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    if page != "views/queue.py":
        at.switch_page(page)
        for key, value in params.items():
            at.query_params[key] = value
    at.run()  # once, so one-off imports and schema loads are not counted
    st.cache_data.clear()
    timings = []
    for _ in range(2):
        start = time.perf_counter()
        at.run()
        timings.append(time.perf_counter() - start)
        if at.exception:
            raise RuntimeError(f"{page}: {at.exception[0].value}")
    return timings[0], timings[1]


def browser_seconds(url: str, campaign: str, account: str) -> dict[str, tuple[float, float]]:
    """Per page: (moving to it inside the app, loading its URL afresh), cache cold for both."""
    within, fresh = {}, {}
    pause = 0.5  # settle's fixed wait for charts, not counted
    with serve.chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.goto(url + "/decisions")  # the server's imports and the websocket, once
        serve.settle(page, serve.PAGES[4][1])
        for path, marker, name in serve.PAGES:
            start = time.perf_counter()
            if name in ("campaign", "account"):  # typing another id into the page's lookup
                page.goto(url + path.format(campaign="cmp_000009", account="acct_0000009"))
                serve.settle(page, marker)
                box = page.get_by_label(f"{name.title()} id")
                start = time.perf_counter()
                wanted = campaign if name == "campaign" else account
                box.fill(wanted)
                box.press("Enter")
                serve.settle(page, f"{wanted} · latest night")  # drawn only by the new run
            else:  # the sidebar's link; the marker is not on the page we come from
                nav = page.locator("[data-testid=stSidebarNavLink]", has_text=PAGE_TITLES[name])
                nav.first.click()
                serve.settle(page, marker)
            within[name] = time.perf_counter() - start - pause
        for path, marker, name in serve.PAGES:
            start = time.perf_counter()
            page.goto(url + path.format(campaign="cmp_000001", account="acct_0000003"))
            serve.settle(page, marker)
            fresh[name] = time.perf_counter() - start - pause
    return {name: (within[name], fresh[name]) for name in within}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--campaigns", type=int, default=2_000)
    parser.add_argument("--nights", type=int, default=7)
    args = parser.parse_args()
    console = Console()
    folder = Path(tempfile.mkdtemp())
    path = folder / "warehouse.duckdb"
    start = time.perf_counter()
    with console.status(f"building a {args.accounts:,}-account warehouse"):
        sample.build(path, args.accounts, args.campaigns, args.nights)
    console.print(
        f"warehouse: {args.accounts:,} accounts x {args.nights} nights, {args.campaigns:,} "
        f"campaigns, {path.stat().st_size / 2**20:,.0f} MiB, built in "
        f"{time.perf_counter() - start:.0f} s"
    )
    os.environ["DISTILLGUARD_WAREHOUSE"] = str(path)
    campaign, account = "cmp_000000", "acct_0000001"
    pages = {
        "queue": ("views/queue.py", {}),
        "campaign": ("views/campaign.py", {"id": campaign}),
        "account": ("views/account.py", {"id": account}),
        "runs": ("views/runs.py", {}),
        "decisions": ("views/decisions.py", {}),
    }
    script = {
        name: apptest_seconds(page, params)
        for name, (page, params) in track(pages.items(), description="AppTest pages")
    }
    with serve.running(path, folder / "server.log") as url:
        drawn = browser_seconds(url, campaign, account)
    table = Table(title=f"Dashboard page times ({machine()})")
    columns = ("page", "script, cold (s)", "script, warm (s)", "browser, in app (s)",
               "browser, URL loaded (s)")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="right" if "(s)" in column else "left")
    for name, (cold, warm) in script.items():
        table.add_row(name, *(f"{v:.2f}" for v in (cold, warm, *drawn[name])))
    console.print(table)


if __name__ == "__main__":
    main()
