"""Delivering weekly reports and alerts through the configured channels, with retries.

Channels: a directory (``<week>/<model>.html`` and ``.json``, ``summary.*``, and
``alerts/<day>/<id>-<state>.json``, each written to a temporary file and renamed into place),
a webhook (Slack-compatible JSON: ``text`` plus ``blocks``, with links to the server) and SMTP
email (the week's summary as the body, the self-contained summary report attached).

Each (week or alert, channel) is a row in `deliveries`. `deliver_due` claims the rows that are
due, sends, and records the outcome: sent, or failed with the error and the next attempt
(back-off from 1 minute, doubling, up to an hour) until `delivery_max_attempts`, after which
the delivery is marked failed, logged as an error and counted in /metrics. Nothing is lost to
a restart: a pending delivery waits in the database for the next run.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import smtplib
import ssl
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson

from dashboards.report import (
    file_stem,
    parse_report,
    render_email_html,
    render_report_html,
    render_summary_text,
    stem_for,
)
from observe.config import Settings
from observe.db.engine import Database
from observe.schemas.reports import ModelReport, SummaryReport
from observe.storage import alerts as alert_store
from observe.storage import deliveries as delivery_store
from observe.storage import reports as report_store
from observe.storage.alerts import AlertRow
from observe.storage.deliveries import DeliveryRow
from observe.storage.reports import StoredReport

log = logging.getLogger(__name__)

#: A claimed delivery is someone else's to retry after this long (its sender died).
LEASE_SECONDS = 600.0
FIRST_RETRY_SECONDS = 60.0
MAX_RETRY_SECONDS = 3600.0
#: Slack limits: a section's text, the fields of a section.
MAX_SECTION_CHARS = 2900
MAX_FIELDS = 10
MAX_ATTENTION_LINES = 10


class DeliveryError(Exception):
    """A channel did not accept a delivery; the message says why."""


class DeliveryListener(Protocol):
    """Told about reports, alerts and deliveries (observe's /metrics counts them)."""

    def on_delivery(self, subject: str, channel: str, result: str) -> None:
        """`subject` report or alert; `result` sent, retry or failed."""

    def on_reports_written(self, count: int) -> None: ...

    def on_alert(self, kind: str, state: str) -> None: ...


@dataclass(frozen=True)
class WeekReports:
    """A week's stored reports, as the channels send them."""

    week: str
    summary: StoredReport
    models: list[StoredReport]
    base_url: str

    def summary_report(self) -> SummaryReport:
        return SummaryReport.model_validate(self.summary.content)

    def model_report(self, stored: StoredReport) -> ModelReport:
        return ModelReport.model_validate(stored.content)

    def url(self, stored: StoredReport, extension: str = "html") -> str:
        """Where the server shows a report (the UI's report files)."""
        return report_file_url(self.base_url, stored.week, stored.model, extension)

    def model_links(self) -> dict[str, str]:
        return {str(r.model): self.url(r) for r in self.models}


def report_file_url(base_url: str, week: str, model: str | None, extension: str = "html") -> str:
    """``{base}/ui/reports/2026-W47/fraud-scorer.html``: a report as the UI serves it, beside
    the week's others (as the directory channel lays them out)."""
    return f"{base_url.rstrip('/')}/ui/reports/{week}/{stem_for(model)}.{extension}"


class Channel(Protocol):
    name: str

    def send_reports(self, reports: WeekReports) -> None: ...

    def send_alert(self, alert: AlertRow) -> None: ...


# --- directory ---------------------------------------------------------------------------------


class DirectoryChannel:
    """Files under `root`: ``<week>/<model>.html|json``, ``<week>/summary.html|json``."""

    name = "directory"

    def __init__(self, root: Path) -> None:
        self.root = root

    def send_reports(self, reports: WeekReports) -> None:
        try:
            for stored in [reports.summary, *reports.models]:
                write_report_files(self.root / reports.week, stored.content or {})
        except OSError as error:
            raise DeliveryError(f"cannot write to {self.root}: {error}") from None

    def send_alert(self, alert: AlertRow) -> None:
        folder = self.root / "alerts" / f"{alert.created_at:%Y-%m-%d}"
        try:
            write_atomically(folder / f"{alert.id}-{alert.state}.json", alert_json(alert))
        except OSError as error:
            raise DeliveryError(f"cannot write to {folder}: {error}") from None


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path` and rename it into place, so a reader
    never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_report_files(folder: Path, content: Mapping[str, Any]) -> list[Path]:
    """A report's ``.json`` and self-contained ``.html`` in `folder`, each written atomically.

    Returns:
        The two paths, JSON first.
    """
    report = parse_report(content)
    stem = file_stem(report)
    paths = [folder / f"{stem}.json", folder / f"{stem}.html"]
    write_atomically(paths[0], orjson.dumps(dict(content), option=orjson.OPT_INDENT_2))
    write_atomically(paths[1], render_report_html(report).encode())
    return paths


def alert_json(alert: AlertRow) -> bytes:
    return orjson.dumps(
        {
            "id": alert.id,
            "incident_key": alert.incident_key,
            "state": alert.state,
            "kind": alert.kind,
            "model": alert.model,
            "model_version": alert.model_version,
            "finding_id": alert.finding_id,
            "summary": alert.summary,
            "details": alert.details,
            "created_at": alert.created_at,
        },
        option=orjson.OPT_INDENT_2,
    )


# --- webhook -----------------------------------------------------------------------------------


class WebhookChannel:
    """POSTs Slack-compatible JSON (``text`` and ``blocks``); any 2xx is accepted."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self.timeout_seconds = timeout_seconds
        self.transport = transport

    def send_reports(self, reports: WeekReports) -> None:
        self.post(report_payload(reports))

    def send_alert(self, alert: AlertRow) -> None:
        self.post(alert_payload(alert))

    def post(self, payload: dict[str, Any]) -> None:
        try:
            with httpx.Client(timeout=self.timeout_seconds, transport=self.transport) as client:
                response = client.post(
                    self.url,
                    content=orjson.dumps(payload),
                    headers={"Content-Type": "application/json"},
                )
        except httpx.HTTPError as error:
            # The URL is a credential: the message names the host only.
            host = httpx.URL(self.url).host
            raise DeliveryError(f"webhook {host}: {type(error).__name__}: {error}") from None
        if not response.is_success:
            body = response.text[:200].strip()
            raise DeliveryError(f"webhook answered HTTP {response.status_code}: {body}")


def report_payload(reports: WeekReports) -> dict[str, Any]:
    """The week's summary as a Slack message: needs attention, a line per model, the link."""
    summary = reports.summary_report()
    url = reports.url(reports.summary)
    count = len(summary.needs_attention)
    headline = (
        f"observe weekly report {summary.week}: {_count(len(summary.models), 'model')}, "
        f"{count} item{'s' if count != 1 else ''} need{'s' if count == 1 else ''} attention"
    )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Weekly report {summary.week}"}},
        _section(_attention_text(summary)),
    ]
    links = reports.model_links()
    fields = [_model_field(m, links.get(m.overview.name)) for m in summary.models[:MAX_FIELDS]]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    more = len(summary.models) - MAX_FIELDS
    footer = f"<{url}|Open the report>" + (f" · {more} more models in it" if more > 0 else "")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]})
    return {"text": f"{headline}: {url}", "blocks": blocks}


def _attention_text(summary: SummaryReport) -> str:
    items = summary.needs_attention
    if not items:
        return "*Nothing needs attention this week.*"
    lines = [f"*Needs attention ({len(items)})*"]
    for item in items[:MAX_ATTENTION_LINES]:
        text = f"• [{item.severity}] {slack_escape(item.summary)}"
        lines.append(f"{text} <{item.link}|open>" if item.link else text)
    if len(items) > MAX_ATTENTION_LINES:
        lines.append(f"… and {len(items) - MAX_ATTENTION_LINES} more in the report")
    return _truncate("\n".join(lines))


def _model_field(model: Any, link: str | None) -> dict[str, str]:
    overview, traffic = model.overview, model.traffic
    name = slack_escape(overview.name)
    title = f"<{link}|{name}>" if link else f"*{name}*"
    p95 = "-" if overview.p95 is None else f"{overview.p95:,.1f} ms"
    errors = "-" if overview.error_rate is None else f"{overview.error_rate * 100:.2f}%"
    text = (
        f"{title}\n{overview.num_requests:,} requests ({_relative(traffic.num_requests.change)})"
        f"\np95 {p95} ({_relative(traffic.p95.change)}) · errors {errors}"
    )
    return {"type": "mrkdwn", "text": text}


def alert_payload(alert: AlertRow) -> dict[str, Any]:
    """One alert as a Slack message."""
    details = alert.details
    what = alert.kind.replace("_", " ")
    subject = f"{alert.model} {alert.model_version}" if alert.model_version else alert.model
    lines = [f"*{alert.state.capitalize()}: {what} of {slack_escape(subject)}*"]
    lines.append(slack_escape(alert.summary))
    cause = details.get("top_cause")
    if cause:
        lines.append(
            f"*Likely cause:* {slack_escape(cause['summary'])} → {slack_escape(cause['action'])}"
        )
    link = details.get("link")
    if link:
        lines.append(f"<{link}|Triage>")
    text = f"[observe] {alert.state}: {alert.summary}" + (f" {link}" if link else "")
    return {"text": text, "blocks": [_section("\n".join(lines))]}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _truncate(text)}}


def _truncate(text: str) -> str:
    return text if len(text) <= MAX_SECTION_CHARS else text[: MAX_SECTION_CHARS - 1] + "…"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _relative(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}%"


def slack_escape(text: str) -> str:
    """Slack's mrkdwn reserves &, < and >."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- email -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str
    user: str
    password: str
    sender: str
    recipients: tuple[str, ...]
    timeout_seconds: float


class EmailChannel:
    """Mail through an SMTP server: STARTTLS, TLS from the start (``ssl``) or plain."""

    name = "email"

    def __init__(self, smtp: SmtpSettings) -> None:
        self.smtp = smtp

    def send_reports(self, reports: WeekReports) -> None:
        self.send(report_email(reports, sender=self.smtp.sender, to=self.smtp.recipients))

    def send_alert(self, alert: AlertRow) -> None:
        self.send(alert_email(alert, sender=self.smtp.sender, to=self.smtp.recipients))

    def send(self, message: EmailMessage) -> None:
        smtp = self.smtp
        try:
            with self._connect() as client:
                if smtp.security == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if smtp.user:
                    client.login(smtp.user, smtp.password)
                refused = client.send_message(message)
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(f"SMTP {smtp.host}:{smtp.port}: {_smtp_error(error)}") from None
        if refused:  # some recipients took it: sending again would repeat it to them
            log.warning("SMTP %s refused recipients %s", smtp.host, sorted(refused))

    def _connect(self) -> smtplib.SMTP:
        smtp = self.smtp
        if smtp.security == "ssl":
            return smtplib.SMTP_SSL(
                smtp.host,
                smtp.port,
                timeout=smtp.timeout_seconds,
                context=ssl.create_default_context(),
            )
        return smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)


def _smtp_error(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        message = error.smtp_error
        text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
        return f"{error.smtp_code} {text}"
    return f"{type(error).__name__}: {error}"


def report_email(reports: WeekReports, *, sender: str, to: Sequence[str]) -> EmailMessage:
    """The week's summary as a multipart mail: plain text, HTML, and the self-contained
    summary report attached."""
    summary = reports.summary_report()
    count = len(summary.needs_attention)
    message = _message(
        f"observe weekly report {summary.week}: "
        + (f"{count} item{'s' if count != 1 else ''} need attention" if count else "all clear"),
        sender,
        to,
    )
    message.set_content(render_summary_text(summary))
    message.add_alternative(
        render_email_html(summary, model_links=reports.model_links()), subtype="html"
    )
    message.add_attachment(
        render_report_html(summary).encode(),
        maintype="text",
        subtype="html",
        filename=f"observe-{summary.week}-summary.html",
    )
    return message


def alert_email(alert: AlertRow, *, sender: str, to: Sequence[str]) -> EmailMessage:
    """A short mail about one alert."""
    what = alert.kind.replace("_", " ")
    subject = f"{alert.model} {alert.model_version}" if alert.model_version else alert.model
    message = _message(f"[observe] {alert.state}: {what} of {subject}", sender, to)
    lines = [alert.summary]
    cause = alert.details.get("top_cause")
    if cause:
        lines.append(f"Likely cause: {cause['summary']}\nAction: {cause['action']}")
    if alert.details.get("link"):
        lines.append(f"Triage: {alert.details['link']}")
    message.set_content("\n\n".join(lines) + "\n")
    return message


def _message(subject: str, sender: str, to: Sequence[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(to)
    return message


# --- an in-memory channel ----------------------------------------------------------------------


@dataclass
class InMemoryChannel:
    """Keeps what it is sent; fails the first `failures` sends (a double for tests and dry
    runs)."""

    name: str = "webhook"
    failures: int = 0
    reports: list[WeekReports] = field(default_factory=list)
    alerts: list[AlertRow] = field(default_factory=list)

    def send_reports(self, reports: WeekReports) -> None:
        self._maybe_fail()
        self.reports.append(reports)

    def send_alert(self, alert: AlertRow) -> None:
        self._maybe_fail()
        self.alerts.append(alert)

    def _maybe_fail(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise DeliveryError(f"{self.name} is down")


# --- channels from settings --------------------------------------------------------------------


def channels_from_settings(settings: Settings) -> dict[str, Channel]:
    """The channels the settings configure, by name."""
    channels: dict[str, Channel] = {}
    directory = settings.report_directory
    if directory is not None:
        channels["directory"] = DirectoryChannel(directory)
    if settings.webhook_url is not None:
        channels["webhook"] = WebhookChannel(
            settings.webhook_url.get_secret_value(),
            timeout_seconds=settings.webhook_timeout_seconds,
        )
    if settings.smtp_host:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
        channels["email"] = EmailChannel(
            SmtpSettings(
                host=settings.smtp_host,
                port=settings.smtp_port,
                security=settings.smtp_security,
                user=settings.smtp_user,
                password=password,
                sender=settings.smtp_from,
                recipients=settings.smtp_to,
                timeout_seconds=settings.smtp_timeout_seconds,
            )
        )
    return channels


# --- sending what is due -----------------------------------------------------------------------


@dataclass
class DeliveryRun:
    """What one run of `deliver_due` did."""

    sent: list[DeliveryRow] = field(default_factory=list)
    retrying: list[tuple[DeliveryRow, str]] = field(default_factory=list)
    failed: list[tuple[DeliveryRow, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Deliverer:
    """Sends due deliveries through `channels`."""

    db: Database
    channels: Mapping[str, Channel]
    base_url: str
    max_attempts: int
    listener: DeliveryListener | None = None
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))

    @classmethod
    def from_settings(
        cls,
        db: Database,
        settings: Settings,
        *,
        channels: Mapping[str, Channel] | None = None,
        listener: DeliveryListener | None = None,
    ) -> Deliverer:
        return cls(
            db,
            channels_from_settings(settings) if channels is None else channels,
            settings.base_url,
            settings.delivery_max_attempts,
            listener,
        )

    @property
    def channel_names(self) -> list[str]:
        return sorted(self.channels)

    def deliver_due(self, *, now: dt.datetime | None = None) -> DeliveryRun:
        """Claim the deliveries that are due and send each; record every outcome."""
        now = now or self.clock()
        with self.db.write_sessions.begin() as session:
            claimed = delivery_store.claim_due_deliveries(
                session, now=now, lease_seconds=LEASE_SECONDS
            )
        run = DeliveryRun()
        for delivery in claimed:
            self._attempt(delivery, now, run)
        return run

    def _attempt(self, delivery: DeliveryRow, now: dt.datetime, run: DeliveryRun) -> None:
        subject = "report" if delivery.week is not None else "alert"
        try:
            self._send(delivery)
        except Exception as error:
            message = str(error) if isinstance(error, DeliveryError) else _describe(error)
            retry = delivery.attempts < self.max_attempts and delivery.channel in self.channels
            retry_at = now + dt.timedelta(seconds=backoff_seconds(delivery.attempts))
            with self.db.write_sessions.begin() as session:
                delivery_store.record_delivery_failure(
                    session,
                    delivery.id,
                    error=message,
                    now=now,
                    retry_at=retry_at if retry else None,
                )
            self._failed(delivery, subject, message, retry, run)
            return
        with self.db.write_sessions.begin() as session:
            delivery_store.record_delivery_sent(session, delivery.id, now=now)
        log.info("delivered %s %s via %s", subject, _name(delivery), delivery.channel)
        run.sent.append(delivery)
        self._notify(subject, delivery.channel, "sent")

    def _send(self, delivery: DeliveryRow) -> None:
        channel = self.channels.get(delivery.channel)
        if channel is None:
            raise DeliveryError(f"the {delivery.channel} channel is not configured")
        if delivery.attempts > self.max_attempts:  # its last sender died mid-way
            raise DeliveryError(f"gave up after {self.max_attempts} attempts")
        with self.db.sessions() as session:
            if delivery.week is not None:
                channel.send_reports(self._week(session, delivery.week))
                return
            alert = alert_store.get_alert(session, int(delivery.alert_id or 0))
        if alert is None:
            raise DeliveryError(f"alert {delivery.alert_id} no longer exists")
        channel.send_alert(alert)

    def _week(self, session: Any, week: str) -> WeekReports:
        stored = report_store.load_week_reports(session, week)
        summaries = [r for r in stored if r.kind == "summary"]
        if not summaries:
            raise DeliveryError(f"week {week} has no summary report")
        models = [r for r in stored if r.kind == "model"]
        return WeekReports(week, summaries[0], models, self.base_url)

    def _failed(
        self, delivery: DeliveryRow, subject: str, message: str, retry: bool, run: DeliveryRun
    ) -> None:
        if retry:
            log.warning(
                "delivering %s %s via %s failed (attempt %d of %d, retrying in %.0f s): %s",
                subject,
                _name(delivery),
                delivery.channel,
                delivery.attempts,
                self.max_attempts,
                backoff_seconds(delivery.attempts),
                message,
            )
            run.retrying.append((delivery, message))
        else:
            log.error(
                "delivering %s %s via %s failed after %d attempts, giving up: %s",
                subject,
                _name(delivery),
                delivery.channel,
                delivery.attempts,
                message,
            )
            run.failed.append((delivery, message))
        self._notify(subject, delivery.channel, "retry" if retry else "failed")

    def _notify(self, subject: str, channel: str, result: str) -> None:
        if self.listener is not None:
            self.listener.on_delivery(subject, channel, result)


def backoff_seconds(attempts: int) -> float:
    """Wait after the `attempts`-th failed attempt: 1 minute, doubling, at most an hour."""
    return min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS)


def _name(delivery: DeliveryRow) -> str:
    return str(delivery.week) if delivery.week is not None else f"#{delivery.alert_id}"


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
