"""Guest commenting end to end through the JSON API: a name and an e-mail address, no account."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import scoped_session

from auth.models import ApiToken, SiteMembership, SiteRole
from moderation.models import Comment, Site, Thread
from moderation.policy import SiteSettings
from moderation.status import Status

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]

CLEAN = "Thanks for covering the council meeting, very informative."


def settings(**values: Any) -> dict[str, Any]:
    """Stored site settings: the defaults with ``values`` changed."""
    return SiteSettings().with_updates(values).to_dict()


@pytest.fixture
def site(factory: Factory) -> Site:
    """A site that lets guests comment (no first-comment hold or flood limit, to isolate it)."""
    return factory.site(
        name="Gazette", settings=settings(allow_guests=True, first_comments_held=0, flood_seconds=0)
    )


@pytest.fixture
def thread(factory: Factory, site: Site) -> Thread:
    """An article on the site."""
    return factory.thread(site, url=f"{site.origins[0]}/articles/story")


def as_guest(
    client: FlaskClient, site: Site, name: str | None = "Gus", email: str | None = "gus@example.org"
) -> Any:
    """POST a comment with no token and no session, as a guest."""
    payload: dict[str, Any] = {
        "site": site.key,
        "url": f"{site.origins[0]}/articles/story",
        "body": CLEAN,
    }
    if name is not None:
        payload["name"] = name
    if email is not None:
        payload["email"] = email
    return client.post("/api/v1/comments", json=payload)


def error_of(response: Any, status: int) -> str:
    """The error sentence of a JSON error response with ``status``."""
    assert response.status_code == status, response.get_data(as_text=True)
    return str(response.json["error"])


def codes(response: Any) -> list[str]:
    """The reason codes of a held comment."""
    return [reason["code"] for reason in response.json["comment"]["reasons"]]


def test_guests_are_refused_by_default(client: FlaskClient, factory: Factory) -> None:
    closed = factory.site(name="Members only")
    response = as_guest(client, closed)
    assert error_of(response, 401) == "Sign in to comment on this site."


@pytest.mark.parametrize(
    ("name", "email", "message"),
    [
        (None, "gus@example.org", "Give a name to comment as a guest."),
        ("   ", "gus@example.org", "Give a name to comment as a guest."),
        ("Gus", None, "Give an e-mail address to comment as a guest."),
        ("Gus", "", "Give an e-mail address to comment as a guest."),
        ("Gus", "not-an-address", "“not-an-address” is not an e-mail address."),
        ("G" * 101, "gus@example.org", "The name must be at most 100 characters long."),
    ],
)
def test_name_and_email_are_required(
    client: FlaskClient, site: Site, name: str | None, email: str | None, message: str
) -> None:
    assert error_of(as_guest(client, site, name, email), 422) == message


def test_first_guest_comment_is_held(
    client: FlaskClient, site: Site, db_session: DBSession
) -> None:
    response = as_guest(client, site)
    assert response.status_code == 202
    assert response.json["comment"]["status"] == "pending"
    assert response.json["comment"]["author"] == {"name": "Gus"}
    assert codes(response) == ["guest"]
    stored = db_session.get(Comment, response.json["comment"]["id"])
    assert (stored.author_id, stored.guest_email) == (None, "gus@example.org")


def test_guest_reason_comes_with_the_default_first_comment_hold(
    client: FlaskClient, factory: Factory
) -> None:
    strict = factory.site(name="Defaults", settings=settings(allow_guests=True))
    assert "guest" in codes(as_guest(client, strict))


def test_guest_with_an_approved_comment_is_published(
    client: FlaskClient, site: Site, thread: Thread, factory: Factory
) -> None:
    factory.comment(thread, guest_email="gus@example.org", status=Status.PUBLISHED)
    # The address is compared lower-cased, as it is stored.
    response = as_guest(client, site, email="Gus@Example.org")
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.json["comment"]["status"] == "published"


@pytest.mark.parametrize("status", [Status.PENDING, Status.REJECTED, Status.SPAM])
def test_a_guest_comment_not_approved_does_not_count(
    client: FlaskClient, site: Site, thread: Thread, factory: Factory, status: Status
) -> None:
    factory.comment(thread, guest_email="gus@example.org", status=status)
    assert codes(as_guest(client, site)) == ["guest"]


def test_approval_on_another_site_does_not_count(
    client: FlaskClient, site: Site, factory: Factory
) -> None:
    elsewhere = factory.thread(factory.site(name="Herald", settings=settings(allow_guests=True)))
    factory.comment(elsewhere, guest_email="gus@example.org", status=Status.PUBLISHED)
    assert codes(as_guest(client, site)) == ["guest"]


def test_guest_with_a_members_email_does_not_impersonate_them(
    client: FlaskClient, site: Site, thread: Thread, factory: Factory, db_session: DBSession
) -> None:
    # Decided: a guest is only ever the e-mail address they typed. A verified member's address
    # typed by a guest borrows neither the member's account, name, nor standing.
    member = factory.user(email="vera@example.org", display_name="Vera", email_verified=True)
    factory.comment(thread, author_id=member.id, author_name="Vera", status=Status.PUBLISHED)

    response = as_guest(client, site, name="Vera", email="VERA@example.org")
    assert response.status_code == 202
    assert codes(response) == ["guest"]
    stored = db_session.get(Comment, response.json["comment"]["id"])
    assert stored.author_id is None
    assert stored.guest_email == "vera@example.org"

    # Moderators see it marked as a guest's comment, not the member's.
    moderator = factory.user()
    db_session.add(SiteMembership(user=moderator, site=site, role=SiteRole.MODERATOR))
    token, plain = ApiToken.issue(moderator, name="test")
    db_session.add(token)
    db_session.commit()
    queue = client.get(
        f"/api/v1/moderation/queue?site={site.key}", headers={"Authorization": f"Bearer {plain}"}
    )
    assert queue.status_code == 200
    (held,) = queue.json["comments"]
    assert held["author"] == {"id": None, "name": "Vera", "guest": True}


def test_a_member_posting_is_not_a_guest_even_with_guest_fields(
    client: FlaskClient, site: Site, factory: Factory, db_session: DBSession
) -> None:
    member = factory.user(display_name="Mia Member")
    token, plain = ApiToken.issue(member, name="test")
    db_session.add(token)
    db_session.commit()
    response = client.post(
        "/api/v1/comments",
        json={
            "site": site.key,
            "url": f"{site.origins[0]}/articles/story",
            "body": CLEAN,
            "name": "Someone Else",
            "email": "someone@example.org",
        },
        headers={"Authorization": f"Bearer {plain}"},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.json["comment"]["author"] == {"name": "Mia Member"}
    stored = db_session.scalars(sa.select(Comment)).one()
    assert (stored.author_id, stored.guest_email) == (member.id, None)


def test_approving_a_guest_publishes_their_next_comment(
    client: FlaskClient, site: Site, factory: Factory, db_session: DBSession
) -> None:
    first = as_guest(client, site)
    assert first.status_code == 202
    moderator = factory.user()
    db_session.add(SiteMembership(user=moderator, site=site, role=SiteRole.MODERATOR))
    token, plain = ApiToken.issue(moderator, name="test")
    db_session.add(token)
    db_session.commit()
    decided = client.post(
        f"/api/v1/moderation/comments/{first.json['comment']['id']}/decision",
        json={"action": "approve"},
        headers={"Authorization": f"Bearer {plain}"},
    )
    assert decided.status_code == 200, decided.get_data(as_text=True)

    second = client.post(
        "/api/v1/comments",
        json={
            "site": site.key,
            "url": f"{site.origins[0]}/articles/story",
            "body": "A second, different and thoughtful remark about the vote.",
            "name": "Gus",
            "email": "gus@example.org",
        },
    )
    assert second.status_code == 201, second.get_data(as_text=True)
