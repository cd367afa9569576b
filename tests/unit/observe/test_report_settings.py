"""Settings of the weekly reports, alerts and their channels: defaults and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.conftest import make_settings


def refusal(**overrides: object) -> str:
    with pytest.raises(ValidationError) as raised:
        make_settings(**overrides)
    [error] = raised.value.errors()
    return f"{'.'.join(map(str, error['loc']))}: {error['msg']}"


def test_defaults_write_mondays_to_the_data_directory_and_alert(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path)

    assert settings.report_cron == "0 6 * * 1"
    assert settings.report_catch_up_weeks == 4
    assert settings.report_directory == tmp_path / "reports"
    assert settings.webhook_url is None
    assert settings.smtp_host == ""
    assert settings.alerts_enabled is True


def test_channels_are_read_from_their_settings(tmp_path: Path) -> None:
    settings = make_settings(
        report_dir=str(tmp_path / "out"),
        report_cron="  30   2 * * *  ",
        webhook_url="https://hooks.slack.com/services/T/B/x",
        smtp_host="mail.example.com",
        smtp_security="SSL",
        smtp_from="observe <reports@example.com>",
        smtp_to="a@example.com, b@example.org",
    )

    assert settings.report_directory == tmp_path / "out"
    assert settings.report_cron == "30 2 * * *"
    assert settings.smtp_security == "ssl"
    assert settings.smtp_to == ("a@example.com", "b@example.org")
    assert "x" not in repr(settings.webhook_url)
    assert make_settings(report_dir="OFF").report_directory is None
    assert make_settings(report_cron="").report_cron == ""


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"report_cron": "every monday"}, "is not a cron expression of five fields"),
        ({"report_cron": "0 6 * * 1 2026"}, "is not a cron expression of five fields"),
        ({"report_cron": "0 25 * * 1"}, "is not a cron expression"),
        ({"report_catch_up_weeks": 0}, "greater than or equal to 1"),
        ({"smtp_security": "tls"}, "one of starttls, ssl, none"),
        ({"smtp_to": "oncall"}, "'oncall' is not an email address"),
        ({"smtp_from": "observe"}, "'observe' is not an email address"),
        ({"smtp_host": "mail.example.com"}, "set smtp_from and smtp_to too"),
        ({"webhook_url": "hooks.slack.com/x"}, "must be an http:// or https:// URL"),
        ({"delivery_max_attempts": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_report_settings_are_refused_with_the_reason(
    overrides: dict[str, object], message: str
) -> None:
    assert message in refusal(**overrides)
