"""Sessions after an e-mail login: cookie flags, logging out, logging out everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from moderation.config import build_config
from tests.auth.smtp import Mailbox, log_in_by_mail
from tests.conftest import TEST_SECRET_KEY


@pytest.fixture
def app_config(mail_app_config: dict[str, Any], request: pytest.FixtureRequest) -> dict[str, Any]:
    """Mail to the test server, plus whatever a test passes with ``indirect=True``."""
    return {**mail_app_config, **getattr(request, "param", {})}


def is_logged_in(client: FlaskClient) -> bool:
    return client.get("/account/").status_code == 200


def session_cookie_header(response: Any) -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]
    assert len(headers) == 1, response.headers
    return headers[0]


def session_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def test_development_cookie_is_lax(client: FlaskClient, smtp_server: Mailbox) -> None:
    header = session_cookie_header(log_in_by_mail(client, smtp_server, "dev@example.org"))
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header
    assert "Secure" not in header and "Partitioned" not in header


@pytest.mark.parametrize("app_config", [{"PREFERRED_URL_SCHEME": "https"}], indirect=True)
def test_https_cookie_is_secure_and_stays_first_party(
    client: FlaskClient, smtp_server: Mailbox
) -> None:
    response = log_in_by_mail(client, smtp_server, "https@example.org")
    header = session_cookie_header(response)
    for flag in ("Secure", "HttpOnly", "SameSite=Lax"):
        assert flag in header
    # The comment iframe has its own (partitioned) embed cookie; the login cookie stays Lax.
    assert "SameSite=None" not in header and "Partitioned" not in header


@pytest.mark.parametrize(
    ("environ", "secure"),
    [
        ({}, False),
        ({"SESSION_COOKIE_SECURE": "true"}, True),
        ({"PREFERRED_URL_SCHEME": "https"}, True),
        ({"APP_ENV": "production"}, True),
    ],
)
def test_cookie_settings_follow_the_environment(
    tmp_path: Path, environ: dict[str, str], secure: bool
) -> None:
    config = build_config(tmp_path, environ, {"SECRET_KEY": TEST_SECRET_KEY})
    assert config["SESSION_COOKIE_HTTPONLY"] is True
    assert config["SESSION_COOKIE_SECURE"] is secure
    assert config["SESSION_COOKIE_PARTITIONED"] is False
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert config["REMEMBER_COOKIE_HTTPONLY"] is True
    assert config["REMEMBER_COOKIE_SECURE"] is secure
    assert config["REMEMBER_COOKIE_SAMESITE"] == "Lax"


def test_logout_ends_the_session(client: FlaskClient, smtp_server: Mailbox) -> None:
    log_in_by_mail(client, smtp_server, "leaving@example.org")
    assert is_logged_in(client)
    response = client.post("/auth/logout", data={"next": "//evil.example"})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert not is_logged_in(client)


def test_logout_everywhere_voids_old_cookies(client: FlaskClient, smtp_server: Mailbox) -> None:
    log_in_by_mail(client, smtp_server, "everywhere@example.org")
    old_cookie = session_cookie(client)
    other_device = client.application.test_client()
    log_in_by_mail(other_device, smtp_server, "everywhere@example.org")
    assert is_logged_in(other_device)

    assert client.post("/auth/logout-everywhere").status_code == 302
    assert not is_logged_in(client)
    assert not is_logged_in(other_device)
    stolen = client.application.test_client()
    stolen.set_cookie("session", old_cookie)
    assert not is_logged_in(stolen)

    # A new login works again.
    log_in_by_mail(client, smtp_server, "everywhere@example.org")
    assert is_logged_in(client)


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}], indirect=True)
def test_logout_needs_a_csrf_token(client: FlaskClient) -> None:
    assert client.post("/auth/logout").status_code == 400
    assert client.post("/auth/logout-everywhere").status_code == 400
