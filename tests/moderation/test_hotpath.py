"""The busiest requests stay cheap: SQL statements per post and per read, pinned.

A post and a thread read are what a news site's readers do most; every statement added to them
costs CPU on every request (docs/benchmarks.md, "Against Isso"). These tests count the
statements the app's engine runs and fail when a change adds some, and check that the
in-process caches behind the savings (the site's settings, the API token) never serve
anything stale.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import scoped_session

from auth.models import ApiToken, SiteMembership, SiteRole, User
from moderation.extensions import db
from moderation.models import Comment, Site, Thread
from moderation.policy import SiteSettings
from moderation.status import Status
from tests.conftest import TestDatabase, dispose, make_test_app, memory_or_redis

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]

CLEAN = "Thanks for covering the council meeting, very informative."
# A post: token (with its user), the site's record of the author, thread, one pass over the
# author's history, INSERT comment, INSERT decision, UPDATE thread count, COMMIT; PostgreSQL
# also locks the author's row (SQLite serialises writers anyway).
POST_STATEMENTS = {"sqlite": 8, "postgresql": 9}
# An uncached read: thread, comments.
READ_STATEMENTS = 2


@contextmanager
def counted_sql(app: Flask) -> Iterator[list[str]]:
    """The SQL statements ``app``'s engine runs inside the block (COMMIT included)."""
    statements: list[str] = []

    def remember(*args: Any) -> None:
        statements.append(args[2])

    def commit(*_: Any) -> None:
        statements.append("COMMIT")

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", remember)
    sa.event.listen(engine, "commit", commit)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", remember)
        sa.event.remove(engine, "commit", commit)


def bearer(token: str) -> dict[str, str]:
    """The header that signs a request with ``token``."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def room(factory: Factory, db_session: DBSession) -> dict[str, Any]:
    """A site with its default rules, a commenter with a token, an owner with a token."""
    site = factory.site(
        name="Gazette",
        settings=SiteSettings().with_updates({"first_comments_held": 0}).to_dict(),
    )
    commenter = factory.user(display_name="Cora")
    owner = factory.user(display_name="Olive")
    db_session.add(SiteMembership(user=owner, site=site, role=SiteRole.OWNER))
    token, plain = ApiToken.issue(commenter, name="test")
    owner_token, owner_plain = ApiToken.issue(owner, name="test")
    db_session.add_all([token, owner_token])
    db_session.commit()
    return {
        "site": site,
        "key": site.key,
        "commenter": commenter,
        "token": plain,
        "owner_token": owner_plain,
        "url": f"{site.origins[0]}/articles/harbour",
    }


def post(
    client: FlaskClient, room: dict[str, Any], body: str, token: str | None = None, **extra: Any
) -> Any:
    """POST a comment as the commenter (or as the owner of ``token``)."""
    payload = {"site": room["key"], "url": room["url"], "body": body, **extra}
    return client.post("/api/v1/comments", json=payload, headers=bearer(token or room["token"]))


def read(client: FlaskClient, room: dict[str, Any]) -> Any:
    """GET the article's comments anonymously."""
    return client.get("/api/v1/comments", query_string={"site": room["key"], "url": room["url"]})


def test_a_post_runs_at_most_the_pinned_statements(
    app: Flask, client: FlaskClient, room: dict[str, Any]
) -> None:
    # The owner's comment creates the thread; the commenter's first request notes the token's
    # use (at most once a minute), so the counted post is a commenter's everyday post.
    first = post(client, room, CLEAN, token=room["owner_token"])
    assert first.status_code == 201, first.get_json()
    assert client.get("/api/v1/me", headers=bearer(room["token"])).status_code == 200
    with counted_sql(app) as statements:
        answer = post(client, room, "The harbour wall needs repair before winter.")
    assert answer.status_code == 201, answer.get_json()
    with app.app_context():
        dialect = db.engine.dialect.name
    assert len(statements) <= POST_STATEMENTS[dialect], "\n".join(statements)
    body = answer.get_json()["comment"]
    assert body["status"] == "published"
    assert body["url"] == room["url"]
    with app.app_context():
        stored = db.session.get(Comment, body["id"])
        assert stored is not None and stored.status == Status.PUBLISHED
        assert len(stored.decisions) == 1
        thread = db.session.get(Thread, stored.thread_id)
        assert thread is not None and thread.comment_count == 2


def test_a_cached_read_runs_no_sql_and_an_uncached_one_at_most_the_pinned_statements(
    app: Flask, client: FlaskClient, room: dict[str, Any]
) -> None:
    post(client, room, CLEAN)
    with counted_sql(app) as first:
        answer = read(client, room)
    with counted_sql(app) as second:
        again = read(client, room)
    assert answer.status_code == again.status_code == 200
    assert again.get_data() == answer.get_data()
    assert answer.mimetype == again.mimetype == "application/json"
    assert [c["body"] for c in again.get_json()["comments"]] == [CLEAN]
    assert 0 < len(first) <= READ_STATEMENTS, "\n".join(first)
    assert second == []


# --- the site's row, kept in process between its changes ---------------------------------


REDIS_URL = "redis://127.0.0.1:6379/10"  # this module's own Redis database


@pytest.fixture(params=["memory", "redis"])
def app_config(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Generations in the shared file, or in a real Redis (database 10)."""
    yield from memory_or_redis(request.param, REDIS_URL)


def test_a_post_does_not_read_the_site_again_until_it_changes(
    app: Flask, client: FlaskClient, room: dict[str, Any]
) -> None:
    assert post(client, room, CLEAN, token=room["owner_token"]).status_code == 201
    with counted_sql(app) as statements:
        assert post(client, room, "The ferry timetable changes in May.").status_code == 201
    assert not [s for s in statements if "FROM sites" in s]

    # The owner holds every comment from now on: the very next post is held.
    changed = client.patch(
        f"/api/v1/sites/{room['key']}",
        json={"settings": {"mode": "pre", "flood_seconds": 0}},
        headers=bearer(room["owner_token"]),
    )
    assert changed.status_code == 200, changed.get_json()
    with counted_sql(app) as statements:
        held = post(client, room, "Will the library open on Sundays?")
    assert held.status_code == 202, held.get_json()
    assert held.get_json()["comment"]["status"] == "pending"
    assert [s for s in statements if "FROM sites" in s]  # read again once, after the change


def test_a_change_made_by_another_process_is_seen_by_the_next_post(
    app: Flask,
    client: FlaskClient,
    database: TestDatabase,
    room: dict[str, Any],
) -> None:
    """Two workers: the other one changes the site (origins, settings), this one posts."""
    assert post(client, room, CLEAN, token=room["owner_token"]).status_code == 201
    shared = {"REDIS_URL": app.config["REDIS_URL"]} if app.config.get("REDIS_URL") else {}
    other = make_test_app(database, Path(app.instance_path), shared)
    try:
        runner = other.test_cli_runner()
        result = runner.invoke(
            args=["sites", "update", room["key"], "--setting", "abuse_hold=0.01"]
        )
        assert result.exit_code == 0, result.output
        held = post(client, room, "I disagree with the council's plan for the harbour.")
        assert held.status_code == 202, held.get_json()
        assert "abuse" in str(held.get_json()["comment"]["reasons"])

        with other.app_context():
            site = db.session.scalar(sa.select(Site).where(Site.key == room["key"]))
            assert site is not None
            site.origins = ["https://elsewhere.example"]
            db.session.commit()
        moved = post(client, room, "Is the article still on the old address?")
        assert moved.status_code == 422, moved.get_json()
        assert "origins" in moved.get_json()["error"]
    finally:
        dispose(other)


def test_a_banned_author_is_refused_at_once(
    app: Flask, client: FlaskClient, room: dict[str, Any], db_session: DBSession
) -> None:
    assert post(client, room, CLEAN).status_code == 201
    commenter = db_session.get(User, room["commenter"].id)
    commenter.banned = True
    db_session.commit()
    refused = post(client, room, "Another comment.")
    assert refused.status_code == 403, refused.get_json()
