"""Sessions under attack: fixation, replaying a cookie after logout, and the cookies' flags.

Flask sessions are signed cookies the server keeps no copy of: a login must hand out a new
cookie with nothing of the old one in it, and a logout must make every copy of the old cookie
worthless (the user's ``session_version`` goes up; ``load_user`` refuses older ones).
"""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import inspect
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_login import login_user

import auth.sessions
from auth.models import User
from moderation import PROJECT_ROOT, embed
from moderation.extensions import db
from moderation.models import Site
from tests.auth.smtp import Mailbox, log_in_by_mail, smtp_server
from tests.conftest import TEST_SECRET_KEY, TestDatabase, dispose, make_test_app

__all__ = ["smtp_server"]  # the loopback SMTP server fixture, for the e-mail login

SSO_SECRET = "gazette-sso-secret-" + "g" * 32


@pytest.fixture
def app_config(smtp_server: Mailbox) -> dict[str, Any]:
    """Mail to the loopback SMTP server (the e-mail login sends real mail)."""
    return smtp_server.mail_config()


@pytest.fixture
def site_key(app: Flask) -> str:
    """A site with single sign-on (its own app context: requests must not share one)."""
    with app.app_context():
        site = Site(name="Gazette", origins=["https://gazette.example"], sso_secret=SSO_SECRET)
        db.session.add(site)
        db.session.commit()
        return site.key


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sso_token(site_key: str, subject: str) -> str:
    """The newspaper's signed HS256 token for reader ``subject``."""
    now = int(time.time())
    claims = {"sub": subject, "aud": site_key, "name": f"Reader {subject}", "iat": now}
    claims["exp"] = now + 300
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
    mac = hmac.new(SSO_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def sso_login(client: FlaskClient, site_key: str, subject: str) -> Any:
    response = client.post(
        "/auth/sso", json={"site": site_key, "token": sso_token(site_key, subject)}
    )
    assert response.status_code == 200, response.json
    return response


def signed_in(app: Flask, cookie: str) -> bool:
    """Whether a browser holding only ``cookie`` is signed in."""
    browser = app.test_client()
    browser.set_cookie("session", cookie)
    return browser.get("/account/").status_code == 200


def cookie_of(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def plant(client: FlaskClient) -> str:
    """What an attacker leaves in a victim's browser before the login: values and a cookie."""
    with client.session_transaction() as session:
        session["planted"] = "attacker"
        session["next"] = "https://evil.example/"
    return cookie_of(client)


def session_keys(client: FlaskClient) -> set[str]:
    with client.session_transaction() as session:
        return set(session.keys())


def test_an_email_login_starts_a_new_session(
    app: Flask, client: FlaskClient, smtp_server: Mailbox
) -> None:
    before = plant(client)
    assert not signed_in(app, before)
    log_in_by_mail(client, smtp_server, "victim@example.org")
    after = cookie_of(client)
    assert after != before
    assert {"planted", "next"}.isdisjoint(session_keys(client))
    assert signed_in(app, after)
    assert not signed_in(app, before)  # the cookie the attacker kept is still nobody's


def test_a_single_sign_on_login_starts_a_new_session(
    app: Flask, client: FlaskClient, site_key: str
) -> None:
    # An attacker's own signed-in session, planted in the victim's browser.
    sso_login(client, site_key, "attacker")
    with client.session_transaction() as session:
        session["planted"] = "attacker"
    attackers = cookie_of(client)
    sso_login(client, site_key, "victim")
    victims = cookie_of(client)
    assert victims != attackers and "planted" not in session_keys(client)
    browser = app.test_client()
    browser.set_cookie("session", attackers)
    assert (
        client.get("/api/v1/me", headers={"X-Requested-With": "fetch"}).json["user"]["name"]
        == "Reader victim"
    )
    assert (
        browser.get("/api/v1/me", headers={"X-Requested-With": "fetch"}).json["user"]["name"]
        == "Reader attacker"
    )  # each cookie is its own login; neither became the other


def calls_to(name: str, tree: ast.AST) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) == name
    ]


def test_every_login_path_goes_through_log_in() -> None:
    """E-mail, OAuth callback, SSO and the widget's popup all sign in with ``log_in``."""
    outside = []
    for path in [
        *Path(PROJECT_ROOT, "auth").glob("*.py"),
        *Path(PROJECT_ROOT, "moderation").rglob("*.py"),
    ]:
        tree = ast.parse(path.read_text())
        if calls_to("login_user", tree) and path.name != "sessions.py":
            outside.append(str(path.relative_to(PROJECT_ROOT)))
    assert not outside, f"login_user outside auth/sessions.log_in: {outside}"
    callers = {
        path.name
        for path in Path(PROJECT_ROOT, "auth").glob("*.py")
        if calls_to("log_in", ast.parse(path.read_text()))
    }
    assert {"email_login.py", "oauth.py", "sso.py"} <= callers
    source = inspect.getsource(auth.sessions.log_in)
    assert source.index("session.clear()") < source.index("login_user(")


def test_logout_voids_every_copy_of_the_cookie(
    app: Flask, client: FlaskClient, site_key: str
) -> None:
    sso_login(client, site_key, "leaving")
    stolen = cookie_of(client)
    with app.app_context():
        user = db.session.query(User).filter_by(display_name="Reader leaving").one()
        widget_token = embed.embed_token_for(user)
    assert signed_in(app, stolen)
    # GET cannot log anyone out (an <img> on another site would); only the POST form can.
    assert client.get("/auth/logout").status_code == 405
    assert signed_in(app, stolen)
    assert client.post("/auth/logout").status_code == 302
    assert client.get_cookie("session") is None  # this browser's cookie is dropped
    assert not signed_in(app, stolen)  # a copy taken before the logout died with it
    me = client.get("/embed/me", headers={"X-Embed-Token": widget_token}).json
    assert me["user"] is None  # so did the widget's login token

    # Logging in again works; "log out everywhere" ends that session and its copies too.
    sso_login(client, site_key, "leaving")
    copy = cookie_of(client)
    assert client.post("/auth/logout-everywhere").status_code == 302
    assert not signed_in(app, copy)


@pytest.fixture
def second_app(database: TestDatabase, tmp_path: Path, app: Flask) -> Iterator[Any]:
    """Build more apps on the run's database (after ``app`` emptied it); disposed after."""
    made: list[Flask] = []

    def build(overrides: dict[str, Any]) -> Flask:
        made.append(make_test_app(database, tmp_path / f"instance-{len(made)}", overrides))
        return made[-1]

    yield build
    for other in made:
        dispose(other)


def cookie_header(response: Any, name: str) -> str:
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    assert len(headers) == 1, response.headers
    return headers[0]


def flags(header: str) -> set[str]:
    """The attributes of a Set-Cookie header, lower-cased, without their dates and paths."""
    return {
        part.strip().lower()
        for part in header.split(";")[1:]
        if "=" not in part or "samesite" in part.lower()
    }


def remember_cookie(app: Flask) -> str:
    """The remember-me cookie Flask-Login would set for a user (no login path asks for one yet)."""
    with app.test_request_context("/"):
        login_user(User(id=10**9, display_name="Remembered", session_version=1), remember=True)
        response = app.process_response(app.make_response("ok"))
    return cookie_header(response, "remember_token")


def test_cookie_flags_in_development_and_production(
    app: Flask,
    client: FlaskClient,
    site_key: str,
    second_app: Any,
    clean_env: pytest.MonkeyPatch,
) -> None:
    development = flags(cookie_header(sso_login(client, site_key, "dev"), "session"))
    assert development == {"httponly", "samesite=lax"}
    assert flags(remember_cookie(app)) == {"httponly", "samesite=lax"}

    production = second_app({"APP_ENV": "production", "SECRET_KEY": TEST_SECRET_KEY})
    clean_env.setenv("SESSION_COOKIE_SECURE", "true")
    configured = second_app({})
    for secure_app in (production, configured):
        response = sso_login(secure_app.test_client(), site_key, "prod")
        assert flags(cookie_header(response, "session")) == {"httponly", "secure", "samesite=lax"}
        assert flags(remember_cookie(secure_app)) == {"httponly", "secure", "samesite=lax"}

    # The widget's own login cookie lives in the newspaper's partition, hence SameSite=None.
    with app.app_context():
        token = embed.embed_token_for(db.session.query(User).first())
    stored = client.post(
        "/embed/session",
        headers={"X-Requested-With": "fetch", "X-Embed-Token": token},
        base_url="https://svc.example",
    )
    widget = flags(cookie_header(stored, "embed_token"))
    assert widget == {"httponly", "secure", "samesite=none", "partitioned"}
