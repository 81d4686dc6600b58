"""The real thing: `distillguard dashboard` serving over HTTP, driven by headless Chromium.

Needs Debian's chromium at /usr/bin/chromium (`.ci/run` installs it through
scripts/system-deps.sh). Screenshots go to a temporary folder, or to the folder named by
DISTILLGUARD_SCREENSHOTS.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dashboards import serve
from tests.dashboards.driver import rows


@pytest.fixture
def browser():
    with serve.chromium() as chromium:
        yield chromium


def test_every_page_renders_in_chromium_and_a_decision_is_recorded(
    browser, warehouse_file, tmp_path
):
    shots = Path(os.environ.get("DISTILLGUARD_SCREENSHOTS", tmp_path / "shots"))
    with serve.running(warehouse_file, tmp_path / "server.log") as url:
        taken = serve.screenshots(browser, url, shots, "cmp_000000", "acct_0000001")
        assert [p.name for p in taken] == [f"{name}.png" for _, _, name in serve.PAGES]
        assert all(p.stat().st_size > 20_000 for p in taken)

        page = browser.new_page(viewport={"width": 1440, "height": 1200})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        # the hostile sample: shown as text, never run, never a link
        page.goto(url + "/campaign?id=cmp_000000")
        serve.settle(page, "Sample prompts (redacted)")
        page.get_by_text("1,000,", exact=False).first.click()  # the 1 MB sample's expander
        page.get_by_text("<script>window.__pwned = 1</script>", exact=False).first.wait_for()
        assert page.evaluate("() => window.__pwned") is None
        assert page.locator('a[href*="evil.example"]').count() == 0
        assert page.locator("img[src='x']").count() == 0

        # a decision through the browser lands in the warehouse with its audit row
        page.get_by_label("Reason").fill("hydra network confirmed in browser test")
        page.get_by_role("button", name="Record decision").click()
        serve.settle(page, "Recorded decide")
        assert not errors, errors
    assert rows(warehouse_file, "SELECT subject_id, verdict, analyst FROM verdicts") == [
        ("cmp_000000", "confirmed", "alice@example.com")
    ]
    assert rows(warehouse_file, "SELECT action FROM audit_log") == [("confirmed",)]


def test_a_rule_mode_changed_in_the_browser_is_recorded_with_its_audit_row(
    browser, warehouse_file, tmp_path
):
    with serve.running(warehouse_file, tmp_path / "server.log") as url:
        page = browser.new_page(viewport={"width": 1440, "height": 1400})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url + "/rules")
        serve.settle(page, "Its hits that analysts dismissed")
        page.get_by_text("off", exact=True).click()  # the radio of the first rule
        page.get_by_label("Reason").fill("paused while the campaign pipeline is reviewed")
        page.get_by_role("button", name="Set mode").click()
        serve.settle(page, "Recorded set_rule_mode")
        assert not errors, errors
    assert rows(warehouse_file, "SELECT rule_id, mode, analyst FROM rule_modes") == [
        ("campaign_growth", "off", "alice@example.com")
    ]
    assert rows(warehouse_file, "SELECT action, subject_id FROM audit_log") == [
        ("rule_mode", "campaign_growth")
    ]


def test_the_server_refuses_to_listen_beyond_localhost_without_login(tmp_path):
    cli = Path(sys.executable).parent / "distillguard"
    result = subprocess.run(
        [cli, "dashboard", "--address", "0.0.0.0", "--warehouse", str(tmp_path / "w.duckdb")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "without login" in result.stdout + result.stderr


def _svg(page, axis_title: str):
    """The chart (an SVG drawn by Vega) whose text includes `axis_title`."""
    return page.locator(".vega-embed svg").filter(has_text=axis_title).first


def test_regression_heatmap_cells_span_one_hour_and_legend_lists_every_link_type(
    browser, warehouse_file, tmp_path
):
    import re

    import duckdb

    from dashboards import queries
    from dashboards.charts import LINK_MEANINGS

    con = duckdb.connect(str(warehouse_file), read_only=True)
    night = queries.latest_night(con, "cmp_000000")
    _, edges = queries.graph(con, "cmp_000000", night)
    hours = queries.timeline(con, "cmp_000000", night)
    con.close()
    shown_types = {LINK_MEANINGS[t] for t in edges["edge_type"].unique()}
    assert len(shown_types) >= 7  # the sample's first campaign uses every link type
    with serve.running(warehouse_file, tmp_path / "server.log") as url:
        page = browser.new_page(viewport={"width": 1440, "height": 2400})
        page.goto(url + "/campaign?id=cmp_000000")
        serve.settle(page, "Sample prompts (redacted)")
        heat = _svg(page, "hour (UTC)")
        cells = heat.locator("g.mark-rect.role-mark path")
        assert cells.count() == hours.height
        widths = [
            float(re.search(r"h(-?[\d.]+)", d).group(1))
            for d in cells.evaluate_all("els => els.map(e => e.getAttribute('d'))")
        ]
        plot = float(heat.get_attribute("width"))
        # one hour of the axis: a cell spanning the whole chart was the bug
        assert max(widths) < plot / 20
        fills = cells.evaluate_all("els => els.map(e => e.getAttribute('fill'))")
        assert len(set(fills)) >= 5  # counts from 1 to 14 show as different colours
        graph = _svg(page, "link type")
        labels = set(
            graph.locator("g.role-legend text").evaluate_all("els => els.map(e => e.textContent)")
        )
        assert shown_types <= labels, shown_types - labels


def test_the_dashboard_works_offline_and_queue_links_open(browser, warehouse_file, tmp_path):
    with serve.running(warehouse_file, tmp_path / "server.log") as url:
        page = browser.new_page(viewport={"width": 1440, "height": 1200})
        outside: list[str] = []
        page.on("request", lambda r: None if r.url.startswith(url) else outside.append(r.url))
        for path, marker in (("/queue", "Bulk actions"), ("/", "Bulk actions")):
            page.goto(url + path)
            serve.settle(page, marker)
            assert "Page not found" not in page.content()
        assert page.url.rstrip("/").endswith("/queue")  # the root opens the queue's own URL
        page.goto(url + "/runs")
        serve.settle(page, "Validation figures")
        assert outside == []  # no favicon, font or script from another host
