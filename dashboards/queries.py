"""Every query the dashboard runs: parameterised SQL over the warehouse, aggregated in DuckDB.

Functions take an open read-only connection and plain values, return polars frames, and never
return more than a page of rows (or an aggregate), so nothing here can send a whole table to
the browser. No value is ever formatted into SQL text; all of them travel as parameters.
"""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from detector import warehouse
from detector.decisions import CURRENT_ASSIGNMENTS
from detector.decisions import labels as labels  # the training labels, for the decisions page
from features.registry import FEATURES

Con = duckdb.DuckDBPyConnection
PAGE = 50
STATUSES = ("new", "open", "confirmed", "dismissed")
"""A campaign's status: its analyst verdict, else `new` on its first night, else `open`."""


def frame(con: Con, sql: str, params: list | None = None) -> pl.DataFrame:
    return pl.from_arrow(con.sql(sql, params=params or []).to_arrow_table())


def scalar(con: Con, sql: str, params: list | None = None):
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def run_dates(con: Con) -> list[date]:
    """Dates with scores, newest first."""
    rows = con.execute(
        "SELECT run_date FROM runs WHERE status = 'ok' ORDER BY run_date DESC"
    ).fetchall()
    return [r[0] for r in rows]


_QUEUE = f"""
WITH c AS (SELECT * FROM campaigns WHERE run_date = $day),
prev AS (
    SELECT campaign_id, n_accounts AS previous_n FROM campaigns
    WHERE run_date = (SELECT max(run_date) FROM campaigns WHERE run_date < $day)
),
firsts AS (
    SELECT campaign_id, min(run_date) AS first_night FROM campaigns
    WHERE campaign_id IN (SELECT campaign_id FROM c) GROUP BY campaign_id
),
v AS (SELECT subject_id, verdict FROM ({warehouse.CURRENT_VERDICTS}) WHERE subject_kind = 'campaign'),
a AS ({CURRENT_ASSIGNMENTS}),
q AS (
    SELECT c.campaign_id, c.score, c.n_accounts, c.n_flagged,
           c.n_accounts - coalesce(prev.previous_n, 0) AS growth,
           CASE WHEN v.verdict IN ('confirmed', 'dismissed') THEN v.verdict
                WHEN firsts.first_night = $day THEN 'new' ELSE 'open' END AS status,
           a.analyst AS assignee, c.first_seen, c.last_seen, c.n_requests,
           coalesce(c.tactics, []) AS tactics, c.reasons, c.cluster
    FROM c LEFT JOIN prev USING (campaign_id) LEFT JOIN firsts USING (campaign_id)
    LEFT JOIN v ON v.subject_id = c.campaign_id LEFT JOIN a USING (campaign_id)
)
SELECT * FROM q
WHERE list_contains($statuses, status) AND score >= $min_score
  AND (len($tactics) = 0 OR list_has_any(tactics, $tactics))
  AND ($assignee IS NULL OR ($assignee = '' AND assignee IS NULL) OR assignee = $assignee)
"""


def queue(
    con: Con,
    day: date,
    statuses: list[str],
    min_score: float = 0.0,
    tactics: list[str] | None = None,
    assignee: str | None = None,
    page: int = 0,
    page_size: int = PAGE,
) -> tuple[pl.DataFrame, int]:
    """One page of the night's campaigns (highest score, then largest, first) and how many
    match. `assignee`: None any, "" unassigned, else that analyst."""
    params = {
        "day": day,
        "statuses": list(statuses),
        "min_score": float(min_score),
        "tactics": list(tactics or []),
        "assignee": assignee,
    }
    total = scalar(con, f"SELECT count(*) FROM ({_QUEUE})", params)
    rows = frame(
        con,
        f"{_QUEUE} ORDER BY score DESC, n_accounts DESC, campaign_id LIMIT $limit OFFSET $offset",
        params | {"limit": page_size, "offset": page * page_size},
    )
    return rows, int(total or 0)


def held(con: Con, day: date, page: int = 0, page_size: int = PAGE) -> tuple[pl.DataFrame, int]:
    """One page of the night's accounts held for review (`status = 'review'`: the network would
    flag them, but one of the model's views finds them ordinary, or their inputs are unfamiliar
    and nothing links them to a campaign), highest score first, and how many there are. Warehouses written before the column existed have none."""
    where = "FROM account_scores WHERE run_date = ? AND status = 'review'"
    total = scalar(con, f"SELECT count(*) {where}", [day])
    rows = frame(
        con,
        f"SELECT account_id, score, reasons {where} ORDER BY score DESC, account_id "
        "LIMIT ? OFFSET ?",
        [day, page_size, page * page_size],
    )
    return rows, int(total or 0)


def tactic_names(con: Con, day: date) -> list[str]:
    rows = con.execute(
        "SELECT DISTINCT unnest(tactics) AS t FROM campaigns WHERE run_date = ? ORDER BY t", [day]
    ).fetchall()
    return [r[0] for r in rows]


def campaign(con: Con, campaign_id: str, day: date) -> dict | None:
    """The campaign's queue row on `day` (status, assignee, growth) with its reasons and
    cluster, or None."""
    rows = frame(
        con,
        f"""SELECT * FROM ({_QUEUE}) WHERE campaign_id = $cid""",
        {
            "day": day,
            "statuses": list(STATUSES),
            "min_score": 0.0,
            "tactics": [],
            "assignee": None,
            "cid": campaign_id,
        },
    )
    return rows.row(0, named=True) if rows.height else None


def campaign_nights(con: Con, campaign_id: str) -> pl.DataFrame:
    """run_date, n_accounts, n_flagged, score of every night the campaign was seen."""
    return frame(
        con,
        "SELECT run_date, n_accounts, n_flagged, score FROM campaigns WHERE campaign_id = ? "
        "ORDER BY run_date",
        [campaign_id],
    )


def latest_night(con: Con, campaign_id: str) -> date | None:
    return scalar(con, "SELECT max(run_date) FROM campaigns WHERE campaign_id = ?", [campaign_id])


def search_campaigns(con: Con, text: str, limit: int = 20) -> list[str]:
    rows = con.execute(
        "SELECT DISTINCT campaign_id FROM campaigns WHERE campaign_id ILIKE ? "
        "ORDER BY campaign_id LIMIT ?",
        [f"%{text}%", limit],
    ).fetchall()
    return [r[0] for r in rows]


_MEMBERS = f"""
SELECT s.account_id, s.score, s.flagged, d.n_requests AS requests_that_day,
       v.verdict AS account_verdict,
       (al.account_id IS NOT NULL) AS allow_listed
FROM campaign_members m
JOIN account_scores s ON s.run_date = m.run_date AND s.account_id = m.account_id
LEFT JOIN daily_requests d ON d.run_date = m.run_date AND d.account_id = m.account_id
LEFT JOIN (SELECT subject_id, verdict FROM ({warehouse.CURRENT_VERDICTS})
           WHERE subject_kind = 'account') v ON v.subject_id = m.account_id
LEFT JOIN (SELECT account_id FROM ({warehouse.CURRENT_ALLOWLIST})
           WHERE expires_at IS NULL OR expires_at > now()) al ON al.account_id = m.account_id
WHERE m.run_date = $day AND m.campaign_id = $cid
"""


def members(
    con: Con, campaign_id: str, day: date, page: int = 0, page_size: int = PAGE
) -> tuple[pl.DataFrame, int]:
    params = {"day": day, "cid": campaign_id}
    total = scalar(con, f"SELECT count(*) FROM ({_MEMBERS})", params)
    rows = frame(
        con,
        f"{_MEMBERS} ORDER BY s.score DESC, s.account_id LIMIT $limit OFFSET $offset",
        params | {"limit": page_size, "offset": page * page_size},
    )
    return rows, int(total or 0)


def member_ids(con: Con, campaign_id: str, day: date) -> list[str]:
    """All member ids (for a decision on the whole campaign; never sent to the browser)."""
    rows = con.execute(
        "SELECT account_id FROM campaign_members WHERE run_date = ? AND campaign_id = ? "
        "ORDER BY account_id",
        [day, campaign_id],
    ).fetchall()
    return [r[0] for r in rows]


def graph(con: Con, campaign_id: str, day: date, max_nodes: int = 150):
    """Nodes (the top `max_nodes` members by score, with their current verdict) and the typed
    links among them."""
    nodes = frame(
        con,
        f"SELECT account_id, score, flagged, coalesce(CASE WHEN allow_listed THEN 'allow-listed' "
        f"END, account_verdict, 'none') AS verdict FROM ({_MEMBERS}) "
        f"ORDER BY score DESC, account_id LIMIT $n",
        {"day": day, "cid": campaign_id, "n": max_nodes},
    )
    edges = frame(
        con,
        "SELECT src, dst, edge_type, weight, evidence FROM campaign_links "
        "WHERE run_date = ? AND campaign_id = ? AND list_contains(?, src) AND list_contains(?, dst)",
        [day, campaign_id, nodes["account_id"].to_list(), nodes["account_id"].to_list()],
    )
    return nodes, edges


def timeline(con: Con, campaign_id: str, day: date, max_accounts: int = 40) -> pl.DataFrame:
    """account_id, hour, n_requests of the campaign's busiest members over the window."""
    return frame(
        con,
        """
        WITH m AS (SELECT account_id FROM campaign_members WHERE run_date = ? AND campaign_id = ?),
        h AS (SELECT account_id, hour, n_requests FROM hourly_requests
              WHERE run_date = ? AND account_id IN (SELECT account_id FROM m)),
        top AS (SELECT account_id FROM h GROUP BY account_id
                ORDER BY sum(n_requests) DESC, account_id LIMIT ?)
        SELECT * FROM h WHERE account_id IN (SELECT account_id FROM top) ORDER BY hour
        """,
        [day, campaign_id, day, max_accounts],
    )


def evidence(con: Con, cluster: str | None, day: date) -> pl.DataFrame:
    """The link types holding the campaign's cluster together and their shared values."""
    return frame(
        con,
        "SELECT edge_type, n_edges, weight, top_values FROM evidence "
        "WHERE run_date = ? AND cluster = ? ORDER BY weight DESC, edge_type",
        [day, cluster],
    )


def cells(con: Con, campaign_id: str, day: date) -> pl.DataFrame:
    """The campaign's cells (link clusters and lone accounts joined to them), largest first,
    with what each shares and how it joins the rest of the operation."""
    return frame(
        con,
        "SELECT cell, cluster, n_accounts, n_flagged, score, shares, joined_by "
        "FROM campaign_cells WHERE run_date = ? AND campaign_id = ? "
        "ORDER BY n_accounts DESC, cell",
        [day, campaign_id],
    )


def attribution(con: Con, campaign_id: str, day: date) -> list[str]:
    """What joins the campaign's cells into one operation (empty for a single cell)."""
    rows = con.execute(
        "SELECT attribution FROM campaigns WHERE run_date = ? AND campaign_id = ?",
        [day, campaign_id],
    ).fetchall()
    return list(rows[0][0] or []) if rows else []


def samples(con: Con, campaign_id: str, day: date, limit: int = 12) -> pl.DataFrame:
    return frame(
        con,
        "SELECT account_id, request_id, ts, request_model, prompt, prompt_chars, response "
        "FROM samples WHERE run_date = ? AND campaign_id = ? ORDER BY account_id, request_id "
        "LIMIT ?",
        [day, campaign_id, limit],
    )


def find_accounts(con: Con, text: str, limit: int = 20) -> list[str]:
    rows = con.execute(
        "SELECT DISTINCT account_id FROM account_scores WHERE starts_with(account_id, ?) "
        "ORDER BY account_id LIMIT ?",
        [text, limit],
    ).fetchall()
    return [r[0] for r in rows]


def account_history(con: Con, account_id: str) -> pl.DataFrame:
    """Per night: score, flagged, campaign, requests that day, reasons."""
    return frame(
        con,
        "SELECT s.run_date, s.score, s.flagged, coalesce(s.status, CASE WHEN s.flagged THEN "
        "'flagged' ELSE 'clear' END) AS status, s.campaign_id, d.n_requests, d.n_tokens, "
        "s.reasons FROM account_scores s LEFT JOIN daily_requests d "
        "ON d.run_date = s.run_date AND d.account_id = s.account_id "
        "WHERE s.account_id = ? ORDER BY s.run_date",
        [account_id],
    )


def feature_medians(con: Con, day: date) -> dict[str, float]:
    """Each numeric feature's median over the night's unflagged accounts (one scan a night)."""
    numeric = [f.name for f in FEATURES if f.dtype != "VARCHAR"]
    return frame(
        con,
        "SELECT "
        + ", ".join(f'median("{c}") AS "{c}"' for c in numeric)
        + " FROM account_features f JOIN account_scores s USING (run_date, account_id) "
        "WHERE f.run_date = ? AND NOT s.flagged",
        [day],
    ).row(0, named=True)


def account_features(con: Con, account_id: str, day: date) -> pl.DataFrame:
    """feature, value (the account's features on `day`, as text)."""
    row = frame(
        con,
        "SELECT * EXCLUDE (run_date, account_id) FROM account_features "
        "WHERE run_date = ? AND account_id = ?",
        [day, account_id],
    )
    if row.is_empty():
        return pl.DataFrame(schema={"feature": pl.String, "value": pl.String})
    values = row.row(0, named=True)
    return pl.DataFrame(
        {
            "feature": list(values),
            "value": [str(v) if not isinstance(v, float) else f"{v:.4g}" for v in values.values()],
        },
        schema={"feature": pl.String, "value": pl.String},
    )


def account_links(con: Con, account_id: str, day: date, limit: int = 100) -> pl.DataFrame:
    return frame(
        con,
        "SELECT campaign_id, CASE WHEN src = $a THEN dst ELSE src END AS linked_account, "
        "edge_type, weight, evidence FROM campaign_links "
        "WHERE run_date = $day AND (src = $a OR dst = $a) ORDER BY weight DESC LIMIT $n",
        {"a": account_id, "day": day, "n": limit},
    )


def account_hours(con: Con, account_id: str, day: date) -> pl.DataFrame:
    return frame(
        con,
        "SELECT hour, n_requests FROM hourly_requests WHERE run_date = ? AND account_id = ? "
        "ORDER BY hour",
        [day, account_id],
    )


def decisions_on(con: Con, kind: str, subject_id: str, limit: int = 20) -> pl.DataFrame:
    return frame(
        con,
        "SELECT logged_at, actor, action, before, after FROM audit_log "
        "WHERE subject_kind = ? AND subject_id = ? ORDER BY logged_at DESC LIMIT ?",
        [kind, subject_id, limit],
    )


def allow_entry(con: Con, account_id: str) -> dict | None:
    rows = frame(
        con,
        f"SELECT * FROM ({warehouse.CURRENT_ALLOWLIST}) WHERE account_id = ? "
        "AND (expires_at IS NULL OR expires_at > now())",
        [account_id],
    )
    return rows.row(0, named=True) if rows.height else None


def runs(con: Con, page: int = 0, page_size: int = 30) -> tuple[pl.DataFrame, int]:
    total = scalar(con, "SELECT count(*) FROM runs")
    rows = frame(
        con,
        "SELECT run_date, status, n_accounts, n_flagged, n_campaigns, n_alerts, n_requests, "
        "round(seconds, 1) AS seconds, model, feature_set, finished_at, error FROM runs "
        "ORDER BY run_date DESC LIMIT ? OFFSET ?",
        [page_size, page * page_size],
    )
    return rows, int(total or 0)


def _has(con: Con, table: str) -> bool:
    """Whether the warehouse has `table` (one written before the hourly job has no hourly_*)."""
    return bool(
        scalar(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table])
    )


def latest_hourly(con: Con) -> dict | None:
    """The latest hourly run, or None when the hourly job never ran."""
    if not _has(con, "hourly_runs"):
        return None
    rows = frame(con, "SELECT * FROM hourly_runs ORDER BY hour DESC LIMIT 1")
    return rows.row(0, named=True) if rows.height else None


def first_seen_within_day(con: Con, hours: int = 24) -> pl.DataFrame:
    """Campaigns first alerted (`campaign.detected`) in the `hours` before the latest hourly
    run, newest first, with which job alerted them and their size in the latest hourly run."""
    if not _has(con, "hourly_runs") or not _has(con, "alert_events"):
        return pl.DataFrame()
    return frame(
        con,
        f"""WITH latest AS (SELECT max(hour) AS hour FROM hourly_runs WHERE status = 'ok'),
        sizes AS (
            SELECT campaign_id, n_accounts, n_flagged, score FROM hourly_campaigns
            QUALIFY row_number() OVER (PARTITION BY campaign_id ORDER BY hour DESC) = 1
        )
        SELECT e.subject_id AS campaign_id, e.first_at, e.source, s.n_accounts, s.n_flagged,
            s.score
        FROM alert_events e CROSS JOIN latest LEFT JOIN sizes s ON s.campaign_id = e.subject_id
        WHERE e.type = 'campaign.detected' AND e.first_at > latest.hour - INTERVAL {int(hours)} HOUR
        ORDER BY e.first_at DESC, e.subject_id""",
    )


def hourly_runs(con: Con, page: int = 0, page_size: int = 24) -> tuple[pl.DataFrame, int]:
    if not _has(con, "hourly_runs"):
        return pl.DataFrame(), 0
    total = scalar(con, "SELECT count(*) FROM hourly_runs")
    rows = frame(
        con,
        "SELECT hour, status, n_accounts, n_flagged, n_review, n_campaigns, n_new_campaigns, "
        "n_alerts, n_requests, round(seconds, 1) AS seconds, error FROM hourly_runs "
        "ORDER BY hour DESC LIMIT ? OFFSET ?",
        [page_size, page * page_size],
    )
    return rows, int(total or 0)


def outbox(con: Con) -> pl.DataFrame:
    """Alert delivery: events per endpoint, type and status, with the latest error."""
    return frame(
        con,
        "SELECT endpoint, type, status, count(*) AS events, max(attempts) AS max_attempts, "
        "max(delivered_at) AS last_delivered, arg_max(last_error, next_attempt_at) AS last_error "
        "FROM alert_outbox GROUP BY ALL ORDER BY endpoint, type, status",
    )


def score_quantiles(con: Con, nights: int = 30) -> pl.DataFrame:
    """Per night: share flagged and score quantiles (drift at a glance)."""
    return frame(
        con,
        "SELECT run_date, count(*) AS accounts, avg(flagged::INT) AS flagged_share, "
        "quantile_cont(score, 0.5) AS p50, quantile_cont(score, 0.9) AS p90, "
        "quantile_cont(score, 0.99) AS p99 FROM account_scores "
        "WHERE run_date IN (SELECT DISTINCT run_date FROM account_scores "
        "ORDER BY run_date DESC LIMIT ?) GROUP BY run_date ORDER BY run_date",
        [nights],
    )


def score_histogram(con: Con, days: list[date], bins: int = 20) -> pl.DataFrame:
    """run_date, bin (lower edge), share of accounts: the score distribution of some nights."""
    return frame(
        con,
        "SELECT run_date, bin, count(*) / sum(count(*)) OVER (PARTITION BY run_date) AS share "
        "FROM (SELECT run_date, least(floor(score * $bins), $bins - 1) / $bins AS bin "
        "FROM account_scores WHERE list_contains($days, run_date)) "
        "GROUP BY run_date, bin ORDER BY run_date, bin",
        {"bins": bins, "days": days},
    )


def audit(
    con: Con, actor: str | None = None, page: int = 0, page_size: int = PAGE
) -> tuple[pl.DataFrame, int]:
    where = "WHERE $actor IS NULL OR actor = $actor"
    params = {"actor": actor}
    total = scalar(con, f"SELECT count(*) FROM audit_log {where}", params)
    rows = frame(
        con,
        f"SELECT * FROM audit_log {where} ORDER BY logged_at DESC LIMIT $limit OFFSET $offset",
        params | {"limit": page_size, "offset": page * page_size},
    )
    return rows, int(total or 0)


def allowlist(con: Con, page: int = 0, page_size: int = PAGE) -> tuple[pl.DataFrame, int]:
    live = (
        f"SELECT account_id, reason, analyst, added_at, expires_at FROM "
        f"({warehouse.CURRENT_ALLOWLIST}) WHERE expires_at IS NULL OR expires_at > now()"
    )
    total = scalar(con, f"SELECT count(*) FROM ({live})")
    rows = frame(
        con,
        f"{live} ORDER BY added_at DESC LIMIT ? OFFSET ?",
        [page_size, page * page_size],
    )
    return rows, int(total or 0)


def rule_modes(con: Con) -> dict[str, dict]:
    """Rule id -> the analysts' latest mode change (mode, reason, analyst, changed_at)."""
    rows = frame(con, f"SELECT * FROM ({warehouse.CURRENT_RULE_MODES})")
    return {r["rule_id"]: r for r in rows.iter_rows(named=True)}


def rule_hits_per_night(con: Con, nights: int = 30) -> pl.DataFrame:
    """run_date, rule_id, mode, hits over the last `nights` nights."""
    return frame(
        con,
        "SELECT run_date, rule_id, mode, count(*) AS hits FROM rule_hits WHERE run_date IN "
        "(SELECT run_date FROM runs WHERE status = 'ok' ORDER BY run_date DESC LIMIT ?) "
        "GROUP BY ALL ORDER BY run_date, rule_id",
        [nights],
    )


def rule_hits_on(con: Con, kind: str, subject_id: str, day: date) -> pl.DataFrame:
    """The rules that fired on one account or campaign on a night, with their evidence."""
    return frame(
        con,
        "SELECT rule_id, rule_version, mode, evidence FROM rule_hits "
        "WHERE run_date = ? AND subject_kind = ? AND subject_id = ? ORDER BY rule_id",
        [day, kind, subject_id],
    )


def rule_backtest(con: Con, rule_id: str, limit: int = 60) -> pl.DataFrame:
    """A rule's backtest rows, newest night first."""
    return frame(
        con,
        "SELECT night, rule_version, hits, hits_campaign, hits_legit, precision, model_overlap, "
        "backtested_at FROM rule_backtest WHERE rule_id = ? ORDER BY night DESC LIMIT ?",
        [rule_id, limit],
    )


def rule_dismissed_hits(con: Con, rule_id: str, limit: int = PAGE) -> pl.DataFrame:
    """Subjects a rule fired on that analysts dismissed or allow-listed: its known false
    positives in this warehouse, latest night first."""
    return frame(
        con,
        f"""
        WITH v AS (SELECT subject_kind, subject_id, reason, analyst FROM
                   ({warehouse.CURRENT_VERDICTS}) WHERE verdict = 'dismissed'),
        a AS (SELECT 'account' AS subject_kind, account_id AS subject_id, reason, analyst
              FROM ({warehouse.CURRENT_ALLOWLIST})
              WHERE expires_at IS NULL OR expires_at > now()),
        legit AS (SELECT * FROM v UNION ALL SELECT * FROM a)
        SELECT h.subject_kind, h.subject_id, max(h.run_date) AS last_hit, count(*) AS nights,
               any_value(legit.reason) AS dismissed_because, any_value(legit.analyst) AS analyst
        FROM rule_hits h JOIN legit USING (subject_kind, subject_id)
        WHERE h.rule_id = ? GROUP BY ALL ORDER BY last_hit DESC, h.subject_id LIMIT ?
        """,
        [rule_id, limit],
    )
