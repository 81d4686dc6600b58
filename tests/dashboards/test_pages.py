"""Every page and action of the dashboard under streamlit.testing AppTest."""

from __future__ import annotations

import pytest

from features.version import FEATURE_SET
from tests.dashboards.conftest import HOSTILE, NIGHT
from tests.dashboards.driver import button, open_page, rows, texts

PAGES = [
    "views/queue.py",
    "views/campaign.py",
    "views/account.py",
    "views/runs.py",
    "views/rules.py",
]


@pytest.mark.parametrize("page", [*PAGES, "views/decisions.py"])
def test_every_page_says_so_when_there_is_no_warehouse(page, tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILLGUARD_WAREHOUSE", str(tmp_path / "missing.duckdb"))
    at = open_page(page, id="anything")
    assert any("No warehouse" in i.value for i in at.info), [i.value for i in at.info]
    assert not (tmp_path / "missing.duckdb").exists(), "a read must never create the warehouse"


@pytest.mark.parametrize(
    ("page", "says"),
    [
        ("views/queue.py", "no successful nightly run"),
        ("views/campaign.py", "No campaign cmp\\_x"),
        ("views/account.py", "No scores for account cmp\\_x"),
        ("views/runs.py", "No nightly run recorded yet"),
        ("views/rules.py", "No rule hits recorded yet"),
        ("views/decisions.py", None),  # reads only the decision tables: empty, no message
    ],
)
def test_every_page_copes_with_an_empty_warehouse(page, says, tmp_path, monkeypatch):
    from detector import warehouse

    path = tmp_path / "empty.duckdb"
    warehouse.connect(path).close()
    monkeypatch.setenv("DISTILLGUARD_WAREHOUSE", str(path))
    at = open_page(page, id="cmp_x")
    messages = " ".join(m.value for m in [*at.info, *at.warning, *at.caption])
    if says is None:
        assert [len(d.value) for d in at.dataframe] == [0, 0]
    else:
        assert says in messages, messages


def test_queue_lists_the_night_by_score_and_pages(warehouse_file):
    at = open_page()
    assert at.title[0].value == "Campaign queue"
    table = at.dataframe[0].value
    assert len(table) == 8
    assert list(table["score"]) == sorted(table["score"], reverse=True)
    assert set(table["status"]) <= {"new", "open"}


def test_queue_lists_accounts_held_for_review(warehouse_file):
    at = open_page()
    ((held,),) = rows(
        warehouse_file,
        "SELECT count(*) FROM account_scores WHERE status = 'review' AND run_date = ?",
        [NIGHT],
    )
    assert held > 0
    assert any(h.value == f"Held for review ({held:,})" for h in at.subheader)
    table = at.dataframe[1].value
    assert 0 < len(table) <= held
    assert list(table["score"]) == sorted(table["score"], reverse=True)
    night = rows(
        warehouse_file,
        "SELECT account_id FROM account_scores WHERE status = 'review' AND run_date = ? "
        "ORDER BY score DESC, account_id LIMIT 1",
        [NIGHT],
    )
    assert table["open"][0] == f"account?id={night[0][0]}"
    at.slider(key="q_score").set_value(1.0).run()  # no campaign left: the held list stays
    assert any(h.value.startswith("Held for review") for h in at.subheader)


def test_queue_filters_by_tactic_and_score(warehouse_file):
    at = open_page()
    tactic = at.multiselect(key="q_tactic").options[0]
    at.multiselect(key="q_tactic").set_value([tactic]).run()
    table = at.dataframe[0].value
    assert 0 < len(table) < 8
    assert all(tactic in t for t in table["tactics"])
    at.slider(key="q_score").set_value(1.0).run()
    assert any("No campaign matches" in i.value for i in at.info)


def test_claim_and_bulk_confirm_from_the_queue(warehouse_file):
    at = open_page()
    chosen = ["cmp_000001", "cmp_000002"]
    at.multiselect(key="q_chosen").set_value(chosen).run()
    at.button(key="q_claim").click().run()
    assert any("Recorded assign on 2" in s.value for s in at.success)
    assigned = rows(warehouse_file, "SELECT campaign_id, analyst FROM assignments ORDER BY 1")
    assert assigned == [(c, "alice@example.com") for c in chosen]

    at.multiselect(key="q_chosen").set_value(chosen).run()
    at.button(key="q_confirm").click().run()  # no reason given
    assert any("reason is required" in e.value for e in at.error)
    assert rows(warehouse_file, "SELECT count(*) FROM verdicts") == [(0,)]

    at.multiselect(key="q_chosen").set_value(chosen).run()
    at.text_input(key="q_reason").set_value("hydra proxy, shared cards").run()
    at.button(key="q_confirm").click().run()
    verdicts = rows(
        warehouse_file, "SELECT subject_kind, subject_id, verdict, analyst FROM verdicts ORDER BY 2"
    )
    assert verdicts == [("campaign", c, "confirmed", "alice@example.com") for c in chosen]
    audit = rows(warehouse_file, "SELECT action, subject_id, before, after FROM audit_log")
    assert {a[0] for a in audit} == {"assign", "confirmed"}
    assert all('"verdict":"confirmed"' in a[3] for a in audit if a[0] == "confirmed")
    at.multiselect(key="q_status").set_value(["confirmed"]).run()
    assert sorted(at.dataframe[0].value["status"]) == ["confirmed", "confirmed"]


def test_select_every_campaign_on_the_page_then_claim_them(warehouse_file):
    at = open_page()
    at.checkbox(key="q_all").check().run()
    assert sorted(at.multiselect(key="q_chosen").value) == [f"cmp_{i:06d}" for i in range(8)]
    at.button(key="q_claim").click().run()
    assert rows(warehouse_file, "SELECT count(DISTINCT campaign_id) FROM assignments") == [(8,)]
    at.checkbox(key="q_all").uncheck().run()
    assert at.multiselect(key="q_chosen").value == []


def test_campaign_page_shows_evidence_graph_timeline_and_members(warehouse_file):
    at = open_page("views/campaign.py", id="cmp_000003")
    assert [m.label for m in at.metric][:3] == ["score", "accounts", "flagged"]
    assert len(at.get("vega_lite_chart")) == 3  # size over nights, link graph, activity
    members = at.dataframe[-2].value
    assert members["account_id"].str.contains("account\\?id=acct_").all()
    assert any("share_grading" in t for t in texts(at))


def test_campaign_page_shows_the_operations_cells_and_what_joins_them(warehouse_file):
    at = open_page("views/campaign.py", id="cmp_000000")
    assert any(h.value == "Operation: 2 cells" for h in at.subheader)
    assert any("the same 412 task texts sent from 2 of its cells" in t for t in texts(at))
    cells = next(d.value for d in at.dataframe if "joined_by" in d.value.columns)
    assert len(cells) == 2 and cells["joined_by"].str.contains("412 shared task texts").all()
    single = open_page("views/campaign.py", id="cmp_000003")
    assert not any(h.value.startswith("Operation") for h in single.subheader)


def test_campaign_lookup_suggests_close_ids(warehouse_file):
    at = open_page("views/campaign.py", id="cmp_00000")
    assert any("No campaign" in w.value for w in at.warning)
    assert any("cmp_000001" in str(p.proto) for p in at.get("page_link"))


def test_hostile_prompt_renders_as_inert_text(warehouse_file):
    at = open_page("views/campaign.py", id="cmp_000000")
    shown = [t for t in texts(at) if "<script>" in t]
    assert shown, "the hostile sample is missing"
    assert shown[0].startswith(HOSTILE[:60])  # verbatim, as text
    assert len(shown[0]) == 4_000  # cut: the megabyte is never sent
    rest = f"{len(HOSTILE) - 4_000:,} more characters not shown"
    assert any(rest in c.value for c in at.caption)
    assert not any("<script>" in m.value or "evil.example" in m.value for m in at.markdown)


@pytest.mark.parametrize("page", ["views/campaign.py", "views/account.py"])
def test_an_id_from_the_url_is_never_rendered_as_markdown(warehouse_file, page):
    crafted = "[log in again](https://evil.example/phish) ![x](https://evil.example/x.png)"
    at = open_page(page, id=crafted)
    shown = " ".join(w.value for w in at.warning)
    assert r"\[log in again\]\(https" in shown
    assert "](https" not in shown.replace(r"\]\(", "")


def test_campaign_decision_dismiss_and_allow_list_members(warehouse_file):
    at = open_page("views/campaign.py", id="cmp_000004")
    at.radio(key="c_verdict").set_value("dismissed")
    at.text_input(key="c_reason").set_value("LLM-as-judge customer, verified")
    at.checkbox(key="c_allow").check()
    at.selectbox(key="c_expiry").set_value(90)
    button(at, "Record decision").click().run()
    assert not at.exception
    members = rows(
        warehouse_file,
        "SELECT account_id FROM campaign_members WHERE run_date = ? AND campaign_id = 'cmp_000004'",
        [NIGHT],
    )
    allowed = rows(warehouse_file, "SELECT account_id, expires_at > now() FROM allowlist")
    assert sorted(a for a, _ in allowed) == sorted(m for (m,) in members)
    assert all(live for _, live in allowed)
    assert rows(warehouse_file, "SELECT verdict FROM verdicts") == [("dismissed",)]
    history = at.dataframe[-1].value
    assert list(history["action"])[:1] in (["dismissed"], ["allow"])


def test_account_page_lookup_history_features_and_decisions(warehouse_file):
    at = open_page("views/account.py", id="acct_0000001")
    assert [m.label for m in at.metric][:2] == ["score", "status"]
    assert at.metric[1].value in {"flagged", "review", "clear"}
    features = at.dataframe[0].value
    assert {"n_requests", "share_grading"} <= set(features["feature"])
    at.radio(key="a_verdict").set_value("confirmed")
    at.text_input(key="a_reason").set_value("same card as the hydra")
    button(at, "Record verdict").click().run()
    at.text_input(key="a_allow_reason").set_value("university NAT")
    button(at, "Allow-list").click().run()
    assert rows(warehouse_file, "SELECT count(*) FROM allowlist WHERE account_id = 'acct_0000001'")
    button(at, "Remove from allow-list").click().run()
    actions = rows(
        warehouse_file,
        "SELECT action FROM audit_log WHERE subject_id = 'acct_0000001' ORDER BY logged_at",
    )
    assert [a for (a,) in actions] == ["confirmed", "allow", "disallow"]
    live = rows(
        warehouse_file,
        "SELECT count(*) FROM allowlist WHERE account_id = 'acct_0000001' "
        "AND (expires_at IS NULL OR expires_at > now()) AND added_at = "
        "(SELECT max(added_at) FROM allowlist WHERE account_id = 'acct_0000001')",
    )
    assert live == [(0,)]


def test_account_lookup_of_an_unknown_id_suggests_prefix_matches(warehouse_file):
    at = open_page("views/account.py", id="acct_000001")
    assert any("No scores" in w.value for w in at.warning)
    assert len(at.get("page_link")) == 10


def test_runs_page_shows_runs_outbox_drift_and_model(warehouse_file):
    import duckdb

    con = duckdb.connect(str(warehouse_file))
    con.execute(
        "INSERT INTO runs (run_date, status, error) VALUES ('2026-02-16', 'failed', 'OSError: disk')"
    )
    con.close()
    at = open_page("views/runs.py")
    assert any("1 failed run" in e.value for e in at.error)
    assert len(at.dataframe[0].value) == 4
    assert len(at.get("vega_lite_chart")) == 2
    assert [m.value for m in at.metric][:2] == ["shipped", FEATURE_SET]


def test_queue_and_runs_pages_show_the_latest_hourly_run_and_campaigns_first_seen_today(
    warehouse_file,
):
    from detector import warehouse

    con = warehouse.connect(warehouse_file)  # adds the hourly tables to the sample warehouse
    con.execute(
        "INSERT INTO hourly_runs (hour, run_date, status, n_flagged, n_campaigns, "
        "n_new_campaigns) VALUES "
        "('2026-02-16 09:00:00+00', '2026-02-16', 'ok', 12, 9, 1), "
        "('2026-02-16 08:00:00+00', '2026-02-16', 'ok', 11, 8, 0)"
    )
    con.execute(
        "INSERT INTO hourly_campaigns (hour, campaign_id, n_accounts, n_flagged, score) VALUES "
        "('2026-02-16 09:00:00+00', 'cmp_fresh01', 17, 9, 0.97)"
    )
    con.execute(
        "INSERT INTO alert_events VALUES "
        "('e1', 'campaign.detected', 'cmp_fresh01', '2026-02-16', '2026-02-16 09:00:00+00', "
        "'hourly'), "
        "('e2', 'campaign.detected', 'cmp_old', '2026-02-13', '2026-02-14 00:00:00+00', "
        "'nightly')"
    )
    con.close()
    at = open_page()
    shown = " ".join(m.value for m in at.markdown)
    assert "Latest hourly run** 2026-02-16 09:00 UTC: ok, 12 accounts flagged" in shown
    assert "(campaign?id=cmp_fresh01) first alerted 2026-02-16 09:00 UTC by the hourly job" in shown
    assert "17 accounts" in shown and "cmp_old" not in shown  # older than a day
    assert len(at.dataframe[0].value) == 8  # the night's queue is unchanged below it
    at = open_page("views/runs.py")
    hourly = [d.value for d in at.dataframe if "n_new_campaigns" in d.value.columns]
    assert len(hourly) == 1 and list(hourly[0]["n_new_campaigns"]) == [1, 0]


def test_rules_page_shows_rules_hits_and_changes_a_mode_with_an_audit_row(warehouse_file):
    from detector import rules

    at = open_page("views/rules.py")
    listed = at.dataframe[0].value
    assert list(listed["rule"]) == [r.id for r in rules.shipped()]
    last = dict(zip(listed["rule"], listed["hits last night"], strict=True))
    campaigns = rows(warehouse_file, "SELECT count(*) FROM campaigns WHERE run_date = ?", [NIGHT])
    assert last["campaign_report"] == campaigns[0][0] > 0  # every campaign was reported
    assert last["reseller_hydra"] > 0 and last["rubric_grading_farm"] == 0
    assert len(at.get("vega_lite_chart")) == 1
    at.selectbox(key="rule_id").set_value("reseller_hydra").run()
    assert [m.value for m in at.metric][:2] == ["shadow", "high"]
    at.radio(key="r_mode").set_value("enforce")
    at.text_input(key="r_reason").set_value("precise in last month's backtest")
    button(at, "Set mode").click().run()
    assert not at.exception, at.exception
    assert rows(warehouse_file, "SELECT rule_id, mode, analyst FROM rule_modes") == [
        ("reseller_hydra", "enforce", "alice@example.com")
    ]
    assert rows(warehouse_file, "SELECT action, subject_kind, subject_id FROM audit_log") == [
        ("rule_mode", "rule", "reseller_hydra")
    ]
    assert at.dataframe[0].value.set_index("rule").loc["reseller_hydra", "mode"] == "enforce"


def test_rules_page_lists_a_rules_dismissed_hits(warehouse_file):
    at = open_page("views/campaign.py", id="cmp_000001")
    at.text_input(key="c_reason").set_value("one company's workspaces")
    at.radio(key="c_verdict").set_value("dismissed")
    button(at, "Record decision").click().run()
    at.switch_page("views/rules.py").run()
    at.selectbox(key="rule_id").set_value("campaign_report").run()
    dismissed = [d.value for d in at.dataframe if "dismissed_because" in d.value.columns]
    assert len(dismissed) == 1
    assert list(dismissed[0]["subject_id"]) == ["cmp_000001"]
    assert list(dismissed[0]["dismissed_because"]) == ["one company's workspaces"]


def test_account_and_campaign_pages_show_the_rules_that_fired(warehouse_file):
    at = open_page("views/campaign.py", id="cmp_000000")
    fired = [d.value for d in at.dataframe if "rule_id" in d.value.columns]
    assert [list(f["rule_id"]) for f in fired] == [["campaign_report"]]
    at = open_page("views/account.py", id="acct_0000000")
    fired = [d.value for d in at.dataframe if "rule_id" in d.value.columns]
    assert [list(f["rule_id"]) for f in fired] == [["reseller_hydra"]]
    assert list(fired[0]["mode"]) == ["shadow"]


def test_decisions_page_lists_audit_and_exports_labels(warehouse_file):
    at = open_page("views/campaign.py", id="cmp_000002")
    at.text_input(key="c_reason").set_value("confirmed by billing")
    button(at, "Record decision").click().run()
    at.switch_page("views/decisions.py").run()
    assert len(at.dataframe[0].value) == 1
    at.button(key="d_labels").click().run()
    assert any("positive" in m.value for m in at.markdown)
    assert at.get("download_button")


def test_viewers_see_everything_but_cannot_decide(warehouse_file, monkeypatch, tmp_path):
    roles = tmp_path / "roles.toml"
    roles.write_text('analysts = ["bob@example.com"]\nviewers = ["*@example.com"]\n')
    monkeypatch.setenv("DISTILLGUARD_ROLES", str(roles))
    for page in PAGES:
        at = open_page(page, id="cmp_000001" if "campaign" in page else "acct_0000001")
        labels = [b.label for b in at.button]
        assert not {"Claim", "Confirm", "Record decision", "Record verdict"} & set(labels), page
    at = open_page()
    assert "alice@example\\.com · viewer · local" in [c.value for c in at.sidebar.caption]


def test_a_user_without_a_role_is_refused(warehouse_file, monkeypatch, tmp_path):
    roles = tmp_path / "roles.toml"
    roles.write_text('analysts = ["bob@example.com"]\n')
    monkeypatch.setenv("DISTILLGUARD_ROLES", str(roles))
    at = open_page()
    assert any("has no role" in e.value for e in at.error)
    assert not at.dataframe


def test_proxy_mode_refuses_requests_without_the_header(warehouse_file, monkeypatch):
    monkeypatch.setenv("DISTILLGUARD_TRUSTED_HEADER", "X-Forwarded-Email")
    at = open_page()
    assert any("X-Forwarded-Email" in e.value for e in at.error)
    assert not at.dataframe
