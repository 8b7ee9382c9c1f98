"""The cache of public thread reads: hits run no SQL, and every change shows on the next read.

Each test runs twice: with answers in process memory (generations in the shared file) and in
a real Redis (database 5 of the local server; skipped when none listens).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import scoped_session

from auth.account import erase_account
from auth.models import ApiToken, SiteMembership, SiteRole, User
from moderation import cache
from moderation.desk import AuthorKey, act_on_author, undo_decision
from moderation.extensions import db
from moderation.models import Comment, Site
from moderation.policy import SiteSettings
from moderation.reports import NewReport, report_comment
from moderation.service import (
    NewComment,
    decide_comment,
    delete_own_comment,
    edit_comment,
    like_comment,
    submit_comment,
)
from moderation.status import Action, Status
from tests.conftest import TestDatabase, dispose, make_test_app, memory_or_redis

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]
REDIS_URL = "redis://127.0.0.1:6379/5"


@pytest.fixture(params=["memory", "redis"])
def app_config(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The cache in process memory, or in Redis (database 5), for each test."""
    yield from memory_or_redis(request.param, REDIS_URL)


@contextmanager
def counted_sql(app: Flask) -> Iterator[list[str]]:
    """The SQL statements ``app``'s engine runs inside the block."""
    statements: list[str] = []

    def remember(*args: Any) -> None:
        statements.append(args[2])

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", remember)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", remember)


@pytest.fixture
def newsroom(factory: Factory, db_session: DBSession) -> dict[str, Any]:
    """A site that holds every comment for review, its moderator, two readers and an article."""
    site = factory.site(name="Gazette")
    site.moderation_settings = SiteSettings(mode="pre", flood_seconds=0)
    moderator = factory.user(email="mod@gazette.example")
    db_session.add(SiteMembership(user=moderator, site=site, role=SiteRole.MODERATOR))
    db_session.commit()
    return {
        "site": site,
        "moderator": moderator,
        "joan": factory.user(email="joan@example.org", display_name="Joan"),
        "ravi": factory.user(email="ravi@example.org", display_name="Ravi"),
        "url": f"{site.origins[0]}/articles/harbour",
    }


def post(room: dict[str, Any], body: str, author: str = "joan") -> Comment:
    """A comment by ``author`` on the article, approved at once by the moderator."""
    comment, _ = submit_comment(
        NewComment(room["site"].key, room["url"], body, author=room[author])
    )
    return decide_comment(comment.id, Action.APPROVE, room["moderator"])


def listed(client: FlaskClient, room: dict[str, Any]) -> list[dict[str, Any]]:
    """The comments the public JSON list shows."""
    answer = client.get(
        "/api/v1/comments", query_string={"site": room["site"].key, "url": room["url"]}
    )
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["comments"]  # type: ignore[no-any-return]


def page(client: FlaskClient, room: dict[str, Any]) -> str:
    """The widget's thread page for the article."""
    answer = client.get(
        "/embed/thread", query_string={"site": room["site"].key, "url": room["url"]}
    )
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


def bodies(client: FlaskClient, room: dict[str, Any]) -> list[str]:
    """The bodies shown by the JSON list."""
    return [comment["body"] for comment in listed(client, room)]


def without_nonces(page: bytes) -> bytes:
    """A page with its CSP nonces blanked."""
    return re.sub(rb'nonce="[^"]*"', b'nonce=""', page)


# --- hits -------------------------------------------------------------------------------------


def test_a_second_read_of_every_public_answer_runs_no_sql(
    app: Flask, client: FlaskClient, newsroom: dict[str, Any]
) -> None:
    post(newsroom, "The harbour wall needs repair.")
    key, url = newsroom["site"].key, newsroom["url"]
    reads = [
        ("/api/v1/comments", {"site": key, "url": url}),
        ("/api/v1/comments", {"site": key, "url": url, "sort": "newest"}),
        ("/embed/thread", {"site": key, "url": url, "theme": "dark"}),
        ("/embed/counts", {"site": key, "url": url}),
        ("/api/v1/counts", {"site": key, "url": url}),
    ]
    for path, query in reads:
        with counted_sql(app) as first:
            answer = client.get(path, query_string=query)
        with counted_sql(app) as second:
            again = client.get(path, query_string=query)
        assert answer.status_code == again.status_code == 200, path
        # The same page, but for the CSP nonce, which every answer gets fresh.
        assert without_nonces(again.get_data()) == without_nonces(answer.get_data()), path
        assert first, f"{path}: the first read should have asked the database"
        assert second == [], f"{path}: the second read ran {second}"
    with app.app_context():
        assert cache.status()["hits"] == len(reads)


def test_variants_are_cached_apart(client: FlaskClient, newsroom: dict[str, Any]) -> None:
    post(newsroom, "First.")
    post(newsroom, "Second.", author="ravi")
    query = {"site": newsroom["site"].key, "url": newsroom["url"]}
    oldest = client.get("/api/v1/comments", query_string=query).get_json()["comments"]
    newest = client.get("/api/v1/comments", query_string={**query, "sort": "newest"}).get_json()
    assert [c["body"] for c in oldest] == ["First.", "Second."]
    assert [c["body"] for c in newest["comments"]] == ["Second.", "First."]
    light = client.get("/embed/thread", query_string=query).get_data(as_text=True)
    dark = client.get("/embed/thread", query_string={**query, "theme": "dark"}).get_data(
        as_text=True
    )
    assert "theme-light" in light and "theme-dark" in dark


def test_errors_are_not_cached(client: FlaskClient, newsroom: dict[str, Any]) -> None:
    query = {"site": "no-such-site", "url": newsroom["url"]}
    assert client.get("/api/v1/comments", query_string=query).status_code == 404
    assert client.get("/embed/thread", query_string=query).status_code == 404
    assert client.get("/embed/counts", query_string=query).status_code == 404


def test_a_signed_in_reader_is_not_served_the_shared_answer(
    app: Flask, client: FlaskClient, newsroom: dict[str, Any], db_session: DBSession
) -> None:
    post(newsroom, "Shown to all.")
    listed(client, newsroom)  # cached for anonymous readers
    # Ravi (known on the site by a held comment) is shadow-banned: his next comment is shown
    # to him alone.
    submit_comment(
        NewComment(newsroom["site"].key, newsroom["url"], "Still held.", author=newsroom["ravi"])
    )
    act_on_author(
        newsroom["moderator"], newsroom["site"].key, AuthorKey(newsroom["ravi"].id), "shadow_ban"
    )
    submit_comment(
        NewComment(
            newsroom["site"].key, newsroom["url"], "Only I see this.", author=newsroom["ravi"]
        )
    )
    token = _token(db_session, newsroom["ravi"])
    mine = client.get(
        "/api/v1/comments",
        query_string={"site": newsroom["site"].key, "url": newsroom["url"]},
        headers={"Authorization": f"Bearer {token}"},
    ).get_json()["comments"]
    assert [c["body"] for c in mine] == ["Shown to all.", "Only I see this."]
    assert bodies(client, newsroom) == ["Shown to all."]


def _token(session: DBSession, user: User) -> str:
    token, plain = ApiToken.issue(user, name="test")
    session.add(token)
    session.commit()
    return plain


# --- every change shows on the next read ----------------------------------------------------------


def test_approving_a_held_comment_shows_it(client: FlaskClient, newsroom: dict[str, Any]) -> None:
    comment, _ = submit_comment(
        NewComment(newsroom["site"].key, newsroom["url"], "Held first.", author=newsroom["joan"])
    )
    assert comment.status == Status.PENDING
    assert bodies(client, newsroom) == []
    assert "Held first." not in page(client, newsroom)
    decide_comment(comment.id, Action.APPROVE, newsroom["moderator"])
    assert bodies(client, newsroom) == ["Held first."]
    assert "Held first." in page(client, newsroom)
    counts = client.get(
        "/embed/counts", query_string={"site": newsroom["site"].key, "url": newsroom["url"]}
    ).get_json()
    assert counts["counts"] == {newsroom["url"]: 1}


def test_reject_and_undo_show(client: FlaskClient, newsroom: dict[str, Any]) -> None:
    comment = post(newsroom, "Borderline.")
    assert bodies(client, newsroom) == ["Borderline."]
    decide_comment(
        comment.id, Action.REJECT, newsroom["moderator"], expected_version=comment.version
    )
    assert bodies(client, newsroom) == []
    undo_decision(newsroom["moderator"], comment.id)
    assert bodies(client, newsroom) == ["Borderline."]


def test_edit_delete_and_likes_show(client: FlaskClient, newsroom: dict[str, Any]) -> None:
    site = newsroom["site"]
    site.moderation_settings = SiteSettings(mode="post", first_comments_held=0, flood_seconds=0)
    db.session.commit()
    comment, _ = submit_comment(
        NewComment(site.key, newsroom["url"], "Tpyo here.", author=newsroom["joan"])
    )
    assert comment.status == Status.PUBLISHED
    assert "Tpyo here." in page(client, newsroom)
    edit_comment(comment.id, newsroom["joan"], "Typo fixed.")
    assert bodies(client, newsroom) == ["Typo fixed."]
    assert "Typo fixed." in page(client, newsroom)

    assert listed(client, newsroom)[0]["like_count"] == 0
    like_comment(comment.id, newsroom["ravi"])
    assert listed(client, newsroom)[0]["like_count"] == 1
    like_comment(comment.id, newsroom["ravi"], liked=False)
    assert listed(client, newsroom)[0]["like_count"] == 0

    delete_own_comment(comment.id, newsroom["joan"])
    assert bodies(client, newsroom) == []
    assert "Typo fixed." not in page(client, newsroom)


def test_a_comment_hidden_by_reports_disappears(
    client: FlaskClient, newsroom: dict[str, Any], factory: Factory
) -> None:
    site = newsroom["site"]
    site.moderation_settings = SiteSettings(
        mode="pre",
        flood_seconds=0,
        reports_to_queue=1,
        reports_to_hide=1,
        new_account_report_weight=1.0,
    )
    db.session.commit()
    comment = post(newsroom, "Reported soon.")
    assert bodies(client, newsroom) == ["Reported soon."]
    outcome = report_comment(NewReport(comment.id, newsroom["ravi"], "abuse"))
    assert outcome.comment.status == Status.PENDING
    assert bodies(client, newsroom) == []


def test_author_actions_that_hide_comments_in_bulk_show(
    client: FlaskClient, newsroom: dict[str, Any], db_session: DBSession
) -> None:
    post(newsroom, "Joan's view.")
    post(newsroom, "Ravi's view.", author="ravi")
    assert bodies(client, newsroom) == ["Joan's view.", "Ravi's view."]
    # A ban changes no comment already shown: the page stays as it was, and right.
    act_on_author(
        newsroom["moderator"], newsroom["site"].key, AuthorKey(newsroom["ravi"].id), "ban"
    )
    assert bodies(client, newsroom) == ["Joan's view.", "Ravi's view."]
    # Erasing an account removes its comments with one UPDATE over all of them.
    site = newsroom["site"]
    site.moderation_settings = SiteSettings(
        mode="pre", flood_seconds=0, deleted_account_comments="remove"
    )
    db_session.commit()
    erase_account(db_session.get(User, newsroom["ravi"].id))
    db_session.commit()
    assert bodies(client, newsroom) == ["Joan's view."]


def test_site_settings_and_new_threads_show(
    client: FlaskClient, newsroom: dict[str, Any], db_session: DBSession
) -> None:
    site = newsroom["site"]
    other = f"{site.origins[0]}/articles/new-story"
    query = {"site": site.key, "url": other}
    # Asked before the article has a thread: the empty answer must not outlive its first comment.
    assert client.get("/api/v1/comments", query_string=query).get_json()["comments"] == []
    comment, _ = submit_comment(NewComment(site.key, other, "First!", author=newsroom["joan"]))
    decide_comment(comment.id, Action.APPROVE, newsroom["moderator"])
    shown = client.get("/api/v1/comments", query_string=query).get_json()["comments"]
    assert [c["body"] for c in shown] == ["First!"]
    # The frame's CSP names the site's origins: a new origin shows at once.
    before = client.get("/embed/thread", query_string=query).headers["Content-Security-Policy"]
    assert "https://mirror.example" not in before
    db_session.get(Site, site.id).origins = [*site.origins, "https://mirror.example"]
    db_session.commit()
    after = client.get("/embed/thread", query_string=query).headers["Content-Security-Policy"]
    assert "https://mirror.example" in after


# --- processes ------------------------------------------------------------------------------------


def test_two_app_instances_on_one_database_see_each_others_changes(
    app: Flask, database: TestDatabase, tmp_path: Path, newsroom: dict[str, Any]
) -> None:
    """Two gunicorn workers without Redis: separate memory, one generation file (or one Redis)."""
    shared = {"REDIS_URL": app.config["REDIS_URL"]} if app.config.get("REDIS_URL") else {}
    # The same instance folder, as two workers of one installation have.
    other = make_test_app(database, Path(app.instance_path), shared)
    try:
        reader = other.test_client()
        comment, _ = submit_comment(
            NewComment(
                newsroom["site"].key, newsroom["url"], "Seen everywhere?", author=newsroom["joan"]
            )
        )
        assert bodies(reader, newsroom) == []
        with counted_sql(other) as statements:
            assert bodies(reader, newsroom) == []
        assert statements == []  # cached in the other app
        decide_comment(comment.id, Action.APPROVE, newsroom["moderator"])  # in this app
        assert bodies(reader, newsroom) == ["Seen everywhere?"]
    finally:
        dispose(other)


def test_the_memory_cache_is_bounded(
    app: Flask, client: FlaskClient, newsroom: dict[str, Any]
) -> None:
    if app.config.get("REDIS_URL"):
        pytest.skip("Redis bounds itself (maxmemory)")
    app.extensions.pop(cache.EXTENSION, None)
    app.config["CACHE_MAX_MB"] = 0.0004  # about 400 characters: a few empty answers
    for number in range(20):
        query = {"site": newsroom["site"].key, "url": f"{newsroom['url']}-{number}"}
        client.get("/api/v1/comments", query_string=query)
    with app.app_context():
        memory = cache.page_cache().memory
        assert 0 < len(memory) < 20
        assert memory.currsize <= memory.maxsize


def test_the_cache_can_be_turned_off(
    app: Flask, client: FlaskClient, newsroom: dict[str, Any]
) -> None:
    app.extensions.pop(cache.EXTENSION, None)
    app.config["CACHE_ENABLED"] = False
    post(newsroom, "Uncached.")
    listed(client, newsroom)
    with counted_sql(app) as statements:
        listed(client, newsroom)
    assert statements
