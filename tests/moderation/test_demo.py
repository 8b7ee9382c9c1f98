"""``flask demo seed``: The Millbrook Courier, with every status, idempotent, and its pages."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import scoped_session

from auth.models import User
from moderation import demo
from moderation.models import Comment, Decision, Site, Thread
from moderation.status import Status

DBSession = scoped_session[Any]


def seeded(result: Result) -> dict[str, Any]:
    """The JSON summary a successful seed printed."""
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


@pytest.fixture
def summary(runner: FlaskCliRunner, clean_env: pytest.MonkeyPatch) -> dict[str, Any]:
    """The demo, seeded once."""
    return seeded(runner.invoke(args=["demo", "seed"]))


def test_seed_creates_every_status(summary: dict[str, Any], db_session: DBSession) -> None:
    assert summary["created"] is True
    assert summary["site"] == demo.DEMO_SITE_KEY
    assert summary["name"] == "The Millbrook Courier"
    assert summary["origins"] == ["http://127.0.0.1:5000", "http://localhost:5000"]
    counts = summary["comments"]
    assert set(counts) == {str(status) for status in Status}
    assert all(count > 0 for count in counts.values()), counts
    assert 24 <= sum(counts.values()) <= 48  # a few dozen

    site = db_session.scalar(sa.select(Site).where(Site.key == demo.DEMO_SITE_KEY))
    comments = db_session.scalars(sa.select(Comment).where(Comment.site_id == site.id)).all()
    assert {c.status for c in comments} == set(Status)
    # Posted through the service: real scores, model version and a system decision each.
    assert all(c.spam_score is not None and c.model_version for c in comments)
    assert any(c.reasons for c in comments)
    system = db_session.scalar(
        sa.select(sa.func.count(Decision.id)).where(
            Decision.site_id == site.id, Decision.actor_id.is_(None)
        )
    )
    human = db_session.scalar(
        sa.select(sa.func.count(Decision.id)).where(
            Decision.site_id == site.id, Decision.actor_id.is_not(None)
        )
    )
    assert system == len(comments)
    assert human >= 5
    # Replies, several authors, and counts that match the published comments.
    assert any(c.parent_id is not None for c in comments)
    assert len({c.author_id for c in comments}) >= 6
    for thread in db_session.scalars(sa.select(Thread).where(Thread.site_id == site.id)):
        published = [c for c in comments if c.thread_id == thread.id and c.status == "published"]
        assert thread.comment_count == len(published)
    # The flood limit is back on once seeding is done.
    assert site.moderation_settings.flood_seconds > 0


def test_seed_prints_the_accounts_and_their_tokens_work(
    summary: dict[str, Any], client: FlaskClient
) -> None:
    accounts = {account["role"]: account for account in summary["accounts"]}
    assert {"owner", "moderator"} <= set(accounts)
    for account in accounts.values():
        assert account["email"].endswith("@millbrook.example")
        assert account["token"].startswith("mod_")

    headers = {"Authorization": f"Bearer {accounts['moderator']['token']}"}
    me = client.get("/api/v1/me", headers=headers)
    assert me.json["user"]["sites"] == [
        {"key": demo.DEMO_SITE_KEY, "name": "The Millbrook Courier", "role": "moderator"}
    ]
    queue = client.get(
        "/api/v1/moderation/queue", query_string={"site": demo.DEMO_SITE_KEY}, headers=headers
    )
    assert len(queue.json["comments"]) == summary["comments"]["pending"]
    owner = {"Authorization": f"Bearer {accounts['owner']['token']}"}
    assert client.get(f"/api/v1/sites/{demo.DEMO_SITE_KEY}", headers=owner).status_code == 200


def test_seed_is_idempotent_and_resets_on_request(
    summary: dict[str, Any], runner: FlaskCliRunner, db_session: DBSession
) -> None:
    def rows() -> tuple[int, int, int]:
        return (
            db_session.scalar(sa.select(sa.func.count(Comment.id))),
            db_session.scalar(sa.select(sa.func.count(User.id))),
            db_session.scalar(sa.select(sa.func.count(Site.id))),
        )

    before = rows()
    again = seeded(runner.invoke(args=["demo", "seed"]))
    assert again["created"] is False
    assert "--reset" in again["message"]
    assert rows() == before

    reset = seeded(runner.invoke(args=["demo", "seed", "--reset"]))
    assert reset["created"] is True
    assert reset["comments"] == summary["comments"]
    assert rows() == before
    old_tokens = {a["token"] for a in summary["accounts"]}
    assert not old_tokens & {a["token"] for a in reset["accounts"]}


def test_article_pages_show_the_story_and_its_comments(
    summary: dict[str, Any], client: FlaskClient
) -> None:
    for article in summary["articles"]:
        story = demo.ARTICLES[article["path"].rsplit("/", 1)[1]]
        assert 4 <= len(story.paragraphs) <= 6
        page = client.get(article["path"]).get_data(as_text=True)
        assert story.author in page
        assert "<p>" + story.paragraphs[0][:40] in page.replace("&#39;", "'")
    bridge = client.get("/articles/council-backs-mill-race-footbridge").get_data(as_text=True)
    assert "Will the bridge be wide enough for cargo bikes" in bridge  # approved
    assert "pathetic moron" not in bridge  # rejected
    assert "bit.ly" not in bridge  # spam
    front = client.get("/").get_data(as_text=True)
    assert "The Millbrook Courier" in front


def test_port_from_the_environment_adds_origins(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PORT", "8123")
    assert demo.demo_origins() == [
        "http://127.0.0.1:8123",
        "http://localhost:8123",
        "http://127.0.0.1:5000",
        "http://localhost:5000",
    ]
    assert demo.demo_origins(5000) == ["http://127.0.0.1:5000", "http://localhost:5000"]


def test_article_text_only_for_the_demo_site() -> None:
    slug = next(iter(demo.ARTICLES))
    assert demo.article_for(demo.DEMO_SITE_KEY, slug) is demo.ARTICLES[slug]
    assert demo.article_for("another-site", slug) is None
    assert demo.article_for(demo.DEMO_SITE_KEY, "no-such-story") is None
