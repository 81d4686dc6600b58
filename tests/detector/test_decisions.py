"""Analysts' decisions: append-only with an audit row each, validated, and turned into labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import orjson
import pytest

from detector import decisions
from detector import warehouse as wh


@pytest.fixture
def path(tmp_path):
    path = tmp_path / "w.duckdb"
    con = wh.connect(path)
    con.executemany(
        "INSERT INTO campaign_members VALUES (?, ?, ?)",
        [
            ("2026-03-01", "cmp_a", "a1"),
            ("2026-03-01", "cmp_a", "a2"),
            ("2026-03-02", "cmp_a", "a2"),  # the latest night: a1 left
            ("2026-03-02", "cmp_a", "a3"),
            ("2026-03-02", "cmp_b", "b1"),
        ],
    )
    con.close()
    return path


def _rows(path, sql):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _labels(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            r["account_id"]: (r["label"], r["campaign"]) for r in decisions.labels(con).to_dicts()
        }
    finally:
        con.close()


def test_each_decision_appends_a_verdict_and_an_audit_row_with_before_and_after(path):
    assert decisions.decide(path, "ana", "campaign", ["cmp_a"], "dismissed", "benchmark") == 1
    assert decisions.decide(path, "bo", "campaign", ["cmp_a"], "confirmed", "shared card") == 1
    assert _rows(path, "SELECT verdict, analyst FROM verdicts ORDER BY decided_at") == [
        ("dismissed", "ana"),
        ("confirmed", "bo"),
    ]
    audit = _rows(path, "SELECT actor, action, before, after FROM audit_log ORDER BY logged_at")
    assert audit[0][:3] == ("ana", "dismissed", None)
    assert orjson.loads(audit[1][2])["verdict"] == "dismissed"
    assert orjson.loads(audit[1][3]) == {
        "verdict": "confirmed",
        "reason": "shared card",
        "analyst": "bo",
    }


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda p: decisions.decide(p, "ana", "campaign", ["cmp_a"], "banned", "x"),
            "verdict must be one of",
        ),
        (
            lambda p: decisions.decide(p, "ana", "campaign", ["cmp_a"], "confirmed", "  "),
            "reason is required",
        ),
        (
            lambda p: decisions.decide(p, "ana", "team", ["x"], "confirmed", "r"),
            "subject kind must be",
        ),
        (
            lambda p: decisions.decide(p, "", "campaign", ["cmp_a"], "confirmed", "r"),
            "analyst is required",
        ),
        (
            lambda p: decisions.decide(p, "ana", "campaign", [" "], "confirmed", "r"),
            "no subject ids",
        ),
        (
            lambda p: decisions.allow(p, "ana", ["a1"], "r", datetime(2020, 1, 1, tzinfo=UTC)),
            "must be in the future",
        ),
        (lambda p: decisions.allow(p, "ana", ["a1"], "r", datetime(2099, 1, 1)), "timezone-aware"),
    ],
)
def test_bad_decisions_are_refused_and_nothing_is_written(path, call, message):
    with pytest.raises(ValueError, match=message):
        call(path)
    assert _rows(path, "SELECT count(*) FROM audit_log") == [(0,)]


def test_labels_take_campaign_verdicts_for_latest_members_and_let_accounts_override(path):
    decisions.decide(path, "ana", "campaign", ["cmp_a"], "confirmed", "hydra")
    decisions.decide(path, "ana", "campaign", ["cmp_b"], "dismissed", "judge product")
    decisions.decide(path, "ana", "account", ["a3"], "dismissed", "university NAT neighbour")
    decisions.allow(path, "ana", ["z9"], "benchmark vendor", None)
    assert _labels(path) == {
        "a2": (1, "cmp_a"),
        "a3": (0, None),
        "b1": (0, None),
        "z9": (0, None),
    }
    decisions.decide(path, "bo", "account", ["a3"], "reopened", "look again")
    decisions.disallow(path, "bo", ["z9"], "contract ended")
    assert _labels(path) == {"a2": (1, "cmp_a"), "b1": (0, None)}  # a3 undecided, z9 removed


def test_allow_list_expiry_and_removal_are_appended(path):
    soon = datetime.now(UTC) + timedelta(days=30)
    decisions.allow(path, "ana", ["a1", "a1", "a2"], "benchmark", soon)  # repeats counted once
    decisions.disallow(path, "bo", ["a2"], "no longer")
    live = _rows(
        path,
        f"SELECT account_id FROM ({wh.CURRENT_ALLOWLIST}) WHERE expires_at > now() ORDER BY 1",
    )
    assert live == [("a1",)]
    assert _rows(path, "SELECT count(*) FROM allowlist") == [(3,)]
    assert [a for (a,) in _rows(path, "SELECT action FROM audit_log ORDER BY logged_at")] == [
        "allow",
        "allow",
        "disallow",
    ]


def test_a_busy_warehouse_is_reported_not_waited_on_forever(path):
    holder = duckdb.connect(str(path))  # another process's writer: DuckDB locks the file
    try:
        import subprocess
        import sys

        code = (
            "import sys; from pathlib import Path; from detector import warehouse as wh\n"
            "try:\n    wh.open_waiting(Path(sys.argv[1]), read_only=False, wait_s=0.5)\n"
            "except wh.WarehouseBusy as e:\n    print('busy:', e); sys.exit(3)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
        )
    finally:
        holder.close()
    assert result.returncode == 3 and "busy" in result.stdout, result.stderr


def test_labels_command_writes_what_train_reads(path, tmp_path):
    from typer.testing import CliRunner

    from detector.cli import app
    from detector.pipeline.logs import read_labels

    decisions.decide(path, "ana", "campaign", ["cmp_a"], "confirmed", "hydra")
    decisions.allow(path, "ana", ["z9"], "benchmark vendor", None)
    out = tmp_path / "labels.parquet"
    result = CliRunner().invoke(app, ["labels", "--warehouse", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 labelled account(s) (2 campaign, 1 legitimate)" in " ".join(result.output.split())
    labels = read_labels(out).table
    assert sorted(labels.rows()) == [("a2", 1, "cmp_a"), ("a3", 1, "cmp_a"), ("z9", 0, None)]
    missing = CliRunner().invoke(app, ["labels", "--warehouse", str(tmp_path / "none.duckdb")])
    assert missing.exit_code == 2 and "no warehouse here" in missing.output


def test_a_decision_waits_for_a_reader_in_the_same_process(path):
    # regression: with two analysts on one dashboard server, a decision while the other
    # session's page held a read-only connection failed with DuckDB's "different
    # configuration" error instead of waiting for the page run to end
    import threading

    reader = duckdb.connect(str(path), read_only=True)
    threading.Timer(0.5, reader.close).start()
    assert decisions.decide(path, "ana", "campaign", ["cmp_a"], "confirmed", "hydra") == 1
    assert _rows(path, "SELECT count(*) FROM verdicts") == [(1,)]
