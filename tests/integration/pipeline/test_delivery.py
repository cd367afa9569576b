"""Delivering a week's reports: a webhook against a local HTTP server (failing ones retried with
back-off, then reported), email against a local SMTP server, and the directory channel."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from observe.api.telemetry import Telemetry
from observe.config import Settings
from observe.db.engine import Database
from observe.pipeline import reports
from observe.pipeline.delivery import (
    Deliverer,
    DeliveryError,
    DirectoryChannel,
    EmailChannel,
    SmtpSettings,
    WebhookChannel,
    channels_from_settings,
)
from observe.pipeline.weeks import Week
from observe.storage import deliveries as delivery_store
from observe.storage import reports as report_store
from tests.conftest import make_settings
from tests.integration.dashboards.browser import free_loopback_port
from tests.integration.pipeline.report_scenario import write_small_week

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

WEEK = Week(2026, 47)
NOW = WEEK.end + dt.timedelta(hours=6)
USER, PASSWORD = "reports", "s3cret-pw"


def queue(db: Database, *channels: str) -> None:
    reports.queue_week_delivery(db, WEEK, list(channels), now=NOW)


def deliveries(db: Database) -> dict[str, delivery_store.DeliveryRow]:
    with db.sessions() as session:
        return {d.channel: d for d in delivery_store.load_deliveries(session, weeks=[WEEK.name])}


# --- a local webhook ---------------------------------------------------------------------------


@dataclass
class Hook:
    """A local HTTP server answering each POST with the next status (the last one repeats)."""

    statuses: list[int]
    bodies: list[Any] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook(statuses=[200])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            state.bodies.append(json.loads(self.rfile.read(length)))
            status = state.statuses.pop(0) if len(state.statuses) > 1 else state.statuses[0]
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"invalid_token")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/XXXX"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def webhook_deliverer(
    db: Database, hook: Hook, *, max_attempts: int = 8, listener: Any = None
) -> Deliverer:
    channel = WebhookChannel(hook.url, timeout_seconds=5)
    return Deliverer(
        db, {"webhook": channel}, "https://observe.example.com", max_attempts, listener
    )


def test_the_webhook_gets_a_slack_message_with_the_summary_and_a_link(
    db: Database, settings: Settings, hook: Hook
) -> None:
    write_small_week(db, settings)
    queue(db, "webhook")

    run = webhook_deliverer(db, hook).deliver_due(now=NOW)

    assert [d.channel for d in run.sent] == ["webhook"]
    [body] = hook.bodies
    link = "https://observe.example.com/ui/reports/2026-W47/summary.html"
    assert body["text"].startswith("observe weekly report 2026-W47: 1 model")
    assert body["text"].endswith(link)
    header, attention, models, footer = body["blocks"]
    assert header["text"]["text"] == "Weekly report 2026-W47"
    assert attention["text"]["type"] == "mrkdwn"
    [model] = models["fields"]
    assert model["text"].startswith(
        "<https://observe.example.com/ui/reports/2026-W47/fraud-scorer.html|fraud-scorer>\n"
        "300 requests"
    )
    assert footer["elements"][0]["text"] == f"<{link}|Open the report>"
    sent = deliveries(db)["webhook"]
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 1, None)


def test_a_failing_webhook_is_retried_with_back_off_then_reported(
    db: Database, settings: Settings, hook: Hook
) -> None:
    write_small_week(db, settings)
    queue(db, "webhook")
    hook.statuses = [500]
    telemetry = Telemetry()
    minute = dt.timedelta(minutes=1)

    def attempt(at: dt.datetime) -> Any:  # a new deliverer each time, as after a restart
        return webhook_deliverer(db, hook, max_attempts=3, listener=telemetry).deliver_due(now=at)

    first = attempt(NOW)
    too_soon = attempt(NOW + minute / 2)
    second = attempt(NOW + minute)
    state = deliveries(db)["webhook"]
    assert state.next_attempt_at == NOW + 3 * minute  # 1 minute, then 2
    third = attempt(NOW + 3 * minute)
    after = attempt(NOW + dt.timedelta(days=1))

    assert [len(r.retrying) for r in (first, too_soon, second, third)] == [1, 0, 1, 0]
    assert len(third.failed) == 1
    assert after.retrying == after.failed == after.sent == []
    assert len(hook.bodies) == 3
    failed = deliveries(db)["webhook"]
    assert (failed.status, failed.attempts) == ("failed", 3)
    assert failed.last_error == "webhook answered HTTP 500: invalid_token"
    assert "XXXX" not in (failed.last_error or "")

    def count(result: str) -> float | None:
        return telemetry.registry.get_sample_value(
            "observe_deliveries_total",
            {"subject": "report", "channel": "webhook", "result": result},
        )

    assert (count("retry"), count("failed"), count("sent")) == (2.0, 1.0, None)


def test_a_webhook_that_recovers_gets_the_report_on_the_next_attempt(
    db: Database, settings: Settings, hook: Hook
) -> None:
    write_small_week(db, settings)
    queue(db, "webhook")
    hook.statuses = [503, 200]

    webhook_deliverer(db, hook).deliver_due(now=NOW)
    run = webhook_deliverer(db, hook).deliver_due(now=NOW + dt.timedelta(minutes=1))

    assert len(run.sent) == 1
    assert len(hook.bodies) == 2
    assert hook.bodies[0] == hook.bodies[1]
    assert deliveries(db)["webhook"].status == "sent"


def test_an_unreachable_webhook_names_the_host_and_not_the_url(
    db: Database, settings: Settings
) -> None:
    write_small_week(db, settings)
    queue(db, "webhook")
    channel = WebhookChannel("http://127.0.0.1:9/hooks/secret-token", timeout_seconds=2)
    deliverer = Deliverer(db, {"webhook": channel}, "http://observe", 8)

    [(_, error)] = deliverer.deliver_due(now=NOW).retrying

    assert error.startswith("webhook 127.0.0.1: ConnectError")
    assert "secret-token" not in error


# --- a local SMTP server -----------------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # not handled: the server answers 535


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_loopback_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,  # a test server on loopback, without a certificate
        auth_required=True,
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def email_channel(port: int, *, security: str = "none", password: str = PASSWORD) -> EmailChannel:
    return EmailChannel(
        SmtpSettings(
            host="127.0.0.1",
            port=port,
            security=security,
            user=USER,
            password=password,
            sender="observe <reports@example.com>",
            recipients=("oncall@example.com", "lead@example.com"),
            timeout_seconds=10,
        )
    )


def test_email_carries_the_summary_and_the_self_contained_report(
    db: Database, settings: Settings, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    write_small_week(db, settings)
    queue(db, "email")

    run = Deliverer(db, {"email": email_channel(port)}, "http://observe", 8).deliver_due(now=NOW)

    assert len(run.sent) == 1
    [message] = inbox.messages
    assert inbox.envelopes == [("reports@example.com", ["oncall@example.com", "lead@example.com"])]
    assert message["Subject"].startswith("observe weekly report 2026-W47")
    assert message["To"] == "oncall@example.com, lead@example.com"
    text = message.get_body(preferencelist=("plain",))
    body = message.get_body(preferencelist=("html",))
    assert text is not None
    assert body is not None
    assert "fraud-scorer: 300 requests" in text.get_content()
    mail_html = body.get_content()
    assert "<script" not in mail_html  # mail clients strip scripts: the body has none
    assert "fraud-scorer" in mail_html
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "observe-2026-W47-summary.html"
    report = attachment.get_content()
    assert "plotly.js v" in report
    with db.sessions() as session:
        stored = report_store.find_report(session, week=WEEK.name, model=None)
    assert stored is not None
    assert f"{stored.content['num_requests']['current']:,.0f} requests" in report  # type: ignore[index]


def test_a_wrong_smtp_password_is_reported_with_the_servers_answer(
    db: Database, settings: Settings, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    write_small_week(db, settings)
    queue(db, "email")
    channel = email_channel(port, password="wrong")

    [(_, error)] = Deliverer(db, {"email": channel}, "http://o", 8).deliver_due(now=NOW).retrying

    assert error.startswith(f"SMTP 127.0.0.1:{port}: 535")
    assert inbox.messages == []
    assert deliveries(db)["email"].status == "pending"


def test_starttls_against_a_server_without_it_fails_clearly(smtp: tuple[Inbox, int]) -> None:
    _, port = smtp
    message = EmailMessage()
    message["Subject"] = "x"

    with pytest.raises(DeliveryError, match="STARTTLS extension not supported"):
        email_channel(port, security="starttls").send(message)


# --- the directory -----------------------------------------------------------------------------


def test_the_directory_gets_each_report_as_html_and_json(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    write_small_week(db, settings)
    queue(db, "directory")
    root = tmp_path / "delivered"

    Deliverer(db, {"directory": DirectoryChannel(root)}, "http://o", 8).deliver_due(now=NOW)

    folder = root / "2026-W47"
    assert sorted(p.name for p in folder.iterdir()) == [
        "fraud-scorer.html",
        "fraud-scorer.json",
        "summary.html",
        "summary.json",
    ]
    with db.sessions() as session:
        stored = report_store.find_report(session, week=WEEK.name, model="fraud-scorer")
    assert stored is not None
    assert json.loads((folder / "fraud-scorer.json").read_text()) == stored.content
    assert (folder / "summary.html").read_text().startswith("<!DOCTYPE html>")
    assert deliveries(db)["directory"].status == "sent"


def test_an_unwritable_directory_is_a_failed_attempt(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    write_small_week(db, settings)
    queue(db, "directory")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    run = Deliverer(db, {"directory": DirectoryChannel(blocker)}, "http://o", 8).deliver_due(
        now=NOW
    )

    [(_, error)] = run.retrying
    assert error.startswith(f"cannot write to {blocker}")


def test_a_channel_no_longer_configured_fails_the_delivery_at_once(
    db: Database, settings: Settings
) -> None:
    write_small_week(db, settings)
    queue(db, "email")

    run = Deliverer(db, {}, "http://o", 8).deliver_due(now=NOW)

    [(_, error)] = run.failed
    assert error == "the email channel is not configured"
    assert deliveries(db)["email"].status == "failed"


def test_channels_come_from_the_settings(settings: Settings, tmp_path: Path) -> None:
    assert sorted(channels_from_settings(settings)) == ["directory"]
    configured = make_settings(
        data_dir=tmp_path,
        report_dir="off",
        webhook_url="https://hooks.example.com/x",
        smtp_host="mail.example.com",
        smtp_from="a@example.com",
        smtp_to="b@example.com",
    )
    assert sorted(channels_from_settings(configured)) == ["email", "webhook"]
    assert settings.report_directory == tmp_path / "reports"
