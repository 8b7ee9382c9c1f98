"""Sign in with X and Facebook against a real local OAuth 2.0 provider."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import sqlalchemy as sa
from flask.testing import FlaskClient

from auth.models import Identity, User
from moderation.extensions import db
from tests.auth.oauth_provider import (
    LocalProvider,
    Person,
)


@pytest.fixture
def app_config(provider: LocalProvider) -> dict[str, Any]:
    """Our app pointed at the local provider for both X and Facebook."""
    return provider.app_settings()


def start(client: FlaskClient, provider_name: str, query: str = "") -> str:
    """Our /login, then the provider's /authorize; returns the callback path with its query."""
    response = client.get(f"/auth/{provider_name}/login{query}")
    assert response.status_code == 302
    hop = requests.get(response.headers["Location"], allow_redirects=False, timeout=10)
    assert hop.status_code == 302, hop.text
    callback = urlsplit(hop.headers["Location"])
    assert callback.path == f"/auth/{provider_name}/callback"
    return f"{callback.path}?{callback.query}"


def sign_in(client: FlaskClient, provider_name: str, query: str = "") -> Any:
    """The whole flow; returns our callback's response."""
    return client.get(start(client, provider_name, query))


def logged_in_user_id(client: FlaskClient) -> int | None:
    with client.session_transaction() as session:
        value = session.get("_user_id")
    return int(value.partition(":")[0]) if value else None


def test_new_x_user_is_created_and_logged_in(client, db_session, provider) -> None:
    provider.person = Person(id="42", name="Ada", email="ada@example.org")
    response = sign_in(client, "x", "?next=/articles/1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/articles/1"
    identity = db_session.scalar(sa.select(Identity).where(Identity.provider == "x"))
    assert identity.subject == "42"
    assert identity.profile["data"]["data"]["name"] == "Ada"
    user = identity.user
    assert user.display_name == "Ada"
    assert user.avatar_url == "https://img.example/avatar.png"
    assert user.email == "ada@example.org" and user.email_verified
    assert logged_in_user_id(client) == user.id


def test_returning_user_gets_the_same_account(app, client, provider) -> None:
    # No db_session here: its long app context would keep the first login's current_user.
    provider.person = Person(id="7", name="Bo", email="bo@example.org")
    sign_in(client, "facebook")
    with client.session_transaction() as session:
        session.clear()
    provider.person = Person(id="7", name="Bo Renamed", email="bo@example.org")
    response = sign_in(client, "facebook")
    assert response.status_code == 302
    with app.app_context():
        identities = db.session.scalars(sa.select(Identity)).all()
        assert len(identities) == 1
        assert identities[0].display_name == "Bo Renamed"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1
        assert logged_in_user_id(client) == identities[0].user_id


def test_signing_in_while_logged_in_links_a_second_identity(client, db_session, provider) -> None:
    provider.person = Person(id="x-1", name="Cy", email="cy@example.org")
    sign_in(client, "x")
    user_id = logged_in_user_id(client)
    provider.person = Person(id="fb-1", name="Cy on Facebook", email="cy@example.org")
    response = sign_in(client, "facebook")
    assert response.status_code == 302
    identities = db_session.scalars(sa.select(Identity).order_by(Identity.provider)).all()
    assert [(i.provider, i.user_id) for i in identities] == [
        ("facebook", user_id),
        ("x", user_id),
    ]
    assert logged_in_user_id(client) == user_id


def test_missing_email_asks_for_one_and_sends_a_verify_link(
    client, db_session, provider, monkeypatch
) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    import auth.email_login

    monkeypatch.setattr(
        auth.email_login, "send_login_link", lambda email, **kw: sent.append((email, kw))
    )
    provider.person = Person(id="99", name="No Mail")
    response = sign_in(client, "x", "?next=/articles/2")
    assert response.headers["Location"] == "/auth/oauth/email"
    assert b"Add your e-mail address" in client.get("/auth/oauth/email").data
    response = client.post("/auth/oauth/email", data={"email": "Someone@Example.org"})
    assert response.status_code == 200
    user = db_session.scalar(sa.select(User))
    assert user.email is None  # verified only once the link is clicked
    assert sent == [
        ("someone@example.org", {"purpose": "verify", "user": user, "next_url": "/articles/2"})
    ]


def test_an_address_of_another_account_is_not_merged(client, db_session, factory, provider) -> None:
    existing = factory.user(email="dee@example.org")
    provider.person = Person(id="5", name="Dee", email="dee@example.org")
    response = sign_in(client, "x")
    assert response.headers["Location"] == "/auth/oauth/email"
    identity = db_session.scalar(sa.select(Identity))
    assert identity.user_id != existing.id
    assert identity.user.email is None
    assert b"Link your accounts" in client.get("/auth/oauth/email").data


def test_popup_and_next_only_follow_relative_urls(client, provider) -> None:
    provider.person = Person(id="8", name="Eve", email="eve@example.org")
    response = sign_in(client, "x", "?next=https://evil.example/")
    assert response.headers["Location"] == "/"


def test_state_mismatch_is_a_400_page(client, provider) -> None:
    path = start(client, "x")
    forged = path.replace("state=", "state=forged")
    response = client.get(forged)
    assert response.status_code == 400
    assert b"did not complete" in response.data


def test_pkce_verifier_mismatch_is_a_400_page(client, provider) -> None:
    path = start(client, "x")
    with client.session_transaction() as session:
        for key, value in session.items():
            if key.startswith("_state_x_"):
                value["data"]["code_verifier"] = "a" * 48
                session[key] = value
    response = client.get(path)
    assert response.status_code == 400
    assert provider.tokens == {}


def test_denied_consent_is_a_400_page(client, provider) -> None:
    provider.person = None
    response = sign_in(client, "facebook")
    assert response.status_code == 400
    assert b"cancelled" in response.data


def test_token_endpoint_error_is_a_400_page(client, provider) -> None:
    provider.token_error = "temporarily_unavailable"
    response = sign_in(client, "x")
    assert response.status_code == 400


def test_expired_code_is_a_400_page(client, provider) -> None:
    provider.code_lifetime = -1
    response = sign_in(client, "x")
    assert response.status_code == 400
    assert provider.profile_reads == 0


def test_only_configured_providers_are_offered(app, provider) -> None:
    app.config["OAUTH_FACEBOOK_CLIENT_SECRET"] = None
    with app.test_request_context():
        from flask import render_template_string

        names = render_template_string("{{ login_providers|map(attribute='name')|join(',') }}")
    assert names == "x"
    assert app.test_client().get("/auth/facebook/login").status_code == 404


def test_facebook_graph_calls_carry_the_appsecret_proof(client, db_session, provider) -> None:
    provider.person = Person(id="fb-9", name="Fay")
    response = sign_in(client, "facebook")
    assert response.status_code == 302  # the provider rejects a missing or wrong proof
    assert provider.profile_reads == 1
