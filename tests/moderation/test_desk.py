"""The review desk services: queues, counts, cards, authors, actions, bulk decisions and undo."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import scoped_session

from auth.models import Identity, Role, SiteMembership, SiteRole, User
from auth.permissions import Permission, can, comment_refusal
from moderation import desk, service
from moderation.db import utcnow
from moderation.desk import AuthorKey, QueueFilter
from moderation.extensions import db
from moderation.models import (
    AuthorEvent,
    AuthorNote,
    Comment,
    Decision,
    Report,
    ReportReason,
    Site,
    SiteAuthor,
    Thread,
)
from moderation.policy import SiteSettings
from moderation.service import Conflict, Forbidden, Invalid, NewComment, NotFound
from moderation.status import Action, Status

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]

ABUSIVE = "You are a pathetic moron and an idiot, shut up"
CLEAN = "Thanks for covering the council meeting, very informative."


def settings(**values: Any) -> dict[str, Any]:
    """Stored site settings: the defaults with ``values`` changed."""
    return SiteSettings().with_updates(values).to_dict()


@pytest.fixture
def site(factory: Factory) -> Site:
    """A site that publishes clean comments at once."""
    return factory.site(name="Gazette", settings=settings(first_comments_held=0, flood_seconds=0))


def staff(factory: Factory, session: DBSession, site: Site, role: SiteRole, name: str) -> User:
    """A user with ``role`` on ``site``."""
    user = factory.user(display_name=name)
    session.add(SiteMembership(user=user, site=site, role=role))
    session.commit()
    return user


@pytest.fixture
def moderator(factory: Factory, db_session: DBSession, site: Site) -> User:
    """The site's moderator."""
    return staff(factory, db_session, site, SiteRole.MODERATOR, "Mo Derator")


@pytest.fixture
def author(factory: Factory) -> User:
    """A commenter."""
    return factory.user(display_name="Ada Reader")


def held(factory: Factory, thread: Thread, **fields: Any) -> Comment:
    """A pending comment on ``thread``."""
    fields.setdefault("status", Status.PENDING)
    return factory.comment(thread, **fields)


def ids(page: desk.DeskPage) -> list[int]:
    """The comment ids of a page."""
    return [comment.id for comment in page.comments]


def everything(actor: User, what: QueueFilter, limit: int = 2) -> list[int]:
    """Every id of a queue, walking its pages."""
    found: list[int] = []
    cursor = None
    while True:
        page = desk.queue(actor, (), what, cursor, limit)
        found += ids(page)
        cursor = page.next_cursor
        if cursor is None:
            return found


# --- queues ----------------------------------------------------------------------------------


def test_each_queue_holds_its_comments(
    factory: Factory, site: Site, moderator: User, db_session: DBSession
) -> None:
    thread = factory.thread(site)
    pending = held(factory, thread)
    spam = factory.comment(thread, status=Status.SPAM)
    published = factory.comment(thread)
    rejected = factory.comment(thread, status=Status.REJECTED)
    reported = factory.comment(thread, needs_review=True, report_count=3)
    factory.comment(thread, status=Status.DELETED)
    factory.comment(factory.thread(factory.site()), status=Status.PENDING)  # another site

    def queue(name: str) -> list[int]:
        return ids(desk.queue(moderator, [site.key], QueueFilter(queue=name)))

    assert queue("pending") == [pending.id]
    assert queue("spam") == [spam.id]
    assert queue("approved") == [published.id, reported.id]
    assert queue("rejected") == [rejected.id]
    assert queue("reported") == [reported.id]
    # Without sites: every site the moderator works on (only this one).
    assert ids(desk.queue(moderator)) == [pending.id]


def test_filters(factory: Factory, site: Site, moderator: User, author: User) -> None:
    story, other = factory.thread(site), factory.thread(site)
    abusive = held(
        factory,
        story,
        abuse_score=0.9,
        spam_score=0.1,
        author_id=author.id,
        reasons=[{"code": "abuse_score", "message": "abuse score 0.90 ..."}],
    )
    spammy = held(
        factory,
        other,
        abuse_score=0.2,
        spam_score=0.8,
        reasons=[
            {"code": "spam_score", "message": "spam score 0.80 ..."},
            {"code": "too_many_links", "message": "3 links"},
        ],
    )
    guest = held(factory, other, abuse_score=0.5, spam_score=0.5, guest_email="g@example.org")

    def find(**fields: Any) -> list[int]:
        return ids(desk.queue(moderator, [site.key], QueueFilter(**fields)))

    assert find(article=story.url) == [abusive.id]
    assert find(article=story.url + "#comments") == [abusive.id]  # canonical form
    assert find(reason="too_many_links") == [spammy.id]
    assert find(reason="abuse_score") == [abusive.id]
    assert find(reason="first_comment") == []
    assert find(author_id=author.id) == [abusive.id]
    assert find(author_email="G@Example.org") == [guest.id]
    assert find(min_abuse=0.5) == [abusive.id, guest.id]
    assert find(max_abuse=0.5) == [spammy.id, guest.id]
    assert find(min_spam=0.5, max_spam=0.6) == [guest.id]
    for bad in (
        {"queue": "deleted"},
        {"sort": "random"},
        {"reason": "DROP TABLE"},
        {"min_abuse": 1.5},
        {"min_spam": 0.8, "max_spam": 0.2},
    ):
        with pytest.raises(Invalid):
            QueueFilter(**bad)


def test_sorts(factory: Factory, site: Site, moderator: User) -> None:
    thread = factory.thread(site)
    start = utcnow() - timedelta(hours=1)
    # (abuse, spam, reports) of a, b, c, d, posted a minute apart in that order
    keys = [(0.3, 0.9, 1), (0.9, 0.1, 5), (None, None, 0), (0.6, 0.5, 2)]
    a, b, c, d = (
        held(
            factory,
            thread,
            abuse_score=abuse,
            spam_score=spam,
            report_count=reports,
            created_at=start + timedelta(minutes=i),
        )
        for i, (abuse, spam, reports) in enumerate(keys)
    )

    def order(sort: str) -> list[int]:
        return everything(moderator, QueueFilter(sort=sort), limit=3)

    assert order("oldest") == [a.id, b.id, c.id, d.id]
    assert order("newest") == [d.id, c.id, b.id, a.id]
    assert order("abuse") == [b.id, d.id, a.id, c.id]  # unscored last
    assert order("spam") == [a.id, d.id, b.id, c.id]
    assert order("reports") == [b.id, d.id, a.id, c.id]


@pytest.mark.parametrize("sort", desk.SORTS)
def test_keyset_pages_have_no_duplicates_or_gaps_while_comments_arrive(
    factory: Factory, site: Site, moderator: User, sort: str
) -> None:
    thread = factory.thread(site)
    moment = utcnow() - timedelta(minutes=5)
    scores = [0.5, 0.5, 0.7, 0.5, 0.2, 0.7, 0.9, 0.5]  # ties on every sort key
    existing = {
        held(
            factory,
            thread,
            created_at=moment if i % 2 else moment + timedelta(seconds=i),
            abuse_score=score,
            spam_score=score,
            report_count=int(score * 10),
        ).id
        for i, score in enumerate(scores)
    }
    what = QueueFilter(sort=sort)
    seen: list[int] = []
    page = desk.queue(moderator, [site.key], what, None, 3)
    seen += ids(page)
    arrivals = 0
    while page.next_cursor is not None:
        # New comments between page loads, with the same keys as those already listed.
        arrivals += 1
        held(factory, thread, created_at=moment, abuse_score=0.5, spam_score=0.5, report_count=5)
        page = desk.queue(moderator, [site.key], what, page.next_cursor, 3)
        seen += ids(page)
    assert arrivals >= 2
    assert len(seen) == len(set(seen)), "a comment was listed twice"
    assert existing <= set(seen), "a comment was skipped"


def test_a_cursor_belongs_to_its_queue_and_sort(
    factory: Factory, site: Site, moderator: User
) -> None:
    thread = factory.thread(site)
    for _ in range(3):
        held(factory, thread, abuse_score=0.4)
    cursor = desk.queue(moderator, [site.key], QueueFilter(sort="abuse"), None, 1).next_cursor
    assert cursor
    with pytest.raises(Invalid, match="cursor is not valid"):
        desk.queue(moderator, [site.key], QueueFilter(sort="oldest"), cursor, 1)
    with pytest.raises(Invalid, match="cursor is not valid"):
        desk.queue(moderator, [site.key], QueueFilter(queue="spam", sort="abuse"), cursor, 1)
    with pytest.raises(Invalid, match="cursor is not valid"):
        desk.queue(moderator, [site.key], QueueFilter(), "bm90IGpzb24", 1)


def test_queue_permissions(
    factory: Factory, site: Site, moderator: User, author: User, db_session: DBSession
) -> None:
    other = factory.site(name="Herald")
    with pytest.raises(Forbidden, match="Only moderators"):
        desk.queue(author, [site.key])
    with pytest.raises(NotFound, match="that you moderate"):
        desk.queue(moderator, [other.key])
    with pytest.raises(NotFound, match="that you moderate"):
        desk.queue(moderator, ["no-such-site"])
    admin = factory.user(role=Role.ADMIN)
    assert {s.key for s in desk.queue(admin).sites} == {site.key, other.key}


# --- counts ----------------------------------------------------------------------------------


def test_counts_are_cached_and_forgotten_after_a_decision(
    factory: Factory, site: Site, moderator: User, db_session: DBSession
) -> None:
    thread = factory.thread(site)
    first = held(factory, thread)
    held(factory, thread)
    factory.comment(thread, status=Status.SPAM)
    factory.comment(thread, needs_review=True)
    factory.comment(factory.thread(factory.site()), status=Status.PENDING)
    counts = desk.site_counts(moderator, [site.key])
    assert counts == {"pending": 2, "reported": 1, "spam": 1, "approved": 1, "rejected": 0}

    # Written behind the services' back: the cached counts stay as they were ...
    held(factory, thread)
    assert desk.site_counts(moderator, [site.key])["pending"] == 2
    # ... until a decision on the site forgets them.
    service.decide_comment(first.id, Action.REJECT, moderator)
    assert desk.site_counts(moderator, [site.key]) == {
        "pending": 2,
        "reported": 1,
        "spam": 1,
        "approved": 1,
        "rejected": 1,
    }


def test_counts_expire(
    app: Flask, factory: Factory, site: Site, moderator: User, db_session: DBSession
) -> None:
    app.config["MODERATION_COUNTS_TTL"] = 0
    thread = factory.thread(site)
    assert desk.site_counts(moderator, [site.key])["pending"] == 0
    held(factory, thread)
    assert desk.site_counts(moderator, [site.key])["pending"] == 1


def test_counts_of_several_sites_add_up(
    factory: Factory, db_session: DBSession, site: Site, moderator: User
) -> None:
    other = factory.site()
    db_session.add(SiteMembership(user=moderator, site=other, role=SiteRole.MODERATOR))
    db_session.commit()
    held(factory, factory.thread(site))
    held(factory, factory.thread(other))
    assert desk.site_counts(moderator)["pending"] == 2
    page = desk.queue(moderator, [site.key, other.key])
    assert page.counts["pending"] == 2 and len(page.comments) == 2


# --- cards -----------------------------------------------------------------------------------


def test_highlights_of_listed_words_and_the_classifier(
    factory: Factory, db_session: DBSession, author: User
) -> None:
    site = factory.site(
        settings=settings(
            first_comments_held=0,
            flood_seconds=0,
            suspect_words=["council"],
            banned_words=["moron"],
            abuse_hold=0.3,
        )
    )
    body = "The c0uncil is run by a pathetic m.o.r.o.n and an idiot"
    comment, _ = service.submit_comment(
        NewComment(site_key=site.key, url=f"{site.origins[0]}/a", body=body, author=author)
    )
    marks = desk.highlights(comment)
    assert marks, "nothing highlighted"
    pieces = {body[m.start : m.end]: m.source for m in marks}
    assert pieces.get("c0uncil") == "suspect_word"  # found through the obfuscation
    assert pieces.get("m.o.r.o.n") == "banned_word"
    # Sorted, inside the body, not overlapping.
    for left, right in itertools.pairwise(marks):
        assert left.end <= right.start
    assert all(0 <= m.start < m.end <= len(body) for m in marks)
    # The classifier's words show where its abuse score is why the comment is out.
    codes = {r["code"] for r in comment.reasons}
    if "abuse_score" in codes or "abuse_reject" in codes:
        assert any(m.source == "abuse" for m in marks)


def test_a_held_comment_is_explained_once_in_the_background(
    factory: Factory, db_session: DBSession, author: User
) -> None:
    site = factory.site(settings=settings(first_comments_held=0, flood_seconds=0, abuse_hold=0.55))
    url = f"{site.origins[0]}/a"
    held, _ = service.submit_comment(
        NewComment(site_key=site.key, url=url, body="You pathetic moron, idiot", author=author)
    )
    assert held.status == Status.PENDING
    db_session.expire_all()
    stored = db_session.get(Comment, held.id)
    # The job (inline under TESTING) stored the classifier's spans, without a new version.
    assert stored.explained, "no stored explanation"
    assert stored.version == 1
    shown = [m for m in desk.highlights(stored) if m.source == "abuse"]
    for start, end, source, _ in stored.explained:  # each stored span is on the card
        assert source == "abuse"
        assert any(m.start <= start and end <= m.end for m in shown), (start, end)
    assert any("idiot" in stored.body[m[0] : m[1]] for m in stored.explained)
    # The card reads what was stored rather than asking the classifier again.
    stored.explained = [[0, 3, "abuse", "stored"]]
    assert [(m.start, m.end, m.label) for m in desk.highlights(stored)] == [(0, 3, "stored")]

    published, _ = service.submit_comment(
        NewComment(site_key=site.key, url=url, body="Thanks for the report.", author=author)
    )
    assert published.status == Status.PUBLISHED
    assert db_session.get(Comment, published.id).explained is None  # nothing to explain


def test_overlapping_highlights_merge_into_the_most_severe() -> None:
    spans = [
        desk.Highlight(10, 15, "suspect_word", "vote"),
        desk.Highlight(0, 5, "spam", "buy"),
        desk.Highlight(12, 20, "abuse", "idiot"),
        desk.Highlight(3, 4, "banned_word", "x"),
        desk.Highlight(30, 40, "abuse", "outside"),  # beyond the body: dropped
    ]
    assert desk._merge(spans, 25) == [
        desk.Highlight(0, 5, "banned_word", "buy, x"),
        desk.Highlight(10, 20, "abuse", "vote, idiot"),
    ]


def test_no_classifier_highlights_without_a_score_reason(
    factory: Factory, site: Site, author: User
) -> None:
    comment = factory.comment(
        factory.thread(site), body=ABUSIVE, abuse_score=0.9, model_version="x", reasons=[]
    )
    assert desk.highlights(comment) == []


def test_cards_carry_the_parent_and_the_last_human_decision(
    factory: Factory, site: Site, moderator: User
) -> None:
    thread = factory.thread(site)
    parent = factory.comment(thread, author_name="Pat Parent", body="The parent.")
    reply = held(factory, thread, parent_id=parent.id)
    lone = held(factory, thread)
    service.decide_comment(reply.id, Action.REJECT, moderator)
    by_id = {card.comment.id: card for card in desk.cards([reply, lone])}
    assert by_id[reply.id].parent is not None and by_id[reply.id].parent.body == "The parent."
    decision = by_id[reply.id].last_decision
    assert decision is not None
    assert (decision.action, decision.actor_id) == (Action.REJECT, moderator.id)
    assert by_id[lone.id].parent is None and by_id[lone.id].last_decision is None


# --- decisions on reported comments -----------------------------------------------------------


def test_a_reported_comment_can_be_decided_again_and_leaves_the_queue(
    factory: Factory, site: Site, moderator: User, db_session: DBSession
) -> None:
    comment = held(factory, factory.thread(site))
    service.decide_comment(comment.id, Action.APPROVE, moderator)
    # Readers report it afterwards.
    stored = db_session.get(Comment, comment.id)
    stored.needs_review, stored.report_count = True, 3
    db_session.commit()
    other = staff(factory, db_session, site, SiteRole.OWNER, "Olive")
    decided = service.decide_comment(comment.id, Action.REJECT, other)
    assert decided.status == Status.REJECTED and decided.needs_review is False
    last = decided.decisions[-1]
    assert {"report_review_done", "moderator_reject"} <= {r["code"] for r in last.reasons}
    # And now it was decided by a person: a third decision without a version is a conflict.
    with pytest.raises(Conflict, match="already decided by Olive"):
        service.decide_comment(comment.id, Action.APPROVE, moderator)


def test_a_decision_with_the_current_version_overrides_an_earlier_one(
    factory: Factory, site: Site, moderator: User
) -> None:
    comment = held(factory, factory.thread(site))
    seen = service.decide_comment(comment.id, Action.APPROVE, moderator).version
    again = service.decide_comment(comment.id, Action.REJECT, moderator, expected_version=seen)
    assert again.status == Status.REJECTED
    with pytest.raises(Conflict, match="already decided by Mo Derator"):
        service.decide_comment(comment.id, Action.SPAM, moderator, expected_version=seen)


def test_notify_choice_is_recorded(factory: Factory, site: Site, moderator: User) -> None:
    comment = held(factory, factory.thread(site))
    decided = service.decide_comment(comment.id, Action.REJECT, moderator, notify=False)
    assert "no_notification" in {r["code"] for r in decided.decisions[-1].reasons}


# --- bulk decisions ---------------------------------------------------------------------------


def test_bulk_decisions_have_one_result_each(
    factory: Factory, site: Site, moderator: User, db_session: DBSession
) -> None:
    thread = factory.thread(site)
    first, second, third = (held(factory, thread) for _ in range(3))
    theirs = held(factory, factory.thread(factory.site()))
    owner = staff(factory, db_session, site, SiteRole.OWNER, "Olive")
    service.decide_comment(second.id, Action.APPROVE, owner)

    results = desk.decide_many(
        moderator,
        Action.SPAM,
        [(first.id, None), (second.id, None), (third.id, 1), (theirs.id, None), (999999, None)],
    )
    assert [(r.id, r.ok, r.status) for r in results] == [
        (first.id, True, 200),
        (second.id, False, 409),
        (third.id, True, 200),
        (theirs.id, False, 404),
        (999999, False, 404),
    ]
    assert "already decided by Olive" in (results[1].error or "")
    assert results[1].extra["decided_by"] == "Olive"
    db_session.expire_all()
    statuses = {c.id: c.status for c in db_session.scalars(sa.select(Comment))}
    assert statuses[first.id] == statuses[third.id] == Status.SPAM
    assert statuses[second.id] == Status.PUBLISHED and statuses[theirs.id] == Status.PENDING
    audit = db_session.scalars(
        sa.select(Decision.comment_id).where(Decision.actor_id == moderator.id)
    ).all()
    assert sorted(audit) == sorted([first.id, third.id])


def test_bulk_refusals(factory: Factory, site: Site, moderator: User, author: User) -> None:
    comment = held(factory, factory.thread(site))
    with pytest.raises(Invalid, match="at least one"):
        desk.decide_many(moderator, Action.APPROVE, [])
    with pytest.raises(Invalid, match="at most 100"):
        desk.decide_many(moderator, Action.APPROVE, [(i, None) for i in range(101)])
    with pytest.raises(Invalid, match="only once"):
        desk.decide_many(moderator, Action.APPROVE, [(comment.id, None), (comment.id, None)])
    with pytest.raises(Forbidden):
        desk.decide_many(author, Action.APPROVE, [(comment.id, None)])


# --- undo ------------------------------------------------------------------------------------


def test_undo_in_time_restores_the_comment(
    factory: Factory, site: Site, moderator: User, db_session: DBSession
) -> None:
    thread = factory.thread(site)
    comment = held(factory, thread)
    service.decide_comment(comment.id, Action.APPROVE, moderator)
    assert db_session.get(Thread, thread.id).comment_count == 1
    undone = desk.undo_decision(moderator, comment.id)
    assert undone.status == Status.PENDING
    db_session.expire_all()
    assert db_session.get(Thread, thread.id).comment_count == 0
    last = db_session.get(Comment, comment.id).decisions[-1]
    assert (last.action, last.actor_id) == (None, moderator.id)
    assert (last.from_status, last.to_status) == (Status.PUBLISHED, Status.PENDING)
    assert last.reasons[0]["code"] == "moderator_undo"
    # The comment is open again: anyone may decide on it.
    owner = staff(factory, db_session, site, SiteRole.OWNER, "Olive")
    assert service.decide_comment(comment.id, Action.REJECT, owner).status == Status.REJECTED
    # An undo cannot itself be undone.
    with pytest.raises(Conflict):
        desk.undo_decision(moderator, comment.id)


def test_undo_puts_a_reported_comment_back_in_the_reported_queue(
    factory: Factory, site: Site, moderator: User, db_session: DBSession
) -> None:
    comment = factory.comment(factory.thread(site), needs_review=True, report_count=4)
    service.decide_comment(comment.id, Action.REJECT, moderator)
    undone = desk.undo_decision(moderator, comment.id)
    assert (undone.status, undone.needs_review) == (Status.PUBLISHED, True)
    assert ids(desk.queue(moderator, [site.key], QueueFilter(queue="reported"))) == [comment.id]


def test_undo_too_late(
    factory: Factory, site: Site, moderator: User, db_session: DBSession
) -> None:
    comment = held(factory, factory.thread(site))
    service.decide_comment(comment.id, Action.REJECT, moderator)
    db_session.execute(
        sa.update(Decision)
        .where(Decision.comment_id == comment.id, Decision.actor_id == moderator.id)
        .values(created_at=utcnow() - timedelta(seconds=desk.UNDO_SECONDS + 1))
    )
    db_session.commit()
    with pytest.raises(Conflict, match="can be undone for 10 seconds"):
        desk.undo_decision(moderator, comment.id)
    db_session.expire_all()
    assert db_session.get(Comment, comment.id).status == Status.REJECTED


def test_undo_after_someone_else_decided(
    factory: Factory, site: Site, moderator: User, db_session: DBSession
) -> None:
    comment = held(factory, factory.thread(site))
    first = service.decide_comment(comment.id, Action.APPROVE, moderator)
    owner = staff(factory, db_session, site, SiteRole.OWNER, "Olive")
    service.decide_comment(comment.id, Action.REJECT, owner, expected_version=first.version)
    with pytest.raises(Conflict, match="already decided by Olive"):
        desk.undo_decision(moderator, comment.id)
    never = held(factory, factory.thread(site))
    with pytest.raises(Conflict, match="no decision"):
        desk.undo_decision(moderator, never.id)
    stranger = staff(factory, db_session, factory.site(), SiteRole.MODERATOR, "Otto")
    with pytest.raises(NotFound):
        desk.undo_decision(stranger, comment.id)


# --- authors ---------------------------------------------------------------------------------


def test_author_summary_counts_their_record_on_the_site(
    factory: Factory, site: Site, moderator: User, author: User, db_session: DBSession
) -> None:
    thread = factory.thread(site)
    for status in (Status.PUBLISHED, Status.PUBLISHED, Status.REJECTED, Status.PENDING):
        factory.comment(thread, author_id=author.id, status=status)
    theirs = factory.comment(thread, author_id=author.id, report_count=1)
    factory.comment(factory.thread(factory.site()), author_id=author.id)  # another site
    reader = factory.user()
    db_session.add_all(
        [
            Report(
                comment_id=theirs.id,
                site_id=site.id,
                reporter_id=reader.id,
                reason=ReportReason.ABUSE,
            ),
            Identity(user=author, provider="email", subject=author.email),
            Identity(user=author, provider=f"sso:{site.key}", subject="42"),
        ]
    )
    db_session.commit()
    summary = desk.author_summary(moderator, site.key, AuthorKey(user_id=author.id))
    assert (summary.approved, summary.rejected, summary.pending, summary.spam) == (3, 1, 1, 0)
    assert (summary.reports_received, summary.reports_made) == (1, 0)
    assert summary.login_methods == ["email", "sso"]
    assert summary.name == "Ada Reader" and summary.account_created_at == author.created_at
    assert summary.state["banned"] is False
    # A reader who never wrote on the site is not one of its authors.
    with pytest.raises(NotFound, match="no author"):
        desk.author_summary(moderator, site.key, AuthorKey(user_id=reader.id))


def test_author_data_is_only_for_the_sites_staff(
    factory: Factory, site: Site, moderator: User, author: User, db_session: DBSession
) -> None:
    factory.comment(factory.thread(site), author_id=author.id)
    key = AuthorKey(user_id=author.id)
    other = staff(factory, db_session, factory.site(), SiteRole.MODERATOR, "Otto")
    with pytest.raises(NotFound):
        desk.author_profile(other, site.key, key)
    with pytest.raises(NotFound):
        desk.act_on_author(other, site.key, key, "ban")
    with pytest.raises(NotFound):
        desk.add_note(other, site.key, key, "hello")
    with pytest.raises(Forbidden):
        desk.author_profile(author, site.key, key)


def test_notes_are_kept_and_audited(
    factory: Factory, site: Site, moderator: User, author: User, db_session: DBSession
) -> None:
    factory.comment(factory.thread(site), author_id=author.id)
    key = AuthorKey(user_id=author.id)
    note = desk.add_note(moderator, site.key, key, "  Warned about off-topic posts.  ")
    assert (note.body, note.moderator_id, note.site_id) == (
        "Warned about off-topic posts.",
        moderator.id,
        site.id,
    )
    profile = desk.author_profile(moderator, site.key, key)
    assert [n.body for n in profile.notes] == ["Warned about off-topic posts."]
    assert profile.summary.notes_count == 1
    assert [(e.action, e.actor_id) for e in profile.events] == [("note", moderator.id)]
    with pytest.raises(Invalid, match="Write the note"):
        desk.add_note(moderator, site.key, key, "   ")
    with pytest.raises(Invalid, match="at most 2000"):
        desk.add_note(moderator, site.key, key, "x" * 2001)


@pytest.mark.parametrize(
    ("action", "field", "value"),
    [
        ("ban", "banned", True),
        ("premoderate", "premoderate", True),
        ("trust", "trusted", True),
        ("shadow_ban", "shadow_banned", True),
    ],
)
def test_each_author_action_and_its_reverse(
    factory: Factory,
    site: Site,
    moderator: User,
    author: User,
    db_session: DBSession,
    action: str,
    field: str,
    value: bool,
) -> None:
    factory.comment(factory.thread(site), author_id=author.id)
    key = AuthorKey(user_id=author.id)
    summary = desk.act_on_author(moderator, site.key, key, action, message="Enough.")
    assert summary.state[field] is value
    reverse = desk.act_on_author(moderator, site.key, key, f"un{action}")
    assert reverse.state[field] is not value
    events = db_session.scalars(
        sa.select(AuthorEvent).where(AuthorEvent.user_id == author.id).order_by(AuthorEvent.id)
    ).all()
    assert [(e.action, e.actor_id, e.site_id) for e in events] == [
        (action, moderator.id, site.id),
        (f"un{action}", moderator.id, site.id),
    ]
    assert events[0].message == "Enough."
    row = db_session.scalar(sa.select(SiteAuthor).where(SiteAuthor.user_id == author.id))
    assert row.updated_by_id == moderator.id


def test_suspension_lasts_the_hours_given(
    factory: Factory, site: Site, moderator: User, author: User, db_session: DBSession
) -> None:
    factory.comment(factory.thread(site), author_id=author.id)
    key = AuthorKey(user_id=author.id)
    with pytest.raises(Invalid, match="how many hours"):
        desk.act_on_author(moderator, site.key, key, "suspend")
    with pytest.raises(Invalid, match="how many hours"):
        desk.act_on_author(moderator, site.key, key, "suspend", hours=9000)
    before = utcnow()
    summary = desk.act_on_author(moderator, site.key, key, "suspend", "Cool off.", hours=24)
    until = summary.state["suspended_until"]
    assert before + timedelta(hours=24) <= until <= utcnow() + timedelta(hours=24)
    event = db_session.scalar(sa.select(AuthorEvent).where(AuthorEvent.action == "suspend"))
    assert event.until == until and event.message == "Cool off."
    assert (
        desk.act_on_author(moderator, site.key, key, "unsuspend").state["suspended_until"] is None
    )


def test_trust_and_premoderation_exclude_each_other(
    factory: Factory, site: Site, moderator: User, author: User
) -> None:
    factory.comment(factory.thread(site), author_id=author.id)
    key = AuthorKey(user_id=author.id)
    desk.act_on_author(moderator, site.key, key, "trust")
    state = desk.act_on_author(moderator, site.key, key, "premoderate").state
    assert (state["premoderate"], state["trusted"]) == (True, False)


def test_actions_refused(
    factory: Factory, site: Site, moderator: User, author: User, db_session: DBSession
) -> None:
    factory.comment(factory.thread(site), author_id=author.id)
    owner = staff(factory, db_session, site, SiteRole.OWNER, "Olive")
    factory.comment(factory.thread(site), author_id=owner.id)
    with pytest.raises(Forbidden, match="cannot be acted on"):
        desk.act_on_author(moderator, site.key, AuthorKey(user_id=owner.id), "ban")
    with pytest.raises(Invalid, match="action must be"):
        desk.act_on_author(moderator, site.key, AuthorKey(user_id=author.id), "delete")
    with pytest.raises(Invalid, match="at most 1000"):
        desk.act_on_author(moderator, site.key, AuthorKey(user_id=author.id), "ban", "m" * 1001)
    assert db_session.scalar(sa.select(sa.func.count(AuthorEvent.id))) == 0


def test_guests_are_known_by_email(
    factory: Factory, site: Site, moderator: User, db_session: DBSession
) -> None:
    factory.comment(factory.thread(site), guest_email="guest@example.org", author_name="Gus")
    key = AuthorKey(guest_email="Guest@Example.org ")
    summary = desk.act_on_author(moderator, site.key, key, "ban", "No more.")
    assert (summary.id, summary.guest_email, summary.name) == (None, "guest@example.org", "Gus")
    assert summary.login_methods == ["guest"] and summary.state["banned"] is True
    desk.add_note(moderator, site.key, key, "Spams links.")
    assert db_session.scalar(sa.select(AuthorNote.guest_email)) == "guest@example.org"
    with pytest.raises(Invalid):
        AuthorKey()


def test_author_acted_signal(
    app: Flask, factory: Factory, site: Site, moderator: User, author: User
) -> None:
    factory.comment(factory.thread(site), author_id=author.id)
    heard: list[dict[str, Any]] = []

    def listen(sender: Any, **kwargs: Any) -> None:
        heard.append(kwargs)

    with desk.author_acted.connected_to(listen, sender=app):
        desk.act_on_author(moderator, site.key, AuthorKey(user_id=author.id), "ban", "Bye.")
    (got,) = heard
    assert got["event"].action == "ban" and got["author"].id == author.id
    assert got["site"].id == site.id and got["actor"].id == moderator.id


# --- the race on PostgreSQL ------------------------------------------------------------------


def run_at_once(app: Flask, count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``count`` threads released together; each result or exception."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def target(index: int) -> None:
        with app.app_context():
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


@pytest.mark.postgres_only
def test_two_moderators_bulk_deciding_the_same_comments_at_once(
    app: Flask, factory: Factory, site: Site, db_session: DBSession
) -> None:
    moderators = [
        staff(factory, db_session, site, SiteRole.MODERATOR, name).id for name in ("A", "B")
    ]
    thread = factory.thread(site)
    comments = [held(factory, thread, body=f"c{i}").id for i in range(6)]
    actions = (Action.APPROVE, Action.REJECT)

    def work(index: int) -> list[desk.BulkResult]:
        moderator = db.session.get(User, moderators[index])
        # Both load version 1 of every card and decide in opposite orders.
        order = comments if index == 0 else list(reversed(comments))
        return desk.decide_many(moderator, actions[index], [(cid, 1) for cid in order])

    first, second = run_at_once(app, 2, work)
    assert isinstance(first, list) and isinstance(second, list), (first, second)
    outcome: dict[int, list[bool]] = {cid: [] for cid in comments}
    for result in [*first, *second]:
        outcome[result.id].append(result.ok)
        if not result.ok:
            assert result.status == 409 and "already decided by" in (result.error or "")
    assert all(sorted(oks) == [False, True] for oks in outcome.values()), outcome
    db_session.expire_all()
    for cid in comments:
        human = db_session.scalars(
            sa.select(Decision).where(Decision.comment_id == cid, Decision.actor_id.is_not(None))
        ).all()
        assert len(human) == 1
        assert db_session.get(Comment, cid).status == human[0].to_status


@pytest.mark.postgres_only
def test_undo_and_a_second_decision_at_once(
    app: Flask, factory: Factory, site: Site, moderator: User, db_session: DBSession
) -> None:
    other = staff(factory, db_session, site, SiteRole.OWNER, "Olive").id
    comment_id, moderator_id = held(factory, factory.thread(site)).id, moderator.id
    seen = service.decide_comment(comment_id, Action.APPROVE, moderator).version

    def work(index: int) -> Any:
        if index == 0:
            return desk.undo_decision(db.session.get(User, moderator_id), comment_id)
        owner = db.session.get(User, other)
        return service.decide_comment(comment_id, Action.REJECT, owner, expected_version=seen)

    results = run_at_once(app, 2, work)
    wins = [r for r in results if isinstance(r, Comment)]
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert (len(wins), len(conflicts)) == (1, 1), results
    db_session.expire_all()
    assert db_session.get(Comment, comment_id).version == seen + 1


def test_counts_in_redis_are_shared_and_forgotten(
    app: Flask, factory: Factory, site: Site, moderator: User
) -> None:
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.exceptions.RedisError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    app.config["REDIS_URL"] = url
    thread = factory.thread(site)
    first = held(factory, thread)
    try:
        assert desk.site_counts(moderator, [site.key])["pending"] == 1
        # The cache is Redis, not this process: clearing the local one changes nothing.
        app.extensions.pop("desk_counts", None)
        held(factory, thread)
        assert desk.site_counts(moderator, [site.key])["pending"] == 1
        service.decide_comment(first.id, Action.APPROVE, moderator)
        assert desk.site_counts(moderator, [site.key])["pending"] == 1
        assert desk.site_counts(moderator, [site.key])["approved"] == 1
    finally:
        desk.invalidate_counts(site.id)


def test_site_bans_in_the_comment_rule_after_account_bans(
    factory: Factory, site: Site, moderator: User, author: User, db_session: DBSession
) -> None:
    factory.comment(factory.thread(site), author_id=author.id)
    key = AuthorKey(user_id=author.id)
    assert can(author, Permission.COMMENT, site)
    desk.act_on_author(moderator, site.key, key, "suspend", hours=1)
    assert comment_refusal(author, site).startswith(
        "You are suspended from commenting on this site until "
    )
    desk.act_on_author(moderator, site.key, key, "ban", "Enough.")
    assert comment_refusal(author, site) == "You are banned from commenting on this site. Enough."
    assert not can(author, Permission.COMMENT, site)
    assert comment_refusal(author, factory.site()) is None  # other sites are not affected
    author.banned = True  # an admin's account-wide ban is said first
    db_session.commit()
    assert comment_refusal(author, site) == "Your account is banned from commenting."
