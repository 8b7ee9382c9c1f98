"""Logging in with an e-mail link, through a real SMTP server on the loopback interface."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from auth.email_login import LINKS_PER_ADDRESS_PER_HOUR, hash_token, send_login_link
from auth.models import Identity, LoginLink, User
from moderation.db import utcnow
from moderation.models import Comment
from tests.auth.smtp import Mailbox, link_path, log_in_by_mail, request_link
from tests.conftest import Factory

CSRF_INPUT = re.compile(
    r'name="csrf_token" type="hidden" value="([^"]+)"|'
    r'name="csrf_token" value="([^"]+)"'
)


@pytest.fixture
def app_config(mail_app_config: dict[str, Any], request: pytest.FixtureRequest) -> dict[str, Any]:
    """Mail to the test server, plus whatever a test passes with ``indirect=True``."""
    return {**mail_app_config, **getattr(request, "param", {})}


def is_logged_in(client: FlaskClient) -> bool:
    return client.get("/account/").status_code == 200


def csrf_token(page: str) -> str:
    match = CSRF_INPUT.search(page)
    assert match is not None, "the page has no CSRF token"
    return match.group(1) or match.group(2)


def test_login_page_shows_the_comment_box_login(client: FlaskClient) -> None:
    response = client.get("/auth/login?next=/articles/vote")
    assert response.status_code == 200
    assert "Fill in your details below or click an icon to log in:" in response.text
    assert 'name="email"' in response.text
    assert 'value="/articles/vote"' in response.text


@pytest.mark.parametrize(
    "app_config",
    [{"OAUTH_X_CLIENT_ID": "x-id", "OAUTH_X_CLIENT_SECRET": "x-secret"}],
    indirect=True,
)
def test_login_page_shows_buttons_of_configured_providers(client: FlaskClient) -> None:
    page = client.get("/auth/login?next=/articles/vote&popup=1").text
    assert 'href="/auth/x/login?next=/articles/vote&amp;popup=1"' in page
    assert "Log in with X" in page
    assert "Facebook" not in page


def test_magic_link_logs_in_once(
    client: FlaskClient, smtp_server: Mailbox, db_session: Any
) -> None:
    response = request_link(client, "Reader.One@Example.org", next="/articles/vote?page=2")
    assert response.status_code == 200
    assert "Check your e-mail" in response.text

    message = smtp_server.last_to("reader.one@example.org")
    assert message["From"] == "comments@news.example"
    assert message.is_multipart()
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    link = smtp_server.link_to("reader.one@example.org")
    assert link.startswith("http://localhost/auth/email/")
    assert link in html.get_content()
    # Only the token's hash is stored.
    token = link.rsplit("/", 1)[1]
    stored = db_session.scalar(sa.select(LoginLink))
    assert stored.token_hash == hash_token(token) and token not in stored.token_hash

    path = link_path(link)
    confirm = client.get(path)
    assert confirm.status_code == 200 and "Log me in" in confirm.text
    assert not is_logged_in(client)

    response = client.post(path)
    assert response.status_code == 302
    assert response.headers["Location"] == "/articles/vote?page=2"
    assert is_logged_in(client)

    user = db_session.scalar(sa.select(User).where(User.email == "reader.one@example.org"))
    assert user.display_name == "reader.one" and user.email_verified
    identity = db_session.scalar(sa.select(Identity).where(Identity.user_id == user.id))
    assert (identity.provider, identity.subject) == ("email", "reader.one@example.org")
    assert identity.email_verified and identity.last_login_at is not None

    replay = app_client(client).post(path)
    assert replay.status_code == 400
    assert "expired or was already used; ask for a new one" in replay.text
    assert app_client(client).get(path).status_code == 400


def app_client(client: FlaskClient) -> FlaskClient:
    """A second browser on the same app."""
    return client.application.test_client()


def test_confirm_page_does_not_use_the_link(
    client: FlaskClient, smtp_server: Mailbox, db_session: Any
) -> None:
    request_link(client, "scanner@example.org")
    path = link_path(smtp_server.link_to("scanner@example.org"))
    for _ in range(3):  # a mail scanner prefetching, then the person
        assert client.get(path).status_code == 200
    assert db_session.scalar(sa.select(LoginLink.used_at)) is None
    assert client.post(path).status_code == 302


def test_expired_link_fails(client: FlaskClient, smtp_server: Mailbox, db_session: Any) -> None:
    request_link(client, "late@example.org")
    path = link_path(smtp_server.link_to("late@example.org"))
    link = db_session.scalar(sa.select(LoginLink))
    link.expires_at = utcnow() - timedelta(seconds=1)
    db_session.commit()
    assert client.get(path).status_code == 400
    response = client.post(path)
    assert response.status_code == 400
    assert "expired or was already used" in response.text
    assert not is_logged_in(client)


def test_tampered_token_fails(client: FlaskClient, smtp_server: Mailbox) -> None:
    request_link(client, "tamper@example.org")
    path = link_path(smtp_server.link_to("tamper@example.org"))
    last = path[-1]
    tampered = path[:-1] + ("A" if last != "A" else "B")
    assert client.post(tampered).status_code == 400
    assert client.post(path + "x").status_code == 400
    assert not is_logged_in(client)
    assert client.post(path).status_code == 302  # the real one still works


def test_same_answer_for_known_and_unknown_addresses(
    client: FlaskClient, smtp_server: Mailbox, factory: Factory
) -> None:
    factory.user(email="known@example.org")
    known = request_link(client, "known@example.org")
    unknown = request_link(client, "nobody@example.org")
    assert known.status_code == unknown.status_code == 200
    assert known.data == unknown.data
    assert [m["To"] for m in smtp_server.messages] == ["known@example.org", "nobody@example.org"]


def test_existing_user_logs_in_to_their_account(
    client: FlaskClient, smtp_server: Mailbox, factory: Factory, db_session: Any
) -> None:
    user = factory.user(email="Known@Example.org", display_name="Known Reader")
    log_in_by_mail(client, smtp_server, "known@example.org")
    assert is_logged_in(client)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(User)) == 1
    identity = db_session.scalar(sa.select(Identity))
    assert identity.user_id == user.id


def test_per_address_rate_limit(client: FlaskClient, smtp_server: Mailbox) -> None:
    for _ in range(LINKS_PER_ADDRESS_PER_HOUR):
        assert request_link(client, "busy@example.org").status_code == 200
    response = request_link(client, "BUSY@example.org")
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 3600
    assert len(smtp_server.messages) == LINKS_PER_ADDRESS_PER_HOUR
    assert request_link(client, "other@example.org").status_code == 200


@pytest.mark.parametrize("app_config", [{"RATELIMIT_ENABLED": True}], indirect=True)
def test_per_ip_rate_limit(client: FlaskClient, smtp_server: Mailbox) -> None:
    for n in range(10):
        assert request_link(client, f"reader{n}@example.org").status_code == 200
    response = request_link(client, "reader10@example.org")
    assert response.status_code == 429
    assert "Retry-After" in response.headers


@pytest.mark.parametrize(
    "next_url",
    [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/%0a/evil",
        "/\t/evil.example",
    ],
)
def test_next_never_leaves_the_site(
    client: FlaskClient, smtp_server: Mailbox, next_url: str
) -> None:
    response = log_in_by_mail(client, smtp_server, "careful@example.org", next=next_url)
    assert response.status_code == 302
    assert response.headers["Location"] in ("/", "/%0a/evil")


def test_invalid_address_is_refused(client: FlaskClient, smtp_server: Mailbox) -> None:
    response = request_link(client, "not an address")
    assert response.status_code == 400
    assert "Enter an e-mail address" in response.text
    assert smtp_server.messages == []


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}], indirect=True)
def test_login_with_csrf_tokens_read_from_the_pages(
    client: FlaskClient, smtp_server: Mailbox
) -> None:
    assert request_link(client, "csrf@example.org").status_code == 400  # no token
    assert smtp_server.messages == []

    token = csrf_token(client.get("/auth/login").text)
    response = request_link(client, "csrf@example.org", csrf_token=token)
    assert response.status_code == 200
    path = link_path(smtp_server.link_to("csrf@example.org"))

    confirm = client.get(path)
    assert client.post(path).status_code == 400  # no token: the link is not used
    response = client.post(path, data={"csrf_token": csrf_token(confirm.text)})
    assert response.status_code == 302
    assert is_logged_in(client)


def test_popup_login_ends_on_the_hand_off_page(client: FlaskClient, smtp_server: Mailbox) -> None:
    page = client.get("/auth/login?popup=1").text
    assert 'name="popup" type="hidden" value="1"' in page
    response = log_in_by_mail(client, smtp_server, "popup@example.org", popup="1")
    assert response.headers["Location"] == "/auth/popup-done"

    done = client.get("/auth/popup-done")
    assert done.status_code == 200
    assert 'data-target-origin="http://localhost"' in done.text
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", done.text, re.S)
    assert scripts == [""]  # one script, loaded from a file: nothing inline
    src = re.search(r'<script src="([^"]+)"', done.text)
    assert src is not None and src.group(1) == "/static/js/popup_done.js"
    script = client.get(src.group(1))
    assert script.status_code == 200
    source = script.text
    script.close()
    assert "postMessage" in source and "moderation:login" in source
    assert '"*"' in source  # only in the refusal ...
    assert 'postMessage({ type: "moderation:login" }, origin)' in source  # ... never as target


@pytest.mark.parametrize("app_config", [{"MAIL_SERVER": None}], indirect=True)
def test_development_writes_the_mail_to_the_log(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert request_link(client, "dev@example.org").status_code == 200
    assert "http://localhost/auth/email/" in caplog.text


@pytest.mark.parametrize(
    "app_config", [{"MAIL_SERVER": None, "APP_ENV": "production"}], indirect=True
)
def test_production_never_logs_the_link(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        request_link(client, "prod@example.org")
    assert "dropped" in caplog.text
    assert "/auth/email/" not in caplog.text


def test_verify_link_sets_the_users_address(
    app: Flask, client: FlaskClient, smtp_server: Mailbox, factory: Factory, db_session: Any
) -> None:
    user = factory.user(email=None, display_name="X Person")
    with app.test_request_context():
        send_login_link("X.Person@Example.org", purpose="verify", user=user)
    message = smtp_server.last_to("x.person@example.org")
    assert message["Subject"] == "Confirm your e-mail address"
    path = link_path(smtp_server.link_to("x.person@example.org"))
    assert "Confirm my address" in client.get(path).text
    assert client.post(path).status_code == 302

    db_session.refresh(user)
    assert user.email == "x.person@example.org" and user.email_verified
    identity = db_session.scalar(sa.select(Identity).where(Identity.user_id == user.id))
    assert identity.provider == "email" and identity.subject == "x.person@example.org"
    assert is_logged_in(client)


def test_verify_link_for_an_address_of_another_account_joins_the_accounts(
    app: Flask, client: FlaskClient, smtp_server: Mailbox, factory: Factory, db_session: Any
) -> None:
    owner = factory.user(email="taken@example.org")
    newcomer = factory.user(email=None)
    x_identity = Identity(user=newcomer, provider="x", subject="x-42", email=None)
    db_session.add(x_identity)
    db_session.commit()
    comment = factory.comment(author=newcomer)
    newcomer_id = newcomer.id
    with app.test_request_context():
        send_login_link("taken@example.org", purpose="verify", user=newcomer)
    response = client.post(link_path(smtp_server.link_to("taken@example.org")))
    assert response.status_code == 302
    db_session.expire_all()
    assert db_session.get(User, newcomer_id) is None
    assert db_session.get(Identity, x_identity.id).user_id == owner.id
    assert db_session.get(Comment, comment.id).author_id == owner.id
    assert is_logged_in(client)
