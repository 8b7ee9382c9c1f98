"""Races on PostgreSQL: threads, each with its own app context and session, acting at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import scoped_session

from auth.models import SiteMembership, SiteRole, User
from moderation import service
from moderation.extensions import db
from moderation.models import Comment, Decision, Thread
from moderation.policy import SiteSettings
from moderation.status import Action, Status

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]

pytestmark = pytest.mark.usefixtures("postgres_only")


def run_at_once(app: Flask, count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released together; each result or exception."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def target(index: int) -> None:
        with app.app_context():  # its own session, closed when the context ends
            barrier.wait()
            try:
                results[index] = work(index)
            except Exception as exc:  # collected and checked by the test
                results[index] = exc

    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return results


def test_two_moderators_deciding_at_once_exactly_one_wins(
    app: Flask, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site(settings=SiteSettings(flood_seconds=0).to_dict())
    moderators = []
    for name in ("First", "Second"):
        user = factory.user(display_name=name)
        db_session.add(SiteMembership(user=user, site=site, role=SiteRole.MODERATOR))
        moderators.append(user.id)
    db_session.commit()
    thread = factory.thread(site)
    actions = (Action.APPROVE, Action.REJECT)
    # Several rounds: a race that goes right once by luck should not pass.
    for round_number in range(5):
        comment_id = factory.comment(thread, status=Status.PENDING, body=f"c{round_number}").id

        def work(index: int, comment_id: int = comment_id) -> Comment:
            moderator = db.session.get(User, moderators[index])
            return service.decide_comment(comment_id, actions[index], moderator)

        results = run_at_once(app, 2, work)
        wins = [r for r in results if isinstance(r, Comment)]
        conflicts = [r for r in results if isinstance(r, service.Conflict)]
        assert (len(wins), len(conflicts)) == (1, 1), results
        assert conflicts[0].status == 409
        assert "already decided by" in conflicts[0].message

        db_session.expire_all()
        stored = db_session.get(Comment, comment_id)
        human = db_session.scalars(
            sa.select(Decision).where(
                Decision.comment_id == comment_id, Decision.actor_id.is_not(None)
            )
        ).all()
        assert len(human) == 1
        assert stored.status == human[0].to_status
        assert stored.version == 2


def test_many_first_comments_on_a_new_article(
    app: Flask, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site(settings=SiteSettings(flood_seconds=0, first_comments_held=0).to_dict())
    authors = [factory.user().id for _ in range(20)]
    url = f"{site.origins[0]}/articles/breaking"

    def work(index: int) -> int:
        author = db.session.get(User, authors[index])
        comment, _ = service.submit_comment(
            service.NewComment(
                site_key=site.key,
                url=url,
                body=f"Reader {index} has a view on this: it is number {index}.",
                author=author,
            )
        )
        return comment.id

    results = run_at_once(app, 20, work)
    acknowledged = [r for r in results if isinstance(r, int)]
    assert len(acknowledged) == 20, [r for r in results if not isinstance(r, int)]

    db_session.expire_all()
    threads = db_session.scalars(sa.select(Thread).where(Thread.url == url)).all()
    assert len(threads) == 1
    stored = db_session.scalars(
        sa.select(Comment.id).where(Comment.thread_id == threads[0].id)
    ).all()
    assert sorted(stored) == sorted(acknowledged)  # each stored exactly once, none extra
    published = sum(
        1 for c in db_session.scalars(sa.select(Comment)) if c.status == Status.PUBLISHED
    )
    assert threads[0].comment_count == published
