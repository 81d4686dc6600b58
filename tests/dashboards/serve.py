"""Running the dashboard server and driving it from headless Chromium (tests, screenshots).

`running` starts `distillguard dashboard` (the command users run) on a free loopback port and
waits on Streamlit's health endpoint. Chromium is Debian's package, driven by playwright
without playwright's own browser download.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers' /dev/shm is often too small for Chromium
)
PAGES = (  # path, a text that shows the page has rendered, picture name
    ("/", "Bulk actions", "queue"),
    ("/campaign?id={campaign}", "Sample prompts (redacted)", "campaign"),
    ("/account?id={account}", "History of decisions", "account"),
    ("/runs", "Validation figures", "runs"),
    ("/decisions", "Training labels from decisions", "decisions"),
    ("/rules", "Its hits that analysts dismissed", "rules"),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(
    warehouse: Path, log: Path, env: dict[str, str] | None = None, wait_s: float = 90.0
) -> Iterator[str]:
    """`distillguard dashboard` on a free loopback port; yields its URL once it is healthy."""
    port = free_port()
    cli = Path(sys.executable).parent / "distillguard"
    argv = [str(cli), "dashboard", "--warehouse", str(warehouse), "--port", str(port)]
    with log.open("w") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=os.environ | (env or {})
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + wait_s
            while not _healthy(url):
                if proc.poll() is not None:
                    raise RuntimeError(f"dashboard exited {proc.returncode}: {log.read_text()}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"dashboard not healthy after {wait_s:.0f} s: {log}")
                time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.read() == b"ok"
    except OSError:
        return False


@contextmanager
def chromium():
    """Headless Debian chromium under playwright (a test dependency)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} missing: run scripts/system-deps.sh chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=list(CHROMIUM_FLAGS))
        try:
            yield browser
        finally:
            browser.close()


def settle(page, text: str, timeout_ms: int = 60_000) -> None:
    """Wait until `text` shows and Streamlit has finished running and drawing the page."""
    page.get_by_text(text, exact=False).first.wait_for(timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-testid=\"stSkeleton\"]')",
        timeout=timeout_ms,
    )
    page.wait_for_timeout(500)  # charts draw after the script finishes


def screenshots(browser, url: str, out: Path, campaign: str, account: str) -> list[Path]:
    """A picture of every page (a tall window: Streamlit scrolls inside its own container)."""
    out.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1440, "height": 2400})
    taken = []
    for path, marker, name in PAGES:
        page.goto(url + path.format(campaign=campaign, account=account))
        settle(page, marker)
        if page.locator('[data-testid="stException"]').count():
            shown = page.locator('[data-testid="stException"]').first.inner_text()
            raise RuntimeError(f"the {name} page raised: {shown}")
        page.screenshot(path=out / f"{name}.png")
        taken.append(out / f"{name}.png")
    page.close()
    return taken


if __name__ == "__main__":  # python -m tests.dashboards.serve WAREHOUSE OUT CAMPAIGN ACCOUNT
    import tempfile

    warehouse_file, folder, campaign_id, account_id = sys.argv[1:5]
    log_file = Path(tempfile.mkdtemp()) / "server.log"
    with running(Path(warehouse_file), log_file) as base, chromium() as b:
        for shot in screenshots(b, base, Path(folder), campaign_id, account_id):
            print(shot)
