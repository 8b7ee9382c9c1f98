"""Fixtures for the login tests: a loopback SMTP server and an app that mails to it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.auth.smtp import Mailbox, smtp_server

__all__ = ["smtp_server"]

# Variables of this package's settings that a developer's shell could leak into tests.
AUTH_ENVIRONMENT = (
    "MAIL_SERVER",
    "MAIL_PORT",
    "MAIL_USE_TLS",
    "MAIL_USE_SSL",
    "MAIL_USERNAME",
    "MAIL_PASSWORD",
    "MAIL_SENDER",
    "MAIL_TIMEOUT",
    "PREFERRED_URL_SCHEME",
    "SESSION_COOKIE_SECURE",
)


@pytest.fixture(autouse=True)
def _clean_auth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in AUTH_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def mail_app_config(smtp_server: Mailbox) -> dict[str, Any]:
    """``create_app`` overrides that send mail to the test SMTP server."""
    return smtp_server.mail_config()
