"""Signed alert webhooks from a transactional outbox (Standard Webhooks).

Events are written to the `alert_outbox` table in the same transaction as the results they
describe; `deliver` sends what is due and records every attempt, so a receiver that is down for
hours still gets every event once it recovers, and a crash between sending and recording costs
at most a duplicate the receiver drops by `webhook-id` (stable across retries; each attempt is
signed afresh, because receivers reject old timestamps).

Retry policy per event and endpoint: 2xx delivered; 410 Gone disables the endpoint (its pending
events stay in the outbox, marked); 408, 425, 429 and 5xx, connection errors and timeouts retry
with exponential backoff and full jitter (30 s doubling to at most 1 h between attempts, up to
`max_attempts`, about a day), honouring `Retry-After`; other 4xx fail at once (the receiver
rejected the event itself). Secrets come from the environment (`DISTILLGUARD_WEBHOOK_SECRET_<NAME>`)
or the config file and are never printed: `Endpoint`'s repr hides them.
"""

from __future__ import annotations

import json
import os
import random
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import duckdb
from standardwebhooks import Webhook

EVENT_TYPES = ("campaign.detected", "campaign.updated", "account.flagged", "run.failed")
RETRYABLE = {408, 425, 429}
OUTBOX_DDL = """
CREATE TABLE IF NOT EXISTS alert_outbox (
    event_id VARCHAR NOT NULL,
    endpoint VARCHAR NOT NULL,
    type VARCHAR NOT NULL,
    body VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    status VARCHAR NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    last_status INTEGER,
    last_error VARCHAR,
    delivered_at TIMESTAMPTZ,
    PRIMARY KEY (event_id, endpoint)
);
CREATE TABLE IF NOT EXISTS alert_events (
    event_id VARCHAR PRIMARY KEY,
    type VARCHAR NOT NULL,
    subject_id VARCHAR,
    run_date DATE,
    first_at TIMESTAMPTZ NOT NULL,
    source VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    name VARCHAR PRIMARY KEY,
    disabled_at TIMESTAMPTZ,
    reason VARCHAR
);
"""


@dataclass(frozen=True)
class Endpoint:
    """A receiver. `slack=True` sends a Slack-compatible `{"text": ...}` body instead."""

    name: str
    url: str
    secret: str = field(repr=False)
    timeout_s: float = 10.0
    slack: bool = False
    types: tuple[str, ...] = EVENT_TYPES

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"webhook {self.name!r}: url must be http(s), got {self.url!r}")
        if not self.slack:
            Webhook(self.secret)  # fails early on a malformed whsec_ secret
        if not 0 < self.timeout_s <= 60:
            raise ValueError(f"webhook {self.name!r}: timeout_s must be in (0, 60]")
        unknown = set(self.types) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"webhook {self.name!r}: unknown event types {sorted(unknown)}")


def load_endpoints(path: Path | None, env: dict[str, str] | None = None) -> list[Endpoint]:
    """Endpoints from a TOML file (`[webhooks.NAME] url = ..., timeout_s = ..., slack = ...,
    types = [...]`); each secret from `DISTILLGUARD_WEBHOOK_SECRET_<NAME>` (upper case), else
    the file's `secret`. Raises ValueError naming the endpoint and what is missing."""
    env = os.environ if env is None else env
    if path is None:
        return []
    try:
        config = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: cannot read webhook config ({exc})") from exc
    out = []
    for name, spec in config.get("webhooks", {}).items():
        secret = env.get(f"DISTILLGUARD_WEBHOOK_SECRET_{name.upper()}", spec.get("secret"))
        if not secret and not spec.get("slack"):
            raise ValueError(
                f"{path}: webhook {name!r} has no secret; set DISTILLGUARD_WEBHOOK_SECRET_"
                f"{name.upper()} (whsec_...)"
            )
        if "url" not in spec:
            raise ValueError(f"{path}: webhook {name!r} has no url")
        out.append(
            Endpoint(
                name,
                spec["url"],
                secret or "",
                float(spec.get("timeout_s", 10.0)),
                bool(spec.get("slack", False)),
                tuple(spec.get("types", EVENT_TYPES)),
            )
        )
    return out


def event(kind: str, data: dict, key: str, at: datetime) -> tuple[str, str]:
    """(event id, JSON body) of an event. The id is derived from `key` (what the event is
    about, e.g. campaign id + run date), so re-enqueueing the same event is a no-op."""
    if kind not in EVENT_TYPES:
        raise ValueError(f"event type must be one of {EVENT_TYPES}, got {kind!r}")
    event_id = "msg_" + uuid.uuid5(uuid.NAMESPACE_URL, f"distillguard:{kind}:{key}").hex
    body = {"type": kind, "timestamp": at.astimezone(UTC).isoformat(), "data": data}
    return event_id, json.dumps(body, sort_keys=True, default=str)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(OUTBOX_DDL)


def enqueue(
    con: duckdb.DuckDBPyConnection,
    endpoints: list[Endpoint],
    events: list[tuple[str, str, str]],
    now: datetime,
) -> int:
    """Add (event_id, type, body) for every endpoint that takes the type; already queued
    events are left as they are. Run it inside the caller's transaction. Returns rows added."""
    ensure_tables(con)
    rows = [
        (event_id, ep.name, kind, body, now, now)
        for event_id, kind, body in events
        for ep in endpoints
        if kind in ep.types
    ]
    if not rows:
        return 0
    before = con.execute("SELECT count(*) FROM alert_outbox").fetchone()[0]
    con.executemany(
        "INSERT INTO alert_outbox (event_id, endpoint, type, body, created_at, next_attempt_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        rows,
    )
    return con.execute("SELECT count(*) FROM alert_outbox").fetchone()[0] - before


def remember(
    con: duckdb.DuckDBPyConnection,
    events: list[tuple[str, str, str]],
    at: datetime,
    source: str,
) -> int:
    """Record each event the first time any run raises it (`alert_events`: its id, type,
    subject, date, the time of the run that first raised it and whether that run was
    `nightly` or `hourly`), endpoints or not. Run it inside the caller's transaction. Returns
    how many were new."""
    ensure_tables(con)
    rows = []
    for event_id, kind, body in events:
        data = json.loads(body)["data"]
        subject = (
            data.get("campaign_id") if kind.startswith("campaign.") else data.get("account_id")
        )
        rows.append((event_id, kind, subject, data.get("run_date"), at, source))
    if not rows:
        return 0
    before = con.execute("SELECT count(*) FROM alert_events").fetchone()[0]
    con.executemany(
        "INSERT INTO alert_events VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows
    )
    return con.execute("SELECT count(*) FROM alert_events").fetchone()[0] - before


@dataclass
class Policy:
    """Retry timing."""

    base_s: float = 30.0
    cap_s: float = 3600.0
    max_attempts: int = 30
    max_retry_after_s: float = 6 * 3600.0

    def backoff(self, attempts: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2^(attempts-1))], at least 1 s."""
        return max(1.0, rng.uniform(0, min(self.cap_s, self.base_s * 2 ** (attempts - 1))))


@dataclass
class Attempt:
    status: int | None
    error: str | None
    retry_after_s: float | None = None


def post(ep: Endpoint, event_id: str, body: str) -> Attempt:
    """One signed POST, bounded by the endpoint's timeout. The signature's timestamp is the
    wall clock at sending (receivers reject stale ones), whatever clock schedules retries."""
    now = datetime.now(UTC)
    if ep.slack:
        payload = json.loads(body)
        data = json.dumps({"text": _slack_text(payload)}).encode()
        headers = {"content-type": "application/json"}
    else:
        data = body.encode()
        headers = {
            "content-type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(ep.secret).sign(event_id, now, body),
        }
    request = urllib.request.Request(ep.url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=ep.timeout_s) as response:
            return Attempt(response.status, None)
    except urllib.error.HTTPError as exc:
        return Attempt(
            exc.code, f"HTTP {exc.code}", _retry_after(exc.headers.get("Retry-After"), now)
        )
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Attempt(None, f"{type(exc).__name__}: {reason}")


def _retry_after(value: str | None, now: datetime) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
        except (TypeError, ValueError):
            return None


def _slack_text(payload: dict) -> str:
    data = payload.get("data", {})
    what = data.get("campaign_id") or data.get("account_id") or data.get("run_id") or ""
    score = f" score {data['score']:.3f}" if isinstance(data.get("score"), float) else ""
    return f"distillguard {payload.get('type')}: {what}{score}"


@dataclass
class Delivery:
    """What one `deliver` call did, and what is left waiting in the outbox after it."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    disabled: list[str] = field(default_factory=list)
    pending: int = 0  # events still waiting out their backoff, for endpoints that take them
    next_due: datetime | None = None  # when the earliest of them is due
    held: int = 0  # events waiting for a disabled or unconfigured endpoint


def deliver(
    con: duckdb.DuckDBPyConnection,
    endpoints: list[Endpoint],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    policy: Policy = Policy(),
    rng: random.Random | None = None,
    send: Callable[[Endpoint, str, str], Attempt] = post,
    force: bool = False,
) -> Delivery:
    """Send every due event once (`force`: every pending event, due or not); record each
    attempt as it happens. Returns what happened and what is still waiting."""
    ensure_tables(con)
    rng = rng or random.Random()
    by_name = {ep.name: ep for ep in endpoints}
    disabled = {
        r[0]
        for r in con.execute(
            "SELECT name FROM webhook_endpoints WHERE disabled_at IS NOT NULL"
        ).fetchall()
    }
    due = con.execute(
        "SELECT event_id, endpoint, body, attempts FROM alert_outbox "
        "WHERE status = 'pending' AND (? OR next_attempt_at <= ?) ORDER BY created_at, event_id",
        [force, now()],
    ).fetchall()
    out = Delivery()
    for event_id, name, body, attempts in due:
        ep = by_name.get(name)
        if ep is None or name in disabled:
            continue
        at = now()
        result = send(ep, event_id, body)
        attempts += 1
        code = result.status
        if code is not None and 200 <= code < 300:
            _update(con, event_id, name, "delivered", attempts, at, code, None, delivered=at)
            out.delivered += 1
        elif code == 410:
            _update(
                con, event_id, name, "pending", attempts, at, code, "410 Gone: endpoint disabled"
            )
            con.execute(
                "INSERT INTO webhook_endpoints VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET disabled_at = excluded.disabled_at, reason = excluded.reason",
                [name, at, f"410 Gone on {event_id}"],
            )
            disabled.add(name)
            out.disabled.append(name)
        elif (code is None or code >= 500 or code in RETRYABLE) and attempts < policy.max_attempts:
            wait = policy.backoff(attempts, rng)
            if result.retry_after_s is not None:
                wait = max(wait, min(result.retry_after_s, policy.max_retry_after_s))
            _update(
                con,
                event_id,
                name,
                "pending",
                attempts,
                at + timedelta(seconds=wait),
                code,
                result.error,
            )
            out.retried += 1
        else:
            _update(
                con, event_id, name, "failed", attempts, at, code, result.error or f"HTTP {code}"
            )
            out.failed += 1
    live = sorted(set(by_name) - disabled)
    pending, next_due, held = con.execute(
        "SELECT count(*) FILTER (WHERE list_contains(?, endpoint)), "
        "min(next_attempt_at) FILTER (WHERE list_contains(?, endpoint)), "
        "count(*) FILTER (WHERE NOT list_contains(?, endpoint)) "
        "FROM alert_outbox WHERE status = 'pending'",
        [live, live, live],
    ).fetchone()
    out.pending, out.next_due, out.held = pending, next_due, held
    return out


def _update(con, event_id, name, status, attempts, next_at, code, error, delivered=None) -> None:
    con.execute(
        "UPDATE alert_outbox SET status = ?, attempts = ?, next_attempt_at = ?, last_status = ?, "
        "last_error = ?, delivered_at = ? WHERE event_id = ? AND endpoint = ?",
        [status, attempts, next_at, code, error, delivered, event_id, name],
    )
