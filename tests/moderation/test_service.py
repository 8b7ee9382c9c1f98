"""The comment services: every refusal, routing with the shipped model, decisions, reads."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import scoped_session

import classifier
from auth.models import Role, SiteMembership, SiteRole, User
from moderation import scoring, service
from moderation.db import utcnow
from moderation.extensions import db
from moderation.models import ActorType, Comment, Decision, IpHashKey, Site, Thread
from moderation.policy import AuthorStanding, SiteSettings
from moderation.service import (
    Conflict,
    Forbidden,
    Invalid,
    NewComment,
    NotFound,
    TooManyRequests,
    Unauthorized,
)
from moderation.status import Action, Status

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]

CLEAN = "Thanks for covering the council meeting, very informative."
ABUSIVE = "You are a pathetic moron and an idiot, shut up"
SPAM = (
    "Make $5000 a week from home!!! Visit http://bit.ly/cash-now http://cash.example.biz "
    "subscribe now"
)
# Publish what the policy lets through, with no first-comment hold and no flood limit.
OPEN = {"first_comments_held": 0, "flood_seconds": 0}


def settings(**values: Any) -> dict[str, Any]:
    """Stored site settings: the defaults with ``values`` changed."""
    return SiteSettings().with_updates(values).to_dict()


@pytest.fixture
def site(factory: Factory) -> Site:
    """A site that publishes clean comments at once."""
    return factory.site(settings=settings(**OPEN))


@pytest.fixture
def author(factory: Factory) -> User:
    """A commenter."""
    return factory.user(display_name="Ada Reader")


def staff(factory: Factory, db_session: DBSession, site: Site, role: SiteRole, **kw: Any) -> User:
    """A user with ``role`` on ``site``."""
    user = factory.user(**kw)
    db_session.add(SiteMembership(user=user, site=site, role=role))
    db_session.commit()
    return user


def article(site: Site, slug: str = "story") -> str:
    """An article URL on the site's first origin."""
    return f"{site.origins[0]}/articles/{slug}"


def post(site: Site, author: User | None, body: str = CLEAN, **fields: Any) -> Comment:
    """Submit a comment through the service and return it."""
    fields.setdefault("url", article(site))
    comment, _ = service.submit_comment(
        NewComment(site_key=site.key, body=body, author=author, **fields)
    )
    return comment


def refusal(
    error: type[service.ServiceError], message: str, call: Any, *args: Any, **kw: Any
) -> Any:
    """Call and check the service refused with ``error`` whose message contains ``message``."""
    with pytest.raises(error) as caught:
        call(*args, **kw)
    assert message in caught.value.message, caught.value.message
    assert caught.value.status == error.status
    return caught.value


def set_settings(db_session: DBSession, site: Site, **values: Any) -> None:
    """Change some settings of ``site`` and commit."""
    site.moderation_settings = site.moderation_settings.with_updates(values)
    db_session.commit()


# --- refusals before anything is stored ----------------------------------------------------------


def test_unknown_site_is_not_found(db_session: DBSession, author: User) -> None:
    request = NewComment(site_key="nope", url="https://x.example/a", body=CLEAN, author=author)
    refusal(NotFound, "There is no site with the key “nope”", service.submit_comment, request)


def test_origin_must_be_one_of_the_sites(db_session: DBSession, site: Site, author: User) -> None:
    for origin in ("https://evil.example", "null", "https://news1.example.evil"):
        refusal(
            Forbidden,
            f"does not accept comments from pages on {origin}",
            post,
            site,
            author,
            origin=origin,
        )
    # The same origin written differently (case, default port) is the same origin.
    assert post(site, author, origin=site.origins[0].upper() + ":443").id is not None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://news1.example/a", "is not an article URL"),
        ("not a url", "is not an article URL"),
        ("https:///nohost", "is not an article URL"),
        ("https://user:pw@news1.example/a", "must not contain a user name or password"),
        ("https://elsewhere.example/a", "must be on one of the site's origins"),
        ("https://news1.example/" + "a" * 2100, "longer than 2048 characters"),
    ],
)
def test_article_url_must_be_a_web_address_on_the_site(
    db_session: DBSession, factory: Factory, author: User, url: str, message: str
) -> None:
    site = factory.site(origins=["https://news1.example"], settings=settings(**OPEN))
    error = refusal(Invalid, message, post, site, author, url=url)
    assert error.status == 422
    assert db_session.scalar(sa.select(sa.func.count(Thread.id))) == 0


def test_article_urls_are_canonical(db_session: DBSession, site: Site, author: User) -> None:
    base = site.origins[0]
    host = base.removeprefix("https://")
    first = post(site, author, "one", url=f"{base}/articles/x#comments")
    second = post(site, author, "two", url=f"HTTPS://{host.upper()}:443/articles/x")
    third = post(site, author, "three", url=f"{base}/articles/x?page=2")
    assert first.thread_id == second.thread_id != third.thread_id
    urls = set(db_session.scalars(sa.select(Thread.url)))
    assert urls == {f"{base}/articles/x", f"{base}/articles/x?page=2"}


def test_closed_thread_refuses_comments(
    db_session: DBSession, factory: Factory, site: Site, author: User
) -> None:
    thread = factory.thread(site, closed=True)
    refusal(Forbidden, "Comments are closed on this article.", post, site, author, url=thread.url)


def test_replies_need_a_published_parent_in_the_same_thread(
    db_session: DBSession, factory: Factory, site: Site, author: User
) -> None:
    parent = post(site, author, "parent")
    reply = post(site, author, "a reply", parent_id=parent.id)
    assert reply.parent_id == parent.id

    elsewhere = factory.comment(factory.thread(site))
    held = factory.comment(parent.thread, status=Status.PENDING)
    refusal(
        Invalid,
        "There is no comment 999999 on this article",
        post,
        site,
        author,
        "x",
        parent_id=999999,
    )
    refusal(
        Invalid,
        f"There is no comment {elsewhere.id} on this article",
        post,
        site,
        author,
        "y",
        parent_id=elsewhere.id,
    )
    refusal(
        Invalid,
        "You can only reply to a published comment.",
        post,
        site,
        author,
        "z",
        parent_id=held.id,
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "Comment is empty."),
        ("  \u202e\n\t ", "Comment is empty."),
        ("x" * 5001, "Comment is 5,001 characters; the limit is 5,000."),
    ],
)
def test_body_must_have_text_within_the_limit(
    db_session: DBSession, site: Site, author: User, body: str, message: str
) -> None:
    error = refusal(Invalid, message, post, site, author, body)
    assert error.extra["fields"] == {"body": [message]}


def test_title_is_limited(db_session: DBSession, site: Site, author: User) -> None:
    refusal(Invalid, "at most 500 characters", post, site, author, title="t" * 501)


def test_anonymous_needs_a_site_that_allows_guests(db_session: DBSession, site: Site) -> None:
    refusal(Unauthorized, "Sign in to comment on this site.", post, site, None)


def test_guests_need_a_name_and_an_email(
    db_session: DBSession, factory: Factory, app: Flask
) -> None:
    site = factory.site(settings=settings(allow_guests=True, **OPEN))
    refusal(Invalid, "Give a name", post, site, None, guest_email="g@example.org")
    refusal(Invalid, "Give an e-mail address", post, site, None, guest_name="Gus")
    refusal(
        Invalid,
        "is not an e-mail address",
        post,
        site,
        None,
        guest_name="Gus",
        guest_email="gus at example",
    )

    first = post(site, None, guest_name="  Gus   Guest ", guest_email="Gus@Example.org")
    assert (first.author_id, first.author_name, first.guest_email) == (
        None,
        "Gus Guest",
        "gus@example.org",
    )
    assert first.status == Status.PENDING
    assert [r["code"] for r in first.reasons] == ["guest"]

    # Once a comment from that address is approved, the guest is no longer held as a guest.
    moderator = staff(factory, db_session, site, SiteRole.MODERATOR)
    service.decide_comment(first.id, Action.APPROVE, moderator)
    second = post(site, None, "Another thought.", guest_name="Gus", guest_email="gus@example.org")
    assert second.status == Status.PUBLISHED


def test_banned_and_suspended_users_cannot_comment(
    db_session: DBSession, factory: Factory, site: Site
) -> None:
    banned = factory.user(banned=True)
    refusal(Forbidden, "Your account is banned from commenting.", post, site, banned)

    until = datetime(2999, 1, 2, 3, 4, 5, tzinfo=UTC)
    suspended = factory.user(suspended_until=until)
    error = refusal(
        Forbidden,
        "Your account is suspended until 2999-01-02T03:04:05+00:00.",
        post,
        site,
        suspended,
    )
    assert error.extra == {"suspended_until": "2999-01-02T03:04:05+00:00"}

    served = factory.user(suspended_until=utcnow() - timedelta(minutes=1))
    assert post(site, served).status == Status.PUBLISHED


# --- repeats -----------------------------------------------------------------------------------


def test_the_same_text_twice_is_a_duplicate(
    db_session: DBSession, factory: Factory, site: Site, author: User
) -> None:
    first = post(site, author, "Same words here.")
    error = refusal(
        Conflict, "You already posted this comment", post, site, author, "  same   WORDS here. "
    )
    assert error.extra == {"comment_id": first.id}
    # Other people may say the same; so may the author once the window is off.
    assert post(site, factory.user(), "Same words here.").id
    set_settings(db_session, site, duplicate_minutes=0)
    assert post(site, author, "Same words here.").id


def test_duplicates_are_counted_within_the_window(
    db_session: DBSession, site: Site, author: User
) -> None:
    old = post(site, author, "An old remark.")
    old.created_at = utcnow() - timedelta(minutes=11)
    db_session.commit()
    assert post(site, author, "An old remark.").id != old.id


def test_flood_limit_asks_to_wait(
    db_session: DBSession, factory: Factory, site: Site, author: User
) -> None:
    set_settings(db_session, site, flood_seconds=30)
    post(site, author, "first")
    error = refusal(TooManyRequests, "You are commenting too fast", post, site, author, "second")
    assert 1 <= error.retry_after <= 30
    assert error.extra == {"retry_after": error.retry_after}
    # Per author, per site.
    assert post(site, factory.user(), "someone else").id
    assert post(factory.site(settings=settings(**OPEN)), author, "another site").id


def test_flood_limit_zero_is_off(db_session: DBSession, site: Site, author: User) -> None:
    for n in range(3):
        post(site, author, f"comment {n}")


# --- routing with the real shipped model ---------------------------------------------------


def test_clean_comment_is_published_and_counted(
    db_session: DBSession, site: Site, author: User
) -> None:
    comment, verdict = service.submit_comment(
        NewComment(site_key=site.key, url=article(site), title="Bridge", body=CLEAN, author=author)
    )
    assert verdict.status == comment.status == Status.PUBLISHED
    assert comment.reasons == []
    assert 0 <= comment.spam_score < 0.5 and 0 <= comment.abuse_score < 0.8
    assert comment.model_version == classifier.default_model().version
    thread = db_session.get(Thread, comment.thread_id)
    assert (thread.title, thread.comment_count) == ("Bridge", 1)


def test_abusive_comment_is_held(db_session: DBSession, factory: Factory, author: User) -> None:
    # The shipped model's abuse scores sit between about 0.4 (plain) and 0.8 (insults).
    site = factory.site(settings=settings(abuse_hold=0.6, **OPEN))
    comment = post(site, author, ABUSIVE)
    assert comment.status == Status.PENDING
    assert comment.abuse_score > post(site, author, CLEAN).abuse_score
    assert [r["code"] for r in comment.reasons] == ["abuse_score"]
    assert db_session.get(Thread, comment.thread_id).comment_count == 1  # only the clean one


def test_link_stuffed_spam_is_kept_out(db_session: DBSession, site: Site, author: User) -> None:
    comment = post(site, author, SPAM)
    assert comment.status in (Status.SPAM, Status.PENDING)
    codes = [r["code"] for r in comment.reasons]
    assert {"spam_reject", "spam_score"} & set(codes)
    assert "too_many_links" not in codes  # two links, the default limit


def test_first_comment_is_held_by_default(
    db_session: DBSession, factory: Factory, author: User
) -> None:
    site = factory.site(settings=settings(flood_seconds=0))
    first = post(site, author)
    assert first.status == Status.PENDING
    assert [r["code"] for r in first.reasons] == ["first_comment"]
    moderator = staff(factory, db_session, site, SiteRole.MODERATOR)
    service.decide_comment(first.id, Action.APPROVE, moderator)
    assert post(site, author, "And a second one.").status == Status.PUBLISHED


@pytest.mark.parametrize("junk", ["missing.skops", "junk.skops"])
def test_broken_model_holds_every_comment(
    database: Any, tmp_path: Path, clean_env: pytest.MonkeyPatch, junk: str
) -> None:
    from tests.conftest import dispose, empty_tables, make_test_app  # helpers, not fixtures

    path = tmp_path / junk
    if junk == "junk.skops":
        path.write_bytes(b"this is not a model file")
    app = make_test_app(database, tmp_path / "instance", {"CLASSIFIER_MODEL_PATH": str(path)})
    try:
        with app.app_context():
            empty_tables()
            db_session = db.session
            site = Site(name="S", origins=["https://s.example"], settings=settings(**OPEN))
            user = User(email="u@example.org", display_name="U")
            db_session.add_all([site, user])
            db_session.commit()
            comment = post(site, user)
            assert comment.status == Status.PENDING
            assert [r["code"] for r in comment.reasons] == ["classifier_unavailable"]
            assert (comment.spam_score, comment.abuse_score, comment.model_version) == (
                None,
                None,
                None,
            )
            assert not scoring.loaded()
            assert scoring.model_version() is None
    finally:
        dispose(app)


def test_what_is_stored_with_a_comment(
    db_session: DBSession, app: Flask, site: Site, author: User
) -> None:
    comment = post(site, author, "**Bold** claim", ip="203.0.113.9", user_agent="UA/" + "x" * 600)
    assert comment.body == "**Bold** claim"
    assert comment.html == "<p><strong>Bold</strong> claim</p>\n"
    assert comment.author_name == "Ada Reader"
    # Keyed with this period's random key and the salt (moderation/privacy.py).
    key = db_session.scalar(sa.select(IpHashKey.key))
    salt = app.config["MODERATION_IP_SALT"].encode()
    assert comment.ip_hash == hmac.new(key + salt, b"203.0.113.9", hashlib.sha256).hexdigest()
    assert "203.0.113.9" not in comment.ip_hash
    assert comment.user_agent == ("UA/" + "x" * 600)[:512]
    assert len(comment.body_hash) == 64

    (decision,) = comment.decisions
    assert decision.actor_type == ActorType.SYSTEM
    assert (decision.actor_id, decision.action, decision.from_status, decision.to_status) == (
        None,
        None,
        None,
        Status.PUBLISHED,
    )
    assert decision.reasons == comment.reasons == []


def test_rejections_count_against_an_author(
    db_session: DBSession, factory: Factory, author: User
) -> None:
    site = factory.site(settings=settings(trusted_after=1, flood_seconds=0))
    moderator = staff(factory, db_session, site, SiteRole.MODERATOR)
    first = post(site, author, "first")
    service.decide_comment(first.id, Action.APPROVE, moderator)
    trusted = post(site, author, "second")  # one approval, no rejection: trusted
    assert trusted.status == Status.PUBLISHED
    service.decide_comment(trusted.id, Action.REJECT, moderator)
    # One approved comment (the first) and a recent rejection: no longer trusted, but past
    # the first-comment hold.
    who = service._Identity(author, author.display_name, None)
    assert service._standing(site, who) == AuthorStanding(approved=1, rejected=1)
    assert post(site, author, "third").status == Status.PUBLISHED


def test_a_failed_race_is_retried_once(db_session: DBSession) -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise sa.exc.IntegrityError("INSERT", {}, Exception("unique"))
        return "done"

    assert service._in_transaction(flaky) == "done"
    assert len(calls) == 2

    def always() -> str:
        raise sa.exc.IntegrityError("INSERT", {}, Exception("unique"))

    with pytest.raises(sa.exc.IntegrityError):
        service._in_transaction(always)


# --- decisions ----------------------------------------------------------------------------------


@pytest.fixture
def held(db_session: DBSession, factory: Factory, author: User) -> Comment:
    """A comment the system held (its first-comment rule)."""
    site = factory.site(settings=settings(flood_seconds=0))
    return post(site, author)


def test_first_human_decision_on_a_held_comment_succeeds(
    db_session: DBSession, factory: Factory, held: Comment
) -> None:
    moderator = staff(factory, db_session, held.site, SiteRole.MODERATOR, display_name="Mo")
    decided = service.decide_comment(
        held.id, Action.APPROVE, moderator, expected_version=held.version, reason="  fine  "
    )
    assert decided.status == Status.PUBLISHED
    assert decided.version == 2
    assert db_session.get(Thread, held.thread_id).comment_count == 1
    system, human = decided.decisions
    assert system.actor_type == ActorType.SYSTEM and system.action is None
    assert (human.actor_type, human.actor_id, human.action) == (
        ActorType.USER,
        moderator.id,
        Action.APPROVE,
    )
    assert (human.from_status, human.to_status) == (Status.PENDING, Status.PUBLISHED)
    assert human.reasons == [
        {"code": "moderator_approve", "message": "approve by Mo"},
        {"code": "moderator_note", "message": "fine"},
    ]


def test_second_decision_is_a_conflict_naming_the_first(
    db_session: DBSession, factory: Factory, held: Comment
) -> None:
    first = staff(factory, db_session, held.site, SiteRole.MODERATOR, display_name="First Mod")
    second = staff(factory, db_session, held.site, SiteRole.OWNER)
    service.decide_comment(held.id, Action.REJECT, first)
    decided_at = db_session.scalar(
        sa.select(Decision.created_at).where(Decision.actor_id == first.id)
    ).isoformat(timespec="seconds")
    error = refusal(
        Conflict,
        f"already decided by First Mod at {decided_at}",
        service.decide_comment,
        held.id,
        Action.APPROVE,
        second,
    )
    assert error.extra == {
        "status": "rejected",
        "version": 2,
        "decided_by": "First Mod",
        "decided_at": decided_at,
    }
    assert db_session.get(Comment, held.id).status == Status.REJECTED


def test_decision_on_a_stale_version_is_a_conflict(
    db_session: DBSession, factory: Factory, held: Comment
) -> None:
    moderator = staff(factory, db_session, held.site, SiteRole.MODERATOR)
    error = refusal(
        Conflict,
        "changed since you loaded it",
        service.decide_comment,
        held.id,
        Action.APPROVE,
        moderator,
        expected_version=held.version + 1,
    )
    assert error.extra == {"status": "pending", "version": 1}


def test_published_comment_can_be_taken_down_and_the_count_follows(
    db_session: DBSession, factory: Factory, site: Site, author: User
) -> None:
    comment = post(site, author)
    moderator = staff(factory, db_session, site, SiteRole.MODERATOR)
    service.decide_comment(comment.id, Action.SPAM, moderator)
    assert db_session.get(Thread, comment.thread_id).comment_count == 0


def test_only_the_sites_staff_may_decide(
    db_session: DBSession, factory: Factory, held: Comment, author: User
) -> None:
    refusal(Forbidden, "Only moderators", service.decide_comment, held.id, Action.APPROVE, author)
    other = staff(factory, db_session, factory.site(), SiteRole.OWNER)
    refusal(
        NotFound,
        f"There is no comment {held.id} that you moderate",
        service.decide_comment,
        held.id,
        Action.APPROVE,
        other,
    )
    moderator = staff(factory, db_session, held.site, SiteRole.MODERATOR)
    refusal(
        NotFound,
        "There is no comment 999999",
        service.decide_comment,
        999999,
        Action.APPROVE,
        moderator,
    )
    refusal(
        NotFound,
        "that you moderate",
        service.decide_comment,
        held.id,
        Action.APPROVE,
        moderator,
        site_keys={"another"},
    )
    admin = factory.user(role=Role.ADMIN)
    assert service.decide_comment(held.id, Action.SPAM, admin).status == Status.SPAM


def test_decision_reason_is_limited(db_session: DBSession, factory: Factory, held: Comment) -> None:
    moderator = staff(factory, db_session, held.site, SiteRole.MODERATOR)
    refusal(
        Invalid,
        "at most 500 characters",
        service.decide_comment,
        held.id,
        Action.REJECT,
        moderator,
        reason="r" * 501,
    )


# --- reading ------------------------------------------------------------------------------------


def make_thread_comments(factory: Factory, site: Site, count: int) -> tuple[Thread, list[int]]:
    """``count`` published comments (with ties in created_at) and a few hidden ones."""
    thread = factory.thread(site)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = []
    for n in range(count):
        # Pairs share a timestamp, so the id must break ties.
        when = start + timedelta(minutes=n // 2)
        ids.append(factory.comment(thread, created_at=when).id)
        if n % 4 == 0:
            factory.comment(thread, status=Status.PENDING, created_at=when)
    return thread, ids


@pytest.mark.parametrize("sort", ["oldest", "newest"])
def test_pages_cover_the_thread_without_gaps_or_repeats(
    db_session: DBSession, factory: Factory, site: Site, sort: str
) -> None:
    thread, ids = make_thread_comments(factory, site, 11)
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        page = service.list_comments(site.key, thread.url, sort, cursor, 3)
        seen += [c.id for c in page.comments]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == (ids if sort == "oldest" else ids[::-1])
    assert pages == 4
    assert page.thread is not None and page.thread.id == thread.id


def test_listing_refuses_bad_input(db_session: DBSession, factory: Factory, site: Site) -> None:
    thread, _ = make_thread_comments(factory, site, 3)
    page = service.list_comments(site.key, thread.url, "oldest", None, 1)
    refusal(
        Invalid,
        "cursor is not valid",
        service.list_comments,
        site.key,
        thread.url,
        "newest",
        page.next_cursor,
        1,
    )
    refusal(
        Invalid,
        "cursor is not valid",
        service.list_comments,
        site.key,
        thread.url,
        "oldest",
        "garbage!",
        1,
    )
    refusal(
        Invalid,
        "limit must be from 1 to 200",
        service.list_comments,
        site.key,
        thread.url,
        "oldest",
        None,
        0,
    )
    refusal(Invalid, "sort must be", service.list_comments, site.key, thread.url, "best")
    refusal(NotFound, "no site", service.list_comments, "nope", thread.url)


def test_listing_an_article_without_comments_is_empty(db_session: DBSession, site: Site) -> None:
    page = service.list_comments(site.key, article(site, "new"))
    assert (page.comments, page.next_cursor, page.thread) == ([], None, None)


def test_counts(db_session: DBSession, factory: Factory, site: Site, author: User) -> None:
    post(site, author, "one", url=article(site, "a"))
    post(site, author, "two", url=article(site, "a") + "#c")
    post(site, author, "three", url=article(site, "b"))
    urls = [article(site, "a"), article(site, "b") + "#x", article(site, "c"), "not a url"]
    assert service.comment_counts(site.key, urls) == dict(zip(urls, [2, 1, 0, 0], strict=True))
    refusal(Invalid, "at most 100 URLs", service.comment_counts, site.key, ["u"] * 101)
    refusal(NotFound, "no site", service.comment_counts, "nope", urls)


def test_queue_is_oldest_first_per_site(
    db_session: DBSession, factory: Factory, site: Site
) -> None:
    thread = factory.thread(site)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    held = [
        factory.comment(thread, status=Status.PENDING, created_at=start + timedelta(minutes=n)).id
        for n in (3, 1, 2)
    ]
    factory.comment(thread, status=Status.SPAM)
    factory.comment(factory.thread(factory.site()), status=Status.PENDING)
    moderator = staff(factory, db_session, site, SiteRole.MODERATOR)

    first = service.moderation_queue(site.key, actor=moderator, limit=2)
    rest = service.moderation_queue(site.key, actor=moderator, cursor=first.next_cursor)
    assert [c.id for c in first.comments + rest.comments] == [held[1], held[2], held[0]]
    assert rest.next_cursor is None
    spam = service.moderation_queue(site.key, actor=moderator, status=Status.SPAM)
    assert [c.status for c in spam.comments] == [Status.SPAM]


def test_queue_is_for_the_sites_staff(
    db_session: DBSession, factory: Factory, site: Site, author: User
) -> None:
    refusal(Forbidden, "Only moderators", service.moderation_queue, site.key, actor=author)
    other = staff(factory, db_session, factory.site(), SiteRole.MODERATOR)
    refusal(NotFound, "that you moderate", service.moderation_queue, site.key, actor=other)
    admin = factory.user(role=Role.ADMIN)
    assert service.moderation_queue(site.key, actor=admin).comments == []


# --- sites --------------------------------------------------------------------------------------


def test_owner_updates_site(db_session: DBSession, factory: Factory, site: Site) -> None:
    owner = staff(factory, db_session, site, SiteRole.OWNER)
    updated, role = service.update_site(
        site.key,
        owner,
        name="  The   Gazette ",
        origins=["HTTPS://Gazette.example:443", "https://gazette.example"],
        settings={"mode": "pre", "max_links": 0},
    )
    assert role == "owner"
    db_session.expire_all()
    stored = db_session.get(Site, updated.id)
    assert stored.name == "The Gazette"
    assert stored.origins == ["https://gazette.example"]
    assert (stored.moderation_settings.mode, stored.moderation_settings.max_links) == ("pre", 0)
    assert stored.moderation_settings.first_comments_held == 0  # untouched


def test_site_updates_are_checked(db_session: DBSession, factory: Factory, site: Site) -> None:
    owner = staff(factory, db_session, site, SiteRole.OWNER)
    moderator = staff(factory, db_session, site, SiteRole.MODERATOR)
    refusal(
        Invalid,
        "spam_hold must be a number from 0 to 1",
        service.update_site,
        site.key,
        owner,
        settings={"spam_hold": 2},
    )
    refusal(
        Invalid,
        "Unknown setting “colour”",
        service.update_site,
        site.key,
        owner,
        settings={"colour": "red"},
    )
    refusal(
        Invalid, "is not an origin", service.update_site, site.key, owner, origins=["news.example"]
    )
    refusal(Invalid, "at least one origin", service.update_site, site.key, owner, origins=[])
    refusal(Forbidden, "Only the site's owners", service.update_site, site.key, moderator, name="X")
    refusal(NotFound, "that you manage", service.update_site, site.key, factory.user(), name="X")
    db_session.expire_all()
    assert db_session.get(Site, site.id).moderation_settings.spam_hold == SiteSettings().spam_hold


# --- the classifier -----------------------------------------------------------------------------


def test_model_is_loaded_once_and_shared(db_session: DBSession) -> None:
    first = scoring.score_comment(CLEAN)
    second = scoring.score_comment(ABUSIVE)
    assert first is not None and second is not None
    assert scoring.loaded()
    assert scoring.model_version() == first.model_version == classifier.default_model().version
    assert scoring._models[scoring.model_path()] is classifier.default_model()
    assert 0 <= first.spam <= 1 and 0 <= second.abuse <= 1


def test_scoring_failure_is_none(db_session: DBSession, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(texts: list[str]) -> list[dict[str, float]]:
        raise RuntimeError("boom")

    scoring.score_comment("warm up")
    model = scoring._models[scoring.model_path()]
    monkeypatch.setattr(model, "score", explode)
    assert scoring.score_comment("anything") is None
