"""Analysts' decisions: the only writer of the warehouse's decision tables.

Every decision is appended (a verdict, an allow-list entry, an assignment), never updated in
place, together with one `audit_log` row per subject in the same transaction: who, what, when,
the state before and after. The current state of a subject is its latest row.

Decisions flow back in two ways: the nightly job reads dismissed campaigns and the allow-list
when it decides what to alert, and `labels` turns them into training labels for
`distillguard train` (`distillguard labels`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import orjson
import polars as pl

from detector import warehouse

VERDICTS = ("confirmed", "dismissed", "reopened")
"""confirmed: a distillation campaign (member); dismissed: legitimate; reopened: undecided again."""
KINDS = ("account", "campaign")


def _check_subjects(kind: str, ids: list[str]) -> list[str]:
    if kind not in KINDS:
        raise ValueError(f"subject kind must be one of {KINDS}, got {kind!r}")
    ids = list(dict.fromkeys(i.strip() for i in ids if i and i.strip()))
    if not ids:
        raise ValueError("no subject ids given")
    return ids


def _check_text(name: str, value: str | None) -> str:
    if not value or not value.strip():
        raise ValueError(f"{name} is required and must not be blank")
    return value.strip()


def _audit(con, at, actor, action, kind, subject, before, after) -> None:
    con.execute(
        "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            at,
            actor,
            action,
            kind,
            subject,
            None if before is None else orjson.dumps(before, default=str).decode(),
            None if after is None else orjson.dumps(after, default=str).decode(),
        ],
    )


def _current(con, sql: str, key: str, ids: list[str]) -> dict[str, dict]:
    rows = con.sql(f"SELECT * FROM ({sql}) WHERE list_contains(?, {key})", params=[ids])
    frame = pl.from_arrow(rows.to_arrow_table())
    return {r[key]: r for r in frame.iter_rows(named=True)}


def _write(path: Path, work) -> int:
    con = warehouse.open_waiting(path, read_only=False)
    try:
        con.execute("BEGIN TRANSACTION")
        n = work(con, datetime.now(UTC))
        con.execute("COMMIT")
        return n
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()


def decide(path: Path, actor: str, kind: str, ids: list[str], verdict: str, reason: str) -> int:
    """Record `verdict` on each subject; returns how many. Raises ValueError on a bad value."""
    actor = _check_text("analyst", actor)
    ids = _check_subjects(kind, ids)
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    reason = _check_text("reason", reason)

    def work(con, at) -> int:
        before = _current(con, warehouse.CURRENT_VERDICTS, "subject_id", ids)
        for subject in ids:
            row = {"verdict": verdict, "reason": reason, "analyst": actor}
            con.execute(
                "INSERT INTO verdicts VALUES (?, ?, ?, ?, ?, ?)",
                [kind, subject, verdict, reason, actor, at],
            )
            old = before.get(subject)
            old = old if old and old["subject_kind"] == kind else None
            _audit(con, at, actor, verdict, kind, subject, old, row)
        return len(ids)

    return _write(path, work)


def allow(
    path: Path, actor: str, account_ids: list[str], reason: str, expires_at: datetime | None
) -> int:
    """Put accounts on the allow-list until `expires_at` (None: no expiry)."""
    actor = _check_text("analyst", actor)
    ids = _check_subjects("account", account_ids)
    reason = _check_text("reason", reason)
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise ValueError(f"expires_at must be timezone-aware, got {expires_at!r}")
        if expires_at <= datetime.now(UTC):
            raise ValueError(f"expires_at must be in the future, got {expires_at.isoformat()}")
    return _allow_rows(path, actor, ids, reason, expires_at, "allow")


def disallow(path: Path, actor: str, account_ids: list[str], reason: str) -> int:
    """Take accounts off the allow-list (an entry that expires now)."""
    actor = _check_text("analyst", actor)
    ids = _check_subjects("account", account_ids)
    return _allow_rows(path, actor, ids, _check_text("reason", reason), None, "disallow")


def _allow_rows(path, actor, ids, reason, expires_at, action) -> int:
    def work(con, at) -> int:
        before = _current(con, warehouse.CURRENT_ALLOWLIST, "account_id", ids)
        until = at if action == "disallow" else expires_at
        for account in ids:
            con.execute(
                "INSERT INTO allowlist VALUES (?, ?, ?, ?, ?)", [account, reason, actor, at, until]
            )
            row = {"reason": reason, "analyst": actor, "expires_at": until}
            _audit(con, at, actor, action, "account", account, before.get(account), row)
        return len(ids)

    return _write(path, work)


def assign(path: Path, actor: str, campaign_ids: list[str], analyst: str | None) -> int:
    """Assign campaigns to `analyst` (claim: the actor themself; None: unassign)."""
    actor = _check_text("analyst", actor)
    ids = _check_subjects("campaign", campaign_ids)
    owner = analyst.strip() if analyst and analyst.strip() else None

    def work(con, at) -> int:
        before = _current(con, CURRENT_ASSIGNMENTS, "campaign_id", ids)
        for campaign in ids:
            con.execute("INSERT INTO assignments VALUES (?, ?, ?, ?)", [campaign, owner, actor, at])
            old = before.get(campaign)
            _audit(
                con,
                at,
                actor,
                "assign" if owner else "unassign",
                "campaign",
                campaign,
                {"analyst": old["analyst"]} if old else None,
                {"analyst": owner},
            )
        return len(ids)

    return _write(path, work)


def set_rule_mode(path: Path, actor: str, rule_id: str, mode: str, reason: str) -> int:
    """Set a rule's mode (enforce, shadow or off) for the nightly job; returns 1. The job reads
    the latest mode per rule; rules nobody changed keep their file's default."""
    from detector import rules

    actor = _check_text("analyst", actor)
    rule_id = _check_text("rule id", rule_id)
    if not rules.ID.match(rule_id):
        raise ValueError(f"{rule_id!r} is not a rule id (lower_snake_case)")
    if mode not in rules.MODES:
        raise ValueError(f"mode must be one of {rules.MODES}, got {mode!r}")
    reason = _check_text("reason", reason)

    def work(con, at) -> int:
        old = _current(con, warehouse.CURRENT_RULE_MODES, "rule_id", [rule_id]).get(rule_id)
        con.execute(
            "INSERT INTO rule_modes VALUES (?, ?, ?, ?, ?)", [rule_id, mode, reason, actor, at]
        )
        before = {"mode": old["mode"]} if old else None
        _audit(
            con, at, actor, "rule_mode", "rule", rule_id, before, {"mode": mode, "reason": reason}
        )
        return 1

    return _write(path, work)


CURRENT_ASSIGNMENTS = (
    "SELECT * FROM assignments QUALIFY row_number() OVER "
    "(PARTITION BY campaign_id ORDER BY assigned_at DESC) = 1"
)


def labels(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Training labels from decisions: account_id, label (1 confirmed, 0 dismissed or
    allow-listed), campaign. A campaign's verdict covers the members of its latest night; an
    account's own verdict, then its allow-list entry, overrides its campaign's. `reopened`
    subjects give no label."""
    sql = f"""
    WITH v AS ({warehouse.CURRENT_VERDICTS}),
    latest AS (
        SELECT campaign_id, account_id FROM campaign_members m
        WHERE run_date = (SELECT max(run_date) FROM campaign_members p
                          WHERE p.campaign_id = m.campaign_id)
    ),
    by_campaign AS (
        SELECT l.account_id, v.verdict, l.campaign_id, 3 AS rank, v.decided_at
        FROM v JOIN latest l ON v.subject_kind = 'campaign' AND v.subject_id = l.campaign_id
    ),
    by_account AS (
        SELECT subject_id AS account_id, verdict, NULL AS campaign_id, 1 AS rank, decided_at
        FROM v WHERE subject_kind = 'account'
    ),
    allowed AS (
        SELECT account_id, 'dismissed' AS verdict, NULL AS campaign_id, 2 AS rank,
               added_at AS decided_at
        FROM ({warehouse.CURRENT_ALLOWLIST}) WHERE expires_at IS NULL OR expires_at > added_at
    ),
    everything AS (SELECT * FROM by_campaign UNION ALL BY NAME SELECT * FROM by_account
                   UNION ALL BY NAME SELECT * FROM allowed)
    SELECT account_id,
           CAST(CASE verdict WHEN 'confirmed' THEN 1 ELSE 0 END AS TINYINT) AS label,
           CASE verdict WHEN 'confirmed' THEN campaign_id END AS campaign
    FROM everything
    QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY rank, decided_at DESC) = 1
        AND verdict <> 'reopened'
    ORDER BY account_id
    """
    frame = pl.from_arrow(con.sql(sql).to_arrow_table())
    return frame.cast({"account_id": pl.String, "label": pl.Int8, "campaign": pl.String})
