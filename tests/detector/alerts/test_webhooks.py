"""Webhooks to a real HTTP receiver on loopback that verifies signatures with `standardwebhooks`.

Time is simulated (the outbox is asked to deliver at later and later clock readings), so
backoffs of minutes run in milliseconds; the HTTP, the signatures and the timeouts are real.
"""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import duckdb
import pytest
from standardwebhooks import Webhook

from detector.alerts.webhooks import Endpoint, Policy, deliver, enqueue, event, load_endpoints

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)


class Receiver:
    """A loopback receiver. `script` maps attempt number (1-based, per webhook-id) to a
    behaviour: ("status", code, headers) or ("hang", seconds). Verified events are kept once
    per webhook-id, as a receiver should."""

    def __init__(self, script=None):
        self.script = script or {}
        self.attempts: dict[str, int] = {}
        self.events: dict[str, dict] = {}
        self.duplicates = 0
        self.rejected = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["content-length"]))
                msg_id = self.headers.get("webhook-id", "")
                n = receiver.attempts[msg_id] = receiver.attempts.get(msg_id, 0) + 1
                action = receiver.script.get(n, ("status", 200, {}))
                if action[0] == "hang":
                    time.sleep(action[1])
                    return
                code, headers = action[1], action[2]
                if code == 200:
                    try:
                        payload = Webhook(SECRET).verify(body, dict(self.headers))
                    except Exception:  # noqa: BLE001 - any verification failure is a 400
                        receiver.rejected += 1
                        code = 400
                    else:
                        if msg_id in receiver.events:
                            receiver.duplicates += 1
                        receiver.events[msg_id] = payload
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _outbox(endpoints, n=3):
    con = duckdb.connect()
    events = [
        event(
            "campaign.detected",
            {"campaign_id": f"cmp_{i}", "score": 0.9},
            f"cmp_{i}:2026-03-01",
            T0,
        )
        for i in range(n)
    ]
    enqueue(con, endpoints, [(eid, "campaign.detected", body) for eid, body in events], T0)
    return con


def _run(con, endpoints, hours=24, step_s=60):
    """Deliver at simulated clock readings every `step_s` seconds for `hours`."""
    clock = [T0]
    for _ in range(int(hours * 3600 / step_s)):
        deliver(con, endpoints, now=lambda: clock[0], rng=random.Random(0))
        pending = con.execute(
            "SELECT count(*) FROM alert_outbox WHERE status = 'pending'"
        ).fetchone()[0]
        if not pending:
            break
        clock[0] += timedelta(seconds=step_s)
    return con.execute("SELECT status, attempts FROM alert_outbox ORDER BY event_id").fetchall()


def test_every_event_arrives_verified_once():
    with Receiver() as rx:
        ep = Endpoint("case_tool", rx.url, SECRET)
        con = _outbox([ep])
        rows = _run(con, [ep])
    assert [r[0] for r in rows] == ["delivered"] * 3
    assert len(rx.events) == 3 and rx.duplicates == 0 and rx.rejected == 0
    payload = next(iter(rx.events.values()))
    assert (
        payload["type"] == "campaign.detected"
        and "timestamp" in payload
        and payload["data"]["score"] == 0.9
    )


def test_receiver_down_for_hours_then_up():
    port_holder = Receiver()
    url = port_holder.url
    port_holder.server.server_close()  # nothing listens: connection refused
    ep = Endpoint("case_tool", url, SECRET)
    con = _outbox([ep])
    clock = [T0]
    for _ in range(6):  # six attempts over the first hours, all refused
        deliver(con, [ep], now=lambda: clock[0], rng=random.Random(1))
        clock[0] += timedelta(hours=1)
    attempts = con.execute("SELECT min(attempts), max(status) FROM alert_outbox").fetchone()
    assert attempts[0] >= 3 and attempts[1] == "pending"
    first_ids = [
        r[0] for r in con.execute("SELECT event_id FROM alert_outbox ORDER BY 1").fetchall()
    ]
    rx = Receiver()
    rx.server.server_close()
    # start the real receiver on the same port
    rx.server = ThreadingHTTPServer(
        ("127.0.0.1", int(url.split(":")[2].split("/")[0])), rx.server.RequestHandlerClass
    )
    rx.thread = threading.Thread(target=rx.server.serve_forever, daemon=True)
    with rx:
        for _ in range(200):
            deliver(con, [ep], now=lambda: clock[0], rng=random.Random(2))
            clock[0] += timedelta(minutes=30)
            if not con.execute(
                "SELECT count(*) FROM alert_outbox WHERE status='pending'"
            ).fetchone()[0]:
                break
    assert sorted(rx.events) == first_ids  # same ids as queued: stable across retries
    assert rx.duplicates == 0


def test_500s_then_success():
    with Receiver({1: ("status", 500, {}), 2: ("status", 503, {})}) as rx:
        ep = Endpoint("case_tool", rx.url, SECRET)
        rows = _run(_outbox([ep]), [ep])
    assert rows == [("delivered", 3)] * 3
    assert len(rx.events) == 3 and rx.duplicates == 0


def test_hang_past_the_timeout_is_bounded_and_retried():
    with Receiver({1: ("hang", 1.5)}) as rx:
        ep = Endpoint("case_tool", rx.url, SECRET, timeout_s=0.3)
        con = _outbox([ep], n=1)
        started = time.perf_counter()
        deliver(con, [ep], now=lambda: T0, rng=random.Random(0))
        assert time.perf_counter() - started < 1.4  # the client gave up at its timeout
        error = con.execute("SELECT last_error FROM alert_outbox").fetchone()[0]
        assert "timed out" in error.lower() or "timeout" in error.lower()
        rows = _run(con, [ep])
    assert rows == [("delivered", 2)]
    assert len(rx.events) == 1


def test_429_retry_after_is_honoured():
    with Receiver({1: ("status", 429, {"Retry-After": "7200"})}) as rx:
        ep = Endpoint("case_tool", rx.url, SECRET)
        con = _outbox([ep], n=1)
        deliver(con, [ep], now=lambda: T0, rng=random.Random(0))
        next_at = con.execute("SELECT next_attempt_at FROM alert_outbox").fetchone()[0]
        assert next_at >= T0 + timedelta(seconds=7200)
        deliver(con, [ep], now=lambda: T0 + timedelta(seconds=7100), rng=random.Random(0))
        assert rx.attempts[next(iter(rx.attempts))] == 1  # not before Retry-After
        deliver(con, [ep], now=lambda: T0 + timedelta(seconds=7300), rng=random.Random(0))
    assert len(rx.events) == 1


def test_410_disables_the_endpoint():
    with Receiver({1: ("status", 410, {})}) as rx:
        ep = Endpoint("case_tool", rx.url, SECRET)
        con = _outbox([ep], n=3)
        result = deliver(con, [ep], now=lambda: T0, rng=random.Random(0))
        assert result.disabled == ["case_tool"]
        deliver(con, [ep], now=lambda: T0 + timedelta(days=1), rng=random.Random(0))
    assert sum(rx.attempts.values()) == 1  # nothing sent after the 410
    assert con.execute("SELECT reason FROM webhook_endpoints").fetchone()[0].startswith("410")


def test_other_4xx_fail_without_retry_and_backoff_grows_with_jitter():
    with Receiver({1: ("status", 422, {})}) as rx:
        ep = Endpoint("case_tool", rx.url, SECRET)
        rows = _run(_outbox([ep], n=1), [ep])
    assert rows == [("failed", 1)]
    policy, rng = Policy(), random.Random(0)
    waits = [[policy.backoff(a, rng) for _ in range(200)] for a in (1, 4, 12)]
    assert max(waits[0]) <= 30 and max(waits[1]) <= 240 and max(waits[2]) <= 3600
    assert min(waits[2]) < 600 < max(waits[2])  # jitter spreads retries out


def test_enqueue_is_idempotent_and_filters_types():
    a = Endpoint("a", "http://127.0.0.1:9/x", SECRET)
    b = Endpoint("b", "http://127.0.0.1:9/y", SECRET, types=("run.failed",))
    con = duckdb.connect()
    eid, body = event("campaign.detected", {"campaign_id": "c"}, "c:2026-03-01", T0)
    assert enqueue(con, [a, b], [(eid, "campaign.detected", body)], T0) == 1
    assert enqueue(con, [a, b], [(eid, "campaign.detected", body)], T0) == 0
    assert event("campaign.detected", {}, "c:2026-03-01", T0)[0] == eid
    with pytest.raises(ValueError, match="event type"):
        event("campaign.deleted", {}, "k", T0)


def test_config_from_file_and_environment_never_shows_the_secret(tmp_path):
    cfg = tmp_path / "alerts.toml"
    cfg.write_text(
        '[webhooks.case_tool]\nurl = "https://cases.example/hook"\ntimeout_s = 5\n\n[webhooks.slack]\nurl = "https://hooks.slack.example/x"\nslack = true\n'
    )
    (ep, slack) = load_endpoints(cfg, {"DISTILLGUARD_WEBHOOK_SECRET_CASE_TOOL": SECRET})
    assert ep.secret == SECRET and ep.timeout_s == 5 and slack.slack
    assert SECRET not in repr(ep) and "Mf" not in repr(ep)
    with pytest.raises(ValueError, match="DISTILLGUARD_WEBHOOK_SECRET_CASE_TOOL"):
        load_endpoints(cfg, {})
    with pytest.raises(ValueError, match="url must be http"):
        Endpoint("x", "ftp://nope", SECRET)


def test_slack_payload_is_plain_text():
    received = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            received.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ep = Endpoint("slack", f"http://127.0.0.1:{server.server_address[1]}/", "", slack=True)
        rows = _run(_outbox([ep], n=1), [ep])
    finally:
        server.shutdown()
        server.server_close()
    assert rows == [("delivered", 1)]
    assert received[0]["text"].startswith("distillguard campaign.detected: cmp_0 score 0.900")


def test_alerts_command_delivers_what_is_due(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from detector import warehouse as wh
    from detector.cli import app

    with Receiver() as rx:
        cfg = tmp_path / "alerts.toml"
        cfg.write_text(f'[webhooks.case]\nurl = "{rx.url}"\n')
        monkeypatch.setenv("DISTILLGUARD_WEBHOOK_SECRET_CASE", SECRET)
        con = wh.connect(tmp_path / "w.duckdb")
        eid, body = event("run.failed", {"run_date": "2026-03-01"}, "2026-03-01:x", T0)
        enqueue(con, load_endpoints(cfg), [(eid, "run.failed", body)], T0)
        con.close()
        result = CliRunner().invoke(
            app, ["alerts", "--config", str(cfg), "--warehouse", str(tmp_path / "w.duckdb")]
        )
    assert result.exit_code == 0, result.output
    assert "1 delivered" in result.stdout and list(rx.events) == [eid]
    missing = CliRunner().invoke(
        app, ["alerts", "--config", str(cfg), "--warehouse", str(tmp_path / "none.duckdb")]
    )
    assert missing.exit_code == 2 and "no such warehouse" in missing.output
