"""Hostile input: oversized bodies, deep JSON, Unicode tricks and SQL-looking text.

Each answer must be a clean 4xx (or the text stored and shown as typed), never a 500, on
SQLite and on PostgreSQL (which refuses NUL in text) alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask import g
from flask.testing import FlaskClient
from sqlalchemy.orm import scoped_session
from werkzeug.test import TestResponse

from auth.models import ApiToken, Identity, Role, SiteMembership, SiteRole, User
from moderation.models import Comment, Report, Site, Thread
from moderation.render import MAX_BODY
from moderation.security import MAX_JSON_DEPTH, clean_name
from tests.conftest import Factory

ORIGIN = "https://news.example"
URL = f"{ORIGIN}/articles/limits"
LIMIT = 1024 * 1024  # MAX_CONTENT_LENGTH's default
SQL_STRINGS = [
    "'; DROP TABLE comments; --",
    '" OR 1=1 --',
    "\\'",
    "100%",
    "under_score",
    "back\\slash",
    "Robert'); DELETE FROM users WHERE ('1'='1",
]
BIDI = "\u202e"
ZERO_WIDTH = "\u200b\u200d\ufeff"
ZALGO = "Z" + "\u0301" * 50 + "algo"


@dataclass(frozen=True)
class World:
    """A site open to guests, a commenter with a token and an admin with a token."""

    site: Site
    commenter: User
    token: str
    admin: User
    admin_token: str


@pytest.fixture
def world(factory: Factory, db_session: scoped_session[Any]) -> World:
    """The site, its people and their tokens; no flood limit, guests allowed."""
    site = factory.site(origins=[ORIGIN])
    site.moderation_settings = site.moderation_settings.with_updates(
        {"allow_guests": True, "flood_seconds": 0, "first_comments_held": 0}
    )
    commenter = factory.user(display_name="Cora")
    admin = factory.user(display_name="Ada", role=Role.ADMIN)
    db_session.add(SiteMembership(user=admin, site=site, role=SiteRole.OWNER))
    tokens = []
    for user in (commenter, admin):
        row, plain = ApiToken.issue(user, name="limits")
        db_session.add(row)
        tokens.append(plain)
    db_session.commit()
    return World(site, commenter, tokens[0], admin, tokens[1])


def bearer(token: str) -> dict[str, str]:
    """The API's Authorization header."""
    return {"Authorization": f"Bearer {token}"}


def post_json(client: FlaskClient, path: str, raw: str | bytes, token: str | None) -> TestResponse:
    """POST a raw JSON text (so that lone surrogates and depth reach the server as written)."""
    headers = bearer(token) if token else {}
    return client.post(path, data=raw, content_type="application/json", headers=headers)


def comment_count(session: scoped_session[Any]) -> int:
    """How many comments are stored."""
    session.expire_all()
    return int(session.scalar(sa.select(sa.func.count(Comment.id))) or 0)


def sign_in(client: FlaskClient, user: User) -> None:
    """Put ``user`` in the client's Flask-Login session."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
    g.pop("_login_user", None)


# --- sizes ------------------------------------------------------------------------------------


def test_bodies_over_the_limit_answer_413_in_the_callers_format(
    client: FlaskClient, world: World, db_session: scoped_session[Any]
) -> None:
    big = json.dumps({"site": world.site.key, "url": URL, "body": "x" * LIMIT})
    api = post_json(client, "/api/v1/comments", big, world.token)
    assert api.status_code == 413
    assert api.get_json()["error"] == "The request is too large."
    form = {"email": "a@example.org", "filler": "y" * LIMIT}
    page = client.post("/auth/email", data=form)
    assert page.status_code == 413 and page.mimetype == "text/html"
    assert "too large" in page.text
    as_json = client.post("/auth/email", data=form, headers={"Accept": "application/json"})
    assert as_json.status_code == 413 and as_json.get_json()["error"]
    # A body just under the limit is read and judged on its content (too long a comment).
    long = {"site": world.site.key, "url": URL, "body": "y" * (MAX_BODY + 1)}
    refused = client.post("/api/v1/comments", json=long, headers=bearer(world.token))
    assert refused.status_code == 422
    assert f"{MAX_BODY:,}" in refused.get_json()["error"]
    assert comment_count(db_session) == 0


# --- JSON depth -----------------------------------------------------------------------------------


def test_deep_json_is_refused_before_any_parser_recurses(
    client: FlaskClient, world: World, db_session: scoped_session[Any]
) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    cases = [
        ("/api/v1/comments", deep, world.token),
        ("/api/v1/comments", '{"body": ' + deep + "}", world.token),
        ("/api/v1/moderation/decisions", deep, world.admin_token),
        (f"/api/v1/sites/{world.site.key}", '{"name": ' + "{" * 50_000 + "}", world.admin_token),
        ("/auth/sso", deep, None),  # read with request.get_json
        ("/api/v1/comments", "[" * 100_000, world.token),  # not even well formed
    ]
    for path, raw, token in cases:
        if path.startswith("/api/v1/sites/"):
            response = client.patch(
                path, data=raw, content_type="application/json", headers=bearer(token or "")
            )
        else:
            response = post_json(client, path, raw, token)
        assert response.status_code == 400, (path, response.status_code)
        assert f"deeper than {MAX_JSON_DEPTH} levels" in response.get_json()["error"], path
    assert comment_count(db_session) == 0


def test_moderate_nesting_reaches_the_schema_and_strings_with_brackets_do_not_count(
    client: FlaskClient, world: World, db_session: scoped_session[Any]
) -> None:
    def nested(depth: int) -> Any:
        value: Any = "x"
        for _ in range(depth):
            value = {"a": value}
        return value

    for depth in (16, MAX_JSON_DEPTH - 1):  # the outer object adds one level
        payload = {"site": world.site.key, "url": URL, "body": nested(depth)}
        answer = post_json(client, "/api/v1/comments", json.dumps(payload), world.token)
        assert answer.status_code == 422, depth
        assert "body" in answer.get_json()["fields"]
    too_deep = {"site": world.site.key, "url": URL, "body": nested(MAX_JSON_DEPTH)}
    assert (
        post_json(client, "/api/v1/comments", json.dumps(too_deep), world.token).status_code == 400
    )
    # Brackets inside strings (and escaped quotes) are text, not nesting.
    text = '[[[[ \\" {{{{ ' * 20
    payload = {"site": world.site.key, "url": URL, "body": json.loads(f'"{text}"')}
    ok = post_json(client, "/api/v1/comments", json.dumps(payload), world.token)
    assert ok.status_code in (201, 202), ok.get_json()
    assert ok.get_json()["comment"]["body"] == json.loads(f'"{text}"').strip()
    assert comment_count(db_session) == 1


# --- Unicode ------------------------------------------------------------------------------------


def test_unstorable_text_is_refused_everywhere_it_can_arrive(
    client: FlaskClient, world: World, db_session: scoped_session[Any]
) -> None:
    comment_path = "/api/v1/comments"
    base = f'"site": "{world.site.key}", "url": "{URL}"'
    refusals = [
        # JSON: a lone surrogate (Python's parser accepts it; UTF-8 cannot encode it) and NUL.
        post_json(client, comment_path, "{" + base + ', "body": "a \\ud800 b"}', world.token),
        post_json(client, comment_path, "{" + base + ', "body": "a \\udfff"}', world.token),
        post_json(client, comment_path, "{" + base + ', "body": "a \\u0000 b"}', world.token),
        post_json(
            client,
            comment_path,
            "{" + base + ', "body": "hi", "name": "G\\u0000", "email": "g@example.org"}',
            None,
        ),
        post_json(client, comment_path, "{" + base + ', "body\\ud800": "key"}', world.token),
        # Query strings, paths and forms (PostgreSQL refuses NUL in any text parameter).
        client.get("/api/v1/comments", query_string={"site": "\x00", "url": URL}),
        client.get("/api/v1/moderation/queue?author_email=%00", headers=bearer(world.admin_token)),
        client.get(f"/console/sites/{world.site.key}%00"),
        client.get("/articles/a%00b"),
        client.post("/auth/email", data={"email": "a\x00@example.org"}),
    ]
    for response in refusals:
        assert response.status_code == 400, (response.request.path, response.status_code)
        message = response.get_json()["error"] if response.is_json else response.text
        assert "NUL" in message, message
    # A real pair of surrogates is an emoji: stored as typed.
    pair = post_json(
        client, comment_path, "{" + base + ', "body": "ok \\ud83d\\ude00"}', world.token
    )
    assert pair.status_code in (201, 202)
    assert pair.get_json()["comment"]["body"] == "ok \U0001f600"
    assert comment_count(db_session) == 1

    # The report note and the display name form refuse it too, and store nothing.
    comment_id = pair.get_json()["comment"]["id"]
    report = post_json(
        client,
        f"/api/v1/comments/{comment_id}/reports",
        '{"reason": "other", "note": "bad \\u0000 \\ud800"}',
        world.admin_token,
    )
    assert report.status_code == 400
    assert db_session.scalar(sa.select(sa.func.count(Report.id))) == 0
    sign_in(client, world.commenter)
    form = client.post("/account/profile", data={"profile-display_name": "Cora\x00"})
    assert form.status_code == 400
    db_session.expire_all()
    assert db_session.get(User, world.commenter.id).display_name == "Cora"


def test_names_cannot_be_spoofed_with_bidi_invisible_or_zalgo_characters(
    client: FlaskClient, world: World, db_session: scoped_session[Any]
) -> None:
    spoof = f"{BIDI}rotaredoM{ZERO_WIDTH} {ZALGO}"
    expected = "rotaredoM \u0179" + "\u0301" * 4 + "algo"  # NFC: Z + U+0301 is one letter
    assert clean_name(spoof) == expected
    # A guest's name, as shown under the comment.
    guest = client.post(
        "/api/v1/comments",
        json={
            "site": world.site.key,
            "url": URL,
            "body": f"Body {BIDI}with{ZERO_WIDTH} tricks {ZALGO}",
            "name": spoof,
            "email": "guest@example.org",
        },
    )
    assert guest.status_code in (201, 202), guest.get_json()
    shown = guest.get_json()["comment"]
    assert shown["author"]["name"] == expected
    # The body loses its bidi override (Trojan Source) but keeps joiners and accents.
    assert BIDI not in shown["body"] and ZERO_WIDTH in shown["body"] and ZALGO in shown["body"]
    # A member's display name, set on the account page, and then under their comments.
    sign_in(client, world.commenter)
    saved = client.post("/account/profile", data={"profile-display_name": spoof})
    assert saved.status_code == 302
    db_session.expire_all()
    assert db_session.get(User, world.commenter.id).display_name == expected
    invisible = client.post("/account/profile", data={"profile-display_name": BIDI + ZERO_WIDTH})
    assert invisible.status_code == 400  # nothing visible left: "Enter a name."
    posted = client.post(
        "/api/v1/comments",
        json={"site": world.site.key, "url": URL, "body": "Signed comment"},
        headers=bearer(world.token),
    )
    assert posted.get_json()["comment"]["author"]["name"] == expected
    page = client.get("/account/")
    assert BIDI not in page.text and "\u200b" not in page.text


def test_names_from_every_path_are_cleaned_when_stored(db_session: scoped_session[Any]) -> None:
    """OAuth and SSO profiles, imports and the CLI set names directly on the models."""
    spoof = f"{BIDI}rotaredoM{ZERO_WIDTH}"
    user = User(display_name=spoof)
    identity = Identity(provider="sso:site", subject="1", user=user, display_name=spoof)
    db_session.add_all([user, identity])
    db_session.commit()
    db_session.expire_all()
    assert db_session.get(User, user.id).display_name == "rotaredoM"
    assert db_session.get(Identity, identity.id).display_name == "rotaredoM"
    assert User(display_name=BIDI + ZERO_WIDTH).display_name == "Reader"


# --- SQL-looking text ---------------------------------------------------------------------------


def test_sql_strings_are_stored_and_shown_verbatim_and_match_literally(
    client: FlaskClient, world: World, db_session: scoped_session[Any]
) -> None:
    for n, text in enumerate(SQL_STRINGS):
        answer = client.post(
            "/api/v1/comments",
            json={
                "site": world.site.key,
                "url": URL,
                "title": text,
                "body": f"{text} #{n}",
                "name": text,
                "email": f"g{n}@example.org",
            },
        )
        assert answer.status_code in (201, 202), (text, answer.get_json())
        assert answer.get_json()["comment"]["author"]["name"] == clean_name(text)
    db_session.expire_all()
    stored = db_session.scalars(sa.select(Comment.body).order_by(Comment.id)).all()
    assert stored == [f"{text} #{n}" for n, text in enumerate(SQL_STRINGS)]
    assert db_session.scalar(sa.select(sa.func.count(User.id))) == 2  # no DELETE ran
    assert db_session.scalar(sa.select(Thread.title)) == SQL_STRINGS[0]

    # Filters compare literally: wildcards and quotes find nothing, never everything.
    admin = bearer(world.admin_token)
    for text in ("%", "_", "' OR 1=1 --", "\\", "%@example.org"):
        for name in ("author_email", "article", "reason"):
            answer = client.get(
                "/api/v1/moderation/queue", query_string={name: text}, headers=admin
            )
            assert answer.status_code in (200, 422), (name, text, answer.status_code)
            if answer.status_code == 200:
                assert answer.get_json()["comments"] == [], (name, text)
        listed = client.get("/api/v1/comments", query_string={"site": world.site.key, "url": text})
        assert listed.status_code in (400, 404, 422), text
        assert client.get(f"/articles/{text}").status_code == 404
    # The real values do match, so the filters above were live.
    exact = client.get(
        "/api/v1/moderation/queue",
        query_string={"author_email": "g0@example.org"},  # guests' comments are held
        headers=admin,
    )
    assert [c["body"] for c in exact.get_json()["comments"]] == [f"{SQL_STRINGS[0]} #0"]
