"""The account page: profile, identities, notification choices, my data, deletion."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from auth.models import Identity, User
from moderation.extensions import db
from moderation.models import Comment, Thread
from moderation.status import Status
from tests.auth.smtp import Mailbox, log_in_by_mail
from tests.conftest import Factory


def log_in(client: FlaskClient, user: User) -> None:
    """A logged-in session for ``user`` without the mail round trip (tested elsewhere)."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True


def add_identity(
    db_session: Any, user: User, provider: str, subject: str, **fields: Any
) -> Identity:
    identity = Identity(user=user, provider=provider, subject=subject, **fields)
    db_session.add(identity)
    db_session.commit()
    return identity


@pytest.fixture
def user(factory: Factory, db_session: Any) -> User:
    user = factory.user(email="anna@example.org", display_name="Anna Berg")
    add_identity(db_session, user, "email", "anna@example.org", email="anna@example.org")
    return user


def test_account_needs_login(client: FlaskClient) -> None:
    response = client.get("/account/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/login?next=/account/"
    assert client.get("/account/data.json").status_code == 302
    assert client.post("/account/delete").status_code == 302


def test_account_page_shows_profile_and_identities(
    client: FlaskClient, user: User, db_session: Any
) -> None:
    add_identity(db_session, user, "x", "12345", display_name="@anna")
    log_in(client, user)
    page = client.get("/account/").text
    assert "Anna Berg" in page
    assert ">AB<" in page  # initials, as there is no avatar
    assert "anna@example.org" in page and "@anna" in page
    assert "Download my data" in page


def test_avatar_url_is_shown(client: FlaskClient, user: User, db_session: Any) -> None:
    user.avatar_url = "https://pbs.example/anna.jpg"
    db_session.commit()
    log_in(client, user)
    assert 'src="https://pbs.example/anna.jpg"' in client.get("/account/").text


def test_display_name_is_edited_and_escaped(
    client: FlaskClient, user: User, db_session: Any
) -> None:
    log_in(client, user)
    response = client.post("/account/profile", data={"profile-display_name": " <b>Anna</b> "})
    assert response.status_code == 302
    db_session.refresh(user)
    assert user.display_name == "<b>Anna</b>"
    page = client.get("/account/").text
    assert "&lt;b&gt;Anna&lt;/b&gt;" in page and "<b>Anna</b>" not in page


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_display_name_must_be_1_to_100_characters(
    client: FlaskClient, user: User, db_session: Any, name: str
) -> None:
    log_in(client, user)
    response = client.post("/account/profile", data={"profile-display_name": name})
    assert response.status_code == 400
    db_session.refresh(user)
    assert user.display_name == "Anna Berg"


def test_notification_preferences_are_saved(
    client: FlaskClient, user: User, db_session: Any
) -> None:
    log_in(client, user)
    page = client.get("/account/").text
    # Until the reader chooses: decisions on their held comments yes, reply mails no (opt-in).
    checked = r'id="prefs-{0}"[^>]*checked|checked[^>]*id="prefs-{0}"'
    assert re.search(checked.format("notify_decisions"), page)
    assert not re.search(checked.format("notify_replies"), page)
    response = client.post("/account/preferences", data={"prefs-notify_replies": "y"})
    assert response.status_code == 302
    db_session.refresh(user)
    assert user.preferences == {"notify_replies": True, "notify_decisions": False}


def test_identity_is_unlinked_while_another_remains(
    client: FlaskClient, user: User, db_session: Any, factory: Factory
) -> None:
    x = add_identity(db_session, user, "x", "12345")
    email_identity = user.identities[0]
    stranger = factory.user()
    theirs = add_identity(db_session, stranger, "facebook", "999")
    log_in(client, user)

    assert client.post(f"/account/identities/{theirs.id}/unlink").status_code == 404
    assert client.post(f"/account/identities/{x.id}/unlink").status_code == 302
    response = client.post(f"/account/identities/{email_identity.id}/unlink")
    assert response.status_code == 409
    assert "Keep at least one way to log in." in response.text
    db_session.expire_all()
    assert [i.provider for i in db_session.get(User, user.id).identities] == ["email"]


def test_data_download(client: FlaskClient, user: User, db_session: Any, factory: Factory) -> None:
    add_identity(
        db_session, user, "x", "12345", profile={"username": "anna", "access_token": "secret!"}
    )
    factory.comment(author_id=user.id, author_name="Anna Berg", body="First!")
    factory.comment(author_id=user.id, body="Held one.", status=Status.PENDING)
    factory.comment(body="Someone else.")
    log_in(client, user)

    response = client.get("/account/data.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    data = json.loads(response.data)
    assert data["user"]["email"] == "anna@example.org"
    assert data["user"]["display_name"] == "Anna Berg"
    assert [i["provider"] for i in data["identities"]] == ["email", "x"]
    assert data["identities"][1]["profile"] == {"username": "anna"}
    assert "secret!" not in response.text
    assert [(c["body"], c["status"]) for c in data["comments"]] == [
        ("First!", "published"),
        ("Held one.", "pending"),
    ]
    assert all(c["created_at"] for c in data["comments"])


def test_delete_needs_the_box_ticked(client: FlaskClient, user: User, db_session: Any) -> None:
    log_in(client, user)
    response = client.post("/account/delete")
    assert response.status_code == 400
    assert "Tick the box to confirm." in response.text
    assert db_session.get(User, user.id) is not None


def test_delete_keeps_comments_as_deleted_user(
    client: FlaskClient, user: User, db_session: Any, factory: Factory
) -> None:
    comment = factory.comment(author_id=user.id, author_name="Anna Berg", body="Keep me.")
    other = factory.comment(body="Not hers.")
    user_id = user.id
    log_in(client, user)

    response = client.post("/account/delete", data={"delete-confirm": "y"})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    db_session.expire_all()
    assert db_session.get(User, user_id) is None
    assert db_session.scalar(sa.select(Identity).where(Identity.user_id == user_id)) is None
    kept = db_session.get(Comment, comment.id)
    assert (kept.author_id, kept.author_name, kept.body) == (None, "deleted user", "Keep me.")
    assert db_session.get(Comment, other.id).author_name != "deleted user"
    assert client.get("/account/").status_code == 302  # logged out


def test_delete_removes_comments_where_the_site_says_so(
    client: FlaskClient, user: User, db_session: Any, factory: Factory
) -> None:
    keeping = factory.site()
    removing = factory.site(settings={"deleted_account_comments": "remove"})
    kept = factory.comment(factory.thread(keeping), author_id=user.id, body="Keep me.")
    thread = factory.thread(removing, comment_count=2)
    gone = factory.comment(thread, author_id=user.id, body="Take me down.")
    factory.comment(thread, body="Someone else's.")
    log_in(client, user)

    assert client.post("/account/delete", data={"delete-confirm": "y"}).status_code == 302
    db_session.expire_all()
    assert db_session.get(Comment, kept.id).body == "Keep me."
    removed = db_session.get(Comment, gone.id)
    assert (removed.status, removed.body, removed.html, removed.author_name) == (
        "deleted",
        "",
        "",
        "deleted user",
    )
    assert db_session.get(Thread, thread.id).comment_count == 1


@pytest.fixture
def app_config(mail_app_config: dict[str, Any], request: pytest.FixtureRequest) -> dict[str, Any]:
    """Mail to the test server, plus whatever a test passes with ``indirect=True``."""
    return {**mail_app_config, **getattr(request, "param", {})}


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}], indirect=True)
def test_account_forms_with_csrf_after_a_mail_login(
    client: FlaskClient, smtp_server: Mailbox
) -> None:
    # Log in the real way, reading each CSRF token from the page that carries it. No db_session
    # here: its app context would outlive requests, and Flask-WTF caches the token in ``g``.
    login_page = client.get("/auth/login").text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page)
    assert token is not None
    log_in_by_mail(client, smtp_server, "csrf@example.org", csrf_token=token.group(1))
    path = re.sub(r"^https?://[^/]+", "", smtp_server.link_to("csrf@example.org"))
    confirm = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert confirm is not None
    assert client.post(path, data={"csrf_token": confirm.group(1)}).status_code == 302

    page = client.get("/account/").text
    assert client.post("/account/profile", data={"profile-display_name": "Nope"}).status_code == 400
    profile_token = re.search(
        r'id="profile-csrf_token" name="profile-csrf_token" type="hidden" value="([^"]+)"', page
    )
    assert profile_token is not None
    response = client.post(
        "/account/profile",
        data={"profile-csrf_token": profile_token.group(1), "profile-display_name": "Csrf Reader"},
    )
    assert response.status_code == 302, response.text
    with client.application.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "csrf@example.org"))
        assert user is not None and user.display_name == "Csrf Reader"
