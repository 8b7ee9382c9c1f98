"""The JSON API v1 through the test client: statuses, bodies, authentication, rate limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import scoped_session

from auth.models import ApiToken, Role, SiteMembership, SiteRole, User
from moderation.db import utcnow
from moderation.models import Comment, Site, Thread
from moderation.policy import SiteSettings
from moderation.status import Status

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]

CLEAN = "Thanks for covering the council meeting, very informative."
ABUSIVE = "You are a pathetic moron and an idiot, shut up"


def settings(**values: Any) -> dict[str, Any]:
    """Stored site settings: the defaults with ``values`` changed."""
    return SiteSettings().with_updates(values).to_dict()


def bearer(token: str) -> dict[str, str]:
    """The header that signs a request with ``token``."""
    return {"Authorization": f"Bearer {token}"}


class People:
    """A site with an owner, a moderator and a commenter, each with a token."""

    def __init__(self, factory: Factory, db_session: DBSession) -> None:
        self.session = db_session
        self.factory = factory
        self.site = factory.site(
            name="Gazette", settings=settings(first_comments_held=0, flood_seconds=0)
        )
        self.owner, self.owner_token = self.user(SiteRole.OWNER, display_name="Olive Owner")
        self.moderator, self.moderator_token = self.user(
            SiteRole.MODERATOR, display_name="Mo Derator"
        )
        self.commenter, self.commenter_token = self.user(None, display_name="Cora Commenter")

    def user(self, site_role: SiteRole | None, site: Site | None = None, **fields: Any) -> Any:
        """A user with a role on ``site`` (this site by default) and a token."""
        user = self.factory.user(**fields)
        if site_role is not None:
            self.session.add(SiteMembership(user=user, site=site or self.site, role=site_role))
        token, plain = ApiToken.issue(user, name="test")
        self.session.add(token)
        self.session.commit()
        return user, plain

    @property
    def url(self) -> str:
        """An article on the site."""
        return f"{self.site.origins[0]}/articles/story"


@pytest.fixture
def people(factory: Factory, db_session: DBSession) -> People:
    """The cast of a site."""
    return People(factory, db_session)


def create(
    client: FlaskClient, people: People, body: str = CLEAN, token: str | None = None, **extra: Any
) -> Any:
    """POST a comment as the commenter (or ``token``)."""
    payload = {"site": people.site.key, "url": people.url, "body": body, **extra}
    return client.post(
        "/api/v1/comments", json=payload, headers=bearer(token or people.commenter_token)
    )


def error_of(response: Any, status: int) -> str:
    """The error sentence of a JSON error response with ``status``."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    return response.json["error"]


# --- posting --------------------------------------------------------------------------------------


def test_published_comment_is_201(client: FlaskClient, people: People) -> None:
    response = create(client, people, "**Hello** there", title="Story", parent_id=None)
    assert response.status_code == 201
    comment = response.json["comment"]
    assert set(comment) == {
        "id",
        "parent_id",
        "url",
        "author",
        "body",
        "html",
        "created_at",
        "status",
        "edited_at",
        "like_count",
    }
    assert comment["status"] == "published"
    assert comment["body"] == "**Hello** there"
    assert comment["html"] == "<p><strong>Hello</strong> there</p>\n"
    assert comment["author"] == {"name": "Cora Commenter"}
    assert comment["url"] == people.url
    assert datetime.fromisoformat(comment["created_at"]).tzinfo is not None


def test_held_comment_is_202_with_its_reasons(
    client: FlaskClient, people: People, db_session: DBSession
) -> None:
    people.site.moderation_settings = people.site.moderation_settings.with_updates(
        {"abuse_hold": 0.6}
    )
    db_session.commit()
    response = create(client, people, ABUSIVE)
    assert response.status_code == 202
    comment = response.json["comment"]
    assert comment["status"] == "pending"
    assert [r["code"] for r in comment["reasons"]] == ["abuse_score"]
    assert comment["reasons"][0]["message"].startswith("abuse score 0.")


def test_reply(client: FlaskClient, people: People) -> None:
    parent = create(client, people, "parent").json["comment"]
    reply = create(client, people, "reply", parent_id=parent["id"])
    assert reply.status_code == 201
    assert reply.json["comment"]["parent_id"] == parent["id"]
    bad = create(client, people, "orphan", parent_id=999999)
    assert error_of(bad, 422) == "There is no comment 999999 on this article to reply to."


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        ({}, {"site", "url", "body"}),
        ({"site": "k", "url": "https://a.example/x"}, {"body"}),
        ({"site": "k", "url": "u", "body": "b", "parent_id": "12"}, {"parent_id"}),
        ({"site": "k", "url": "u", "body": "b", "colour": "red"}, {"colour"}),
        ({"site": 1, "url": "u", "body": "b"}, {"site"}),
        ({"site": "k", "url": "", "body": "b"}, {"url"}),
    ],
)
def test_invalid_fields_are_422_with_messages(
    client: FlaskClient, people: People, payload: dict[str, Any], fields: set[str]
) -> None:
    response = client.post("/api/v1/comments", json=payload, headers=bearer(people.commenter_token))
    message = error_of(response, 422)
    assert message == f"Some fields are missing or invalid: {', '.join(sorted(fields))}."
    assert set(response.json["fields"]) == fields


def test_body_that_is_not_an_object_or_not_json(client: FlaskClient, people: People) -> None:
    headers = bearer(people.commenter_token)
    response = client.post("/api/v1/comments", json=["a"], headers=headers)
    assert error_of(response, 422) == "Invalid input type."
    assert response.json["fields"] == {"_schema": ["Invalid input type."]}
    response = client.post(
        "/api/v1/comments", data="{nope", content_type="application/json", headers=headers
    )
    assert error_of(response, 400) == "The request body is not valid JSON."


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"site": "nope"}, 404, "There is no site with the key “nope”."),
        ({"url": "ftp://x/y"}, 422, "is not an article URL"),
        ({"url": "https://elsewhere.example/a"}, 422, "must be on one of the site's origins"),
        ({"body": "   "}, 422, "Comment is empty."),
        ({"body": "x" * 5001}, 422, "Comment is 5,001 characters; the limit is 5,000."),
        ({"title": "t" * 501}, 422, "title"),
    ],
)
def test_service_refusals_become_json(
    client: FlaskClient, people: People, change: dict[str, Any], status: int, message: str
) -> None:
    payload = {"site": people.site.key, "url": people.url, "body": CLEAN, **change}
    response = client.post("/api/v1/comments", json=payload, headers=bearer(people.commenter_token))
    assert message in error_of(response, status)


def test_origin_header_is_checked(client: FlaskClient, people: People) -> None:
    def with_origin(origin: str, body: str) -> Any:
        return client.post(
            "/api/v1/comments",
            json={"site": people.site.key, "url": people.url, "body": body},
            headers={**bearer(people.commenter_token), "Origin": origin},
        )

    refused = with_origin("https://evil.example", "one")
    assert error_of(refused, 403) == (
        "This site does not accept comments from pages on https://evil.example."
    )
    assert with_origin(people.site.origins[0], "two").status_code == 201
    # The service's own pages (the comment iframe) are same-origin, whatever the site's list.
    assert with_origin("http://localhost", "three").status_code == 201


def test_closed_banned_and_suspended(
    client: FlaskClient, people: People, factory: Factory, db_session: DBSession
) -> None:
    factory.thread(people.site, url=people.url, closed=True)
    assert error_of(create(client, people), 403) == "Comments are closed on this article."

    people.commenter.banned = True
    db_session.commit()
    response = create(client, people, url=people.url + "-2")
    assert error_of(response, 403) == "Your account is banned from commenting."

    people.commenter.banned = False
    people.commenter.suspended_until = datetime(2999, 5, 6, 7, 8, 9, tzinfo=UTC)
    db_session.commit()
    response = create(client, people, url=people.url + "-2")
    assert error_of(response, 403) == "Your account is suspended until 2999-05-06T07:08:09+00:00."
    assert response.json["suspended_until"] == "2999-05-06T07:08:09+00:00"


def test_duplicate_is_409_and_flood_is_429(
    client: FlaskClient, people: People, db_session: DBSession
) -> None:
    first = create(client, people, "Once is enough.")
    again = create(client, people, "once is  enough.")
    assert "You already posted this comment" in error_of(again, 409)
    assert again.json["comment_id"] == first.json["comment"]["id"]

    people.site.moderation_settings = people.site.moderation_settings.with_updates(
        {"flood_seconds": 60}
    )
    db_session.commit()
    fast = create(client, people, "Something new.")
    assert "You are commenting too fast" in error_of(fast, 429)
    assert 1 <= int(fast.headers["Retry-After"]) <= 60
    assert fast.json["retry_after"] == int(fast.headers["Retry-After"])


def test_guests(client: FlaskClient, people: People, db_session: DBSession) -> None:
    payload = {"site": people.site.key, "url": people.url, "body": CLEAN}
    anonymous = client.post("/api/v1/comments", json=payload)
    assert error_of(anonymous, 401) == "Sign in to comment on this site."
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")

    people.site.moderation_settings = people.site.moderation_settings.with_updates(
        {"allow_guests": True}
    )
    db_session.commit()
    no_email = client.post("/api/v1/comments", json={**payload, "name": "Gus"})
    assert error_of(no_email, 422) == "Give an e-mail address to comment as a guest."
    guest = client.post(
        "/api/v1/comments", json={**payload, "name": "Gus", "email": "gus@example.org"}
    )
    assert guest.status_code == 202
    assert guest.json["comment"]["author"] == {"name": "Gus"}
    assert [r["code"] for r in guest.json["comment"]["reasons"]] == ["guest"]


def test_nudge_asks_once_then_routes_and_records_it(
    client: FlaskClient, people: People, db_session: DBSession
) -> None:
    people.site.moderation_settings = people.site.moderation_settings.with_updates(
        {"abuse_hold": 0.6, "nudge": 0.6}
    )
    db_session.commit()
    stored = sa.select(sa.func.count(Comment.id))

    first = create(client, people, ABUSIVE, nudge=True)
    assert first.status_code == 200
    assert "comment" not in first.json
    assert "community guidelines" in first.json["nudge"]["message"]
    assert [r["code"] for r in first.json["nudge"]["reasons"]] == ["nudge"]
    assert db_session.scalar(stored) == 0  # nothing written, not even the article's thread
    assert db_session.scalar(sa.select(sa.func.count(Thread.id))) == 0

    second = create(client, people, ABUSIVE, nudge=True, nudged=True)
    assert second.status_code == 202
    codes = [r["code"] for r in second.json["comment"]["reasons"]]
    assert codes == ["abuse_score", "nudged"]
    comment = db_session.get(Comment, second.json["comment"]["id"])
    assert comment.nudged is True
    assert comment.reasons[-1]["message"].endswith("posted it anyway")

    edited = create(client, people, CLEAN, nudge=True, nudged=True)
    assert edited.status_code == 201
    assert (
        db_session.get(Comment, edited.json["comment"]["id"])
        .reasons[-1]["message"]
        .endswith("changed it")
    )
    # A clean comment is never nudged; clients that do not ask are never nudged.
    assert create(client, people, CLEAN + " Really.", nudge=True).status_code == 201
    assert create(client, people, ABUSIVE + " Really.").status_code == 202


def test_nudge_spares_guests_and_certain_rejections(
    client: FlaskClient, people: People, db_session: DBSession
) -> None:
    people.site.moderation_settings = people.site.moderation_settings.with_updates(
        {"nudge": 0.5, "abuse_reject": 0.55, "allow_guests": True}
    )
    db_session.commit()
    rejected = create(client, people, ABUSIVE, nudge=True)
    assert rejected.status_code == 202
    assert rejected.json["comment"]["status"] == "rejected"

    people.site.moderation_settings = people.site.moderation_settings.with_updates(
        {"abuse_reject": None}
    )
    db_session.commit()
    payload = {"site": people.site.key, "url": people.url, "body": ABUSIVE, "nudge": True}
    guest = client.post(
        "/api/v1/comments", json={**payload, "name": "Gus", "email": "gus@example.org"}
    )
    assert guest.status_code == 202  # guests are routed at once (no account to come back to)


# --- authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer mod_not-a-real-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Token abc"},
        {"X-Requested-With": "fetch"},  # a header, but no session
    ],
)
def test_me_needs_a_valid_token(
    client: FlaskClient, people: People, headers: dict[str, str]
) -> None:
    response = client.get("/api/v1/me", headers=headers)
    assert error_of(response, 401)
    assert "WWW-Authenticate" in response.headers


def test_revoked_token_is_refused_even_on_public_endpoints(
    client: FlaskClient, people: People, db_session: DBSession
) -> None:
    token = db_session.scalar(sa.select(ApiToken).where(ApiToken.user_id == people.commenter.id))
    token.revoked_at = utcnow()
    db_session.commit()
    response = client.get(
        f"/api/v1/counts?site={people.site.key}&url={people.url}",
        headers=bearer(people.commenter_token),
    )
    assert error_of(response, 401) == "The API token is not valid or has been revoked."


def test_me(client: FlaskClient, people: People) -> None:
    response = client.get("/api/v1/me", headers=bearer(people.moderator_token))
    assert response.status_code == 200
    assert response.json == {
        "user": {
            "id": people.moderator.id,
            "name": "Mo Derator",
            "email": people.moderator.email,
            "role": "commenter",
            "sites": [{"key": people.site.key, "name": "Gazette", "role": "moderator"}],
        }
    }


def test_token_use_is_noted_at_most_once_a_minute(
    client: FlaskClient, people: People, db_session: DBSession
) -> None:
    def last_used() -> datetime | None:
        db_session.expire_all()
        return db_session.scalar(
            sa.select(ApiToken.last_used_at).where(ApiToken.user_id == people.commenter.id)
        )

    assert last_used() is None
    client.get("/api/v1/me", headers=bearer(people.commenter_token))
    first = last_used()
    assert first is not None
    client.get("/api/v1/me", headers=bearer(people.commenter_token))
    assert last_used() == first

    token = db_session.scalar(sa.select(ApiToken).where(ApiToken.user_id == people.commenter.id))
    token.last_used_at = first - timedelta(minutes=2)
    db_session.commit()
    client.get("/api/v1/me", headers=bearer(people.commenter_token))
    assert last_used() > first - timedelta(minutes=2)


def sign_in(client: FlaskClient, user: User) -> None:
    """Put ``user`` in the client's Flask-Login session."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_session_counts_only_with_x_requested_with(
    client: FlaskClient, people: People, app_config: Any
) -> None:
    sign_in(client, people.commenter)
    payload = {"site": people.site.key, "url": people.url, "body": CLEAN}
    # A cross-site form post carries the cookie but cannot add the header: anonymous.
    assert client.post("/api/v1/comments", json=payload).status_code == 401
    # ...and a page of this service sends it, with its own origin (tests/security/test_csrf.py).
    headers = {"X-Requested-With": "XMLHttpRequest", "Origin": "http://localhost"}
    response = client.post("/api/v1/comments", json=payload, headers=headers)
    assert response.status_code == 201
    assert response.json["comment"]["author"] == {"name": "Cora Commenter"}


# --- reading --------------------------------------------------------------------------------------


def seed_thread(factory: Factory, people: People, count: int) -> Thread:
    """A thread with ``count`` published comments (some sharing a timestamp) and held ones."""
    thread = factory.thread(people.site, url=people.url)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for n in range(count):
        when = start + timedelta(seconds=n // 3)
        factory.comment(thread, body=f"comment {n}", created_at=when)
        if n % 3 == 0:
            factory.comment(thread, body=f"held {n}", status=Status.PENDING, created_at=when)
    return thread


@pytest.mark.parametrize("sort", ["oldest", "newest"])
def test_list_pages_through_a_thread(
    client: FlaskClient, factory: Factory, people: People, sort: str
) -> None:
    seed_thread(factory, people, 10)
    bodies: list[str] = []
    cursor = None
    while True:
        query: dict[str, Any] = {"site": people.site.key, "url": people.url, "limit": 4}
        query["sort"] = sort
        if cursor:
            query["cursor"] = cursor
        response = client.get("/api/v1/comments", query_string=query)
        assert response.status_code == 200
        page = response.json
        for comment in page["comments"]:
            assert set(comment) >= {"id", "parent_id", "author", "body", "html", "created_at"}
            assert comment["status"] == "published"
            assert "reasons" not in comment
        bodies += [c["body"] for c in page["comments"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = [f"comment {n}" for n in range(10)]
    assert bodies == (expected if sort == "oldest" else expected[::-1])
    assert page["thread"]["url"] == people.url


def test_busy_endpoints_answer_what_their_schemas_describe(
    client: FlaskClient, factory: Factory, people: People, db_session: DBSession
) -> None:
    from moderation.api import _comment_json, _thread_json
    from moderation.schemas import CommentEnvelopeSchema, CommentListSchema

    people.site.moderation_settings = people.site.moderation_settings.with_updates(
        {"abuse_hold": 0.6}
    )
    db_session.commit()
    seed_thread(factory, people, 3)
    for body in ("A *fine* reply", ABUSIVE):
        posted = create(client, people, body)
        comment = db_session.get(Comment, posted.json["comment"]["id"])
        expected = CommentEnvelopeSchema().dump(
            {"comment": _comment_json(comment, with_reasons=comment.status != "published")}
        )
        assert posted.json == expected

    listed = client.get(
        "/api/v1/comments", query_string={"site": people.site.key, "url": people.url}
    )
    thread = db_session.scalar(sa.select(Thread).where(Thread.url == people.url))
    comments = db_session.scalars(
        sa.select(Comment)
        .where(Comment.thread_id == thread.id, Comment.status == Status.PUBLISHED)
        .order_by(Comment.created_at, Comment.id)
    ).all()
    assert len(comments) == 4
    assert listed.json == CommentListSchema().dump(
        {
            "comments": [_comment_json(c) for c in comments],
            "next_cursor": None,
            "thread": _thread_json(thread),
        }
    )


def test_list_input_is_checked(client: FlaskClient, factory: Factory, people: People) -> None:
    seed_thread(factory, people, 2)
    base = {"site": people.site.key, "url": people.url}
    for bad, field in (
        ({"sort": "best"}, "sort"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
    ):
        response = client.get("/api/v1/comments", query_string={**base, **bad})
        assert error_of(response, 422) == f"Some fields are missing or invalid: {field}."
    response = client.get("/api/v1/comments", query_string={**base, "cursor": "zzz"})
    assert (
        error_of(response, 422) == "The cursor is not valid for this list; start again without one."
    )
    missing = client.get("/api/v1/comments", query_string={"site": people.site.key})
    assert missing.json["fields"] == {"url": ["Missing data for required field."]}
    # Unknown parameters (cache busters) are ignored.
    assert client.get("/api/v1/comments", query_string={**base, "_": "1"}).status_code == 200


def test_list_of_an_article_without_comments(client: FlaskClient, people: People) -> None:
    response = client.get(
        "/api/v1/comments", query_string={"site": people.site.key, "url": people.url}
    )
    assert response.json == {"comments": [], "next_cursor": None, "thread": None}
    unknown = client.get("/api/v1/comments", query_string={"site": "nope", "url": people.url})
    assert error_of(unknown, 404) == "There is no site with the key “nope”."


def test_counts(client: FlaskClient, people: People) -> None:
    create(client, people, "one")
    create(client, people, "two")
    other = people.url.replace("story", "other")
    create(client, people, "three", url=other)
    query = [("site", people.site.key), ("url", people.url), ("url", other + "#c")]
    query += [("url", people.url.replace("story", "none")), ("url", "garbage")]
    response = client.get("/api/v1/counts", query_string=query)
    assert response.status_code == 200
    assert response.json == {
        "counts": {
            people.url: 2,
            other + "#c": 1,
            people.url.replace("story", "none"): 0,
            "garbage": 0,
        }
    }
    too_many = [("site", people.site.key)] + [("url", f"{people.url}{n}") for n in range(101)]
    assert error_of(client.get("/api/v1/counts", query_string=too_many), 422)
    no_urls = client.get("/api/v1/counts", query_string={"site": people.site.key})
    assert error_of(no_urls, 422) == "Some fields are missing or invalid: url."


# --- moderation -----------------------------------------------------------------------------------


@pytest.fixture
def held(client: FlaskClient, people: People, db_session: DBSession) -> dict[str, Any]:
    """A comment held for review (the site holds first comments), as its author saw it."""
    people.site.moderation_settings = people.site.moderation_settings.with_updates(
        {"first_comments_held": 1}
    )
    db_session.commit()
    response = create(client, people, title="The story")
    assert response.status_code == 202
    return response.json["comment"]


def test_queue_lists_held_comments_for_moderators(
    client: FlaskClient, people: People, held: dict[str, Any]
) -> None:
    response = client.get(
        "/api/v1/moderation/queue",
        query_string={"site": people.site.key},
        headers=bearer(people.moderator_token),
    )
    assert response.status_code == 200
    (item,) = response.json["comments"]
    assert response.json["next_cursor"] is None
    assert item["id"] == held["id"]
    assert item["status"] == "pending"
    assert item["site"] == people.site.key
    assert item["thread"] == {
        "url": people.url,
        "title": "The story",
        "comment_count": 0,
        "closed": False,
    }
    assert item["author"] == {"id": people.commenter.id, "name": "Cora Commenter", "guest": False}
    assert set(item["scores"]) == {"spam", "abuse"}
    assert all(0 <= score <= 1 for score in item["scores"].values())
    assert item["model_version"]
    assert [r["code"] for r in item["reasons"]] == ["first_comment"]
    assert item["version"] == 1
    assert item["body"] == CLEAN and item["html"].startswith("<p>")


def test_queue_is_only_for_the_sites_staff(
    client: FlaskClient, people: People, factory: Factory, held: dict[str, Any]
) -> None:
    query = {"site": people.site.key}
    _, stranger_token = people.user(SiteRole.MODERATOR, site=factory.site())
    assert error_of(client.get("/api/v1/moderation/queue", query_string=query), 401)
    commenter = client.get(
        "/api/v1/moderation/queue", query_string=query, headers=bearer(people.commenter_token)
    )
    assert error_of(commenter, 403) == "Only moderators can see the moderation queue."
    stranger = client.get(
        "/api/v1/moderation/queue", query_string=query, headers=bearer(stranger_token)
    )
    assert "that you moderate" in error_of(stranger, 404)
    bad_status = client.get(
        "/api/v1/moderation/queue",
        query_string={**query, "status": "deleted"},
        headers=bearer(people.moderator_token),
    )
    assert error_of(bad_status, 422) == "Some fields are missing or invalid: status."


def decide(client: FlaskClient, token: str, comment_id: int, **payload: Any) -> Any:
    """POST a decision."""
    return client.post(
        f"/api/v1/moderation/comments/{comment_id}/decision", json=payload, headers=bearer(token)
    )


def test_decision_and_the_conflict_after_it(
    client: FlaskClient, people: People, held: dict[str, Any], db_session: DBSession
) -> None:
    response = decide(client, people.moderator_token, held["id"], action="approve", version=1)
    assert response.status_code == 200
    comment = response.json["comment"]
    assert (comment["status"], comment["version"]) == ("published", 2)
    assert comment["thread"]["comment_count"] == 1

    again = decide(client, people.owner_token, held["id"], action="reject")
    message = error_of(again, 409)
    assert message.startswith("This comment was already decided by Mo Derator at ")
    assert again.json["decided_by"] == "Mo Derator"
    assert again.json["status"] == "published"
    assert datetime.fromisoformat(again.json["decided_at"]).tzinfo is not None
    assert db_session.get(Comment, held["id"]).status == Status.PUBLISHED

    listed = client.get(
        "/api/v1/comments", query_string={"site": people.site.key, "url": people.url}
    )
    assert [c["id"] for c in listed.json["comments"]] == [held["id"]]


def test_decision_on_a_stale_version(
    client: FlaskClient, people: People, held: dict[str, Any]
) -> None:
    response = decide(client, people.moderator_token, held["id"], action="spam", version=7)
    assert "changed since you loaded it" in error_of(response, 409)
    assert response.json["version"] == 1


def test_decision_refusals(
    client: FlaskClient, people: People, factory: Factory, held: dict[str, Any]
) -> None:
    _, stranger_token = people.user(SiteRole.OWNER, site=factory.site())
    commenter = decide(client, people.commenter_token, held["id"], action="approve")
    assert error_of(commenter, 403) == "Only moderators can decide on comments."
    stranger = decide(client, stranger_token, held["id"], action="approve")
    assert error_of(stranger, 404) == f"There is no comment {held['id']} that you moderate."
    missing = decide(client, people.moderator_token, 999999, action="approve")
    assert error_of(missing, 404)
    for payload, field in (
        ({"action": "delete"}, "action"),
        ({}, "action"),
        ({"action": "approve", "version": "1"}, "version"),
        ({"action": "approve", "reason": "r" * 501}, "reason"),
    ):
        response = decide(client, people.moderator_token, held["id"], **payload)
        assert error_of(response, 422) == f"Some fields are missing or invalid: {field}."
    assert decide(client, "", held["id"], action="approve").status_code == 401
    _, admin_token = people.user(None, role=Role.ADMIN)
    assert decide(client, admin_token, held["id"], action="reject").status_code == 200


# --- sites ----------------------------------------------------------------------------------------


def test_site_for_its_staff(client: FlaskClient, people: People) -> None:
    response = client.get(f"/api/v1/sites/{people.site.key}", headers=bearer(people.owner_token))
    assert response.status_code == 200
    site = response.json["site"]
    assert (site["key"], site["name"], site["role"]) == (people.site.key, "Gazette", "owner")
    assert site["origins"] == people.site.origins
    assert site["settings"]["first_comments_held"] == 0
    as_moderator = client.get(
        f"/api/v1/sites/{people.site.key}", headers=bearer(people.moderator_token)
    )
    assert as_moderator.json["site"]["role"] == "moderator"
    as_commenter = client.get(
        f"/api/v1/sites/{people.site.key}", headers=bearer(people.commenter_token)
    )
    assert error_of(as_commenter, 404)


def test_site_patch(client: FlaskClient, people: People, db_session: DBSession) -> None:
    path = f"/api/v1/sites/{people.site.key}"
    response = client.patch(
        path,
        json={"name": "The Gazette", "settings": {"mode": "pre", "spam_hold": 0.5}},
        headers=bearer(people.owner_token),
    )
    assert response.status_code == 200
    assert response.json["site"]["name"] == "The Gazette"
    assert response.json["site"]["settings"]["mode"] == "pre"
    db_session.expire_all()
    stored = db_session.get(Site, people.site.id).moderation_settings
    assert (stored.mode, stored.spam_hold, stored.first_comments_held) == ("pre", 0.5, 0)

    bad = client.patch(
        path, json={"settings": {"spam_hold": "lots"}}, headers=bearer(people.owner_token)
    )
    assert error_of(bad, 422) == "spam_hold must be a number from 0 to 1, not “lots”."
    unknown = client.patch(path, json={"settings": {"x": 1}}, headers=bearer(people.owner_token))
    assert error_of(unknown, 422).startswith("Unknown setting “x”")
    empty = client.patch(path, json={}, headers=bearer(people.owner_token))
    assert error_of(empty, 422) == "Give name, origins or settings to change."
    origins = client.patch(
        path, json={"origins": ["news.example"]}, headers=bearer(people.owner_token)
    )
    assert "is not an origin" in error_of(origins, 422)
    moderator = client.patch(path, json={"name": "X"}, headers=bearer(people.moderator_token))
    assert error_of(moderator, 403) == "Only the site's owners can change it."


# --- HTTP errors ----------------------------------------------------------------------------------


def test_unknown_routes_and_methods_are_json(client: FlaskClient) -> None:
    assert client.get("/api/v1/nope").json == {"error": "There is nothing at this address."}
    response = client.delete("/api/v1/comments")
    assert error_of(response, 405) == "This address does not accept that method."
    assert "POST" in response.headers["Allow"]


@pytest.mark.parametrize("app_config", [{"MAX_CONTENT_LENGTH": 100}])
def test_too_large_is_json(client: FlaskClient, people: People, app_config: Any) -> None:
    response = create(client, people, "x" * 500)
    assert error_of(response, 413) == "The request is too large."


@pytest.mark.parametrize(
    "app_config", [{"RATELIMIT_ENABLED": True, "MODERATION_COMMENT_RATE_LIMIT": "20/minute"}]
)
def test_flood_retry_after_is_the_flood_limits_with_the_rate_limiter_on(
    client: FlaskClient, people: People, db_session: DBSession
) -> None:
    people.site.moderation_settings = people.site.moderation_settings.with_updates(
        {"flood_seconds": 7}
    )
    db_session.commit()
    posted = create(client, people, "First.")
    assert posted.status_code == 201
    assert "Retry-After" not in posted.headers  # nothing to retry after a success
    fast = create(client, people, "Second.")
    assert "You are commenting too fast" in error_of(fast, 429)
    # The rate limiter's window (a minute) must not override the flood limit's seconds.
    assert 1 <= fast.json["retry_after"] <= 7
    assert fast.headers.get_all("Retry-After") == [str(fast.json["retry_after"])]


@pytest.mark.parametrize(
    "app_config", [{"RATELIMIT_ENABLED": True, "MODERATION_COMMENT_RATE_LIMIT": "2/minute"}]
)
def test_posting_is_rate_limited_per_address(
    client: FlaskClient, people: People, app_config: Any
) -> None:
    assert create(client, people, "one").status_code == 201
    assert create(client, people, "two").status_code == 201
    response = create(client, people, "three")
    assert "Too many requests" in error_of(response, 429)
    assert int(response.headers["Retry-After"]) > 0
    assert response.json["error"].endswith("The limit is 2 per 1 minute.")
    # Reading is not limited by the posting limit.
    query = {"site": people.site.key, "url": people.url}
    assert client.get("/api/v1/comments", query_string=query).status_code == 200
