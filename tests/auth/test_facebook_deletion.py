"""Facebook's data deletion callback: signed requests, deletion, the status URL."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
import sqlalchemy as sa

from auth.models import Identity, User
from moderation.models import Comment

APP_SECRET = "fb-secret"


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Facebook configured, and CSRF on: Facebook's POST carries no CSRF token."""
    return {
        "OAUTH_FACEBOOK_CLIENT_ID": "fb-client",
        "OAUTH_FACEBOOK_CLIENT_SECRET": APP_SECRET,
        "WTF_CSRF_ENABLED": True,
    }


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_request(payload: dict[str, Any], secret: str = APP_SECRET) -> str:
    """A signed_request as Facebook builds it."""
    body = b64url(json.dumps(payload).encode())
    signature = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return f"{b64url(signature)}.{body}"


def facebook_user(factory, db_session, subject: str, *, with_email_identity: bool = False):
    user = factory.user()
    db_session.add(Identity(user=user, provider="facebook", subject=subject))
    if with_email_identity:
        db_session.add(Identity(user=user, provider="email", subject=user.email))
    db_session.commit()
    return user


def test_signed_request_deletes_the_only_identity_and_the_user(client, db_session, factory) -> None:
    user = facebook_user(factory, db_session, "555")
    comment = factory.comment(author_id=user.id, author_name=user.display_name)
    request = signed_request({"algorithm": "HMAC-SHA256", "user_id": "555", "issued_at": 1})
    response = client.post("/auth/facebook/data-deletion", data={"signed_request": request})
    assert response.status_code == 200
    body = response.get_json()
    assert body["confirmation_code"]
    assert body["url"].startswith("http://localhost/auth/facebook/data-deletion/")
    db_session.expire_all()
    assert db_session.get(User, user.id) is None
    kept = db_session.get(Comment, comment.id)
    assert (kept.author_id, kept.author_name) == (None, "deleted user")
    status = client.get(body["url"].removeprefix("http://localhost"))
    assert status.status_code == 200
    assert status.get_json()["status"] == "deleted"


def test_other_identities_keep_the_user(client, db_session, factory) -> None:
    user = facebook_user(factory, db_session, "556", with_email_identity=True)
    request = signed_request({"algorithm": "HMAC-SHA256", "user_id": "556"})
    response = client.post("/auth/facebook/data-deletion", data={"signed_request": request})
    assert response.status_code == 200
    db_session.expire_all()
    assert db_session.get(User, user.id) is not None
    providers = db_session.scalars(sa.select(Identity.provider)).all()
    assert providers == ["email"]


@pytest.mark.parametrize(
    "request_value",
    [
        signed_request({"algorithm": "HMAC-SHA256", "user_id": "555"}, secret="wrong"),
        signed_request({"algorithm": "none", "user_id": "555"}),
        "not-a-signed-request",
        "",
    ],
)
def test_bad_signed_requests_are_refused(client, db_session, factory, request_value) -> None:
    user = facebook_user(factory, db_session, "555")
    response = client.post("/auth/facebook/data-deletion", data={"signed_request": request_value})
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid signed_request"}
    db_session.expire_all()
    assert db_session.get(User, user.id) is not None


def test_unknown_status_code_is_404(client) -> None:
    assert client.get("/auth/facebook/data-deletion/forged").status_code == 404
