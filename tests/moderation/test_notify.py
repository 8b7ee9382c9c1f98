"""E-mail notifications through a real SMTP server: decisions, replies, digests, unsubscribing."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeSerializer
from sqlalchemy.orm import scoped_session

from auth.models import ApiToken, SiteMembership, SiteRole, User
from moderation.db import utcnow
from moderation.extensions import db
from moderation.models import Comment, Site
from moderation.notify import (
    UNSUBSCRIBE_SALT,
    check_digest,
    read_unsubscribe_token,
    unsubscribe_token,
)
from moderation.policy import SiteSettings
from moderation.service import NewComment, decide_comment, submit_comment
from moderation.status import Action, Status
from tests.auth.smtp import Mailbox, free_port, smtp_server
from tests.conftest import TestDatabase, dispose, make_test_app

if TYPE_CHECKING:
    from tests.conftest import Factory

__all__ = ["smtp_server"]

DBSession = scoped_session[Any]
PUBLIC_URL = "https://comments.example"
UNSUBSCRIBE = re.compile(r"https://comments\.example/notifications/unsubscribe/[A-Za-z0-9_.-]+")
# Scores never reach 1.0, so only the rules under test hold a comment.
OPEN = {
    "spam_hold": 1.0,
    "spam_reject": 1.0,
    "abuse_hold": 1.0,
    "first_comments_held": 0,
    "flood_seconds": 0,
    "duplicate_minutes": 0,
}


@pytest.fixture
def app_config(smtp_server: Mailbox) -> dict[str, Any]:
    """Mail to the loopback server, jobs inline, links to a fixed public address."""
    return {**smtp_server.mail_config(), "JOBS_SYNC": True, "PUBLIC_URL": PUBLIC_URL}


class Newsroom:
    """A site with staff and readers, and shortcuts through the real services."""

    def __init__(self, factory: Factory, session: DBSession, **settings: Any) -> None:
        self.factory = factory
        self.session = session
        self.site = factory.site(name="Gazette")
        self.configure(**settings)
        self.moderator = self.staff(SiteRole.MODERATOR, "mod@gazette.example")
        self.owner = self.staff(SiteRole.OWNER, "owner@gazette.example")
        self.url = f"{self.site.origins[0]}/articles/harbour"
        self._n = 0

    def configure(self, **settings: Any) -> None:
        """Replace the site's settings (OPEN plus ``settings``)."""
        self.site.moderation_settings = SiteSettings(**{**OPEN, **settings})
        self.session.commit()

    def staff(self, role: SiteRole, email: str, verified: bool = True) -> User:
        """A verified staff member of the site."""
        user = self.factory.user(
            email=email, display_name=email.split("@")[0], email_verified=verified
        )
        self.session.add(SiteMembership(user=user, site=self.site, role=role))
        self.session.commit()
        return user

    def reader(self, email: str, verified: bool = True, **preferences: bool) -> User:
        """A commenter."""
        return self.factory.user(
            email=email,
            display_name=email.split("@")[0].title(),
            email_verified=verified,
            preferences=preferences,
        )

    def post(self, author: User | None, body: str | None = None, **fields: Any) -> Comment:
        """A comment through ``submit_comment``."""
        self._n += 1
        comment, _ = submit_comment(
            NewComment(
                site_key=self.site.key,
                url=self.url,
                title="Harbour festival draws record crowds",
                body=body or f"A thoughtful remark number {self._n} about the festival.",
                author=author,
                **fields,
            )
        )
        return comment

    def decide(self, comment: Comment, action: Action, reason: str | None = None) -> Comment:
        """A moderator's decision through ``decide_comment``."""
        return decide_comment(comment.id, action, self.moderator, reason=reason)


@pytest.fixture
def newsroom(factory: Factory, db_session: DBSession) -> Newsroom:
    """A site whose moderators hold every comment (pre-moderation) and no digests."""
    return Newsroom(factory, db_session, mode="pre", digest_pending=0, digest_minutes=0)


def text_of(message: Any) -> str:
    """The plain-text part of a message."""
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message: Any) -> str:
    """The HTML part of a message."""
    return message.get_body(preferencelist=("html",)).get_content()


def path_of(link: str) -> str:
    """The path of an absolute link (the test client talks to the app directly)."""
    return "/" + link.split("://", 1)[1].split("/", 1)[1]


def preferences(session: DBSession, user: User) -> dict[str, Any]:
    """The user's stored preferences, read afresh."""
    session.expire_all()
    return dict(session.get(User, user.id).preferences or {})


# --- decisions on held comments -------------------------------------------------------------------


def test_approving_a_held_comment_tells_its_author(
    newsroom: Newsroom, smtp_server: Mailbox
) -> None:
    joan = newsroom.reader("joan@example.org")
    comment = newsroom.post(joan)
    assert comment.status == Status.PENDING
    assert smtp_server.messages == []  # holding is not news yet

    newsroom.decide(comment, Action.APPROVE)

    assert [m["To"] for m in smtp_server.messages] == ["joan@example.org"]
    message = smtp_server.messages[0]
    assert message["Subject"] == (
        "Your comment on “Harbour festival draws record crowds” is published"
    )
    assert newsroom.url in text_of(message)
    assert f'href="{newsroom.url}"' in html_of(message)
    assert "A thoughtful remark number 1" in text_of(message)
    unsubscribe = UNSUBSCRIBE.search(text_of(message))
    assert unsubscribe is not None
    assert message["List-Unsubscribe"] == f"<{unsubscribe.group(0)}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = unsubscribe.group(0).rsplit("/", 1)[1]
    assert read_unsubscribe_token(token) == (joan.id, "decisions")


def test_a_rejection_carries_the_moderators_reason_escaped(
    newsroom: Newsroom, smtp_server: Mailbox
) -> None:
    joan = newsroom.reader("joan@example.org")
    comment = newsroom.post(joan, body="Everyone at the council is a <b>crook</b>.")
    newsroom.decide(comment, Action.REJECT, reason='Name-calling <script>alert("x")</script>')

    message = smtp_server.last_to("joan@example.org")
    assert message["Subject"] == (
        "Your comment on “Harbour festival draws record crowds” was not published"
    )
    assert 'The moderator\'s reason: Name-calling <script>alert("x")</script>' in text_of(message)
    html = html_of(message)
    assert "<script>" not in html and "<b>crook</b>" not in html
    assert "Name-calling &lt;script&gt;" in html
    assert "&lt;b&gt;crook&lt;/b&gt;" in html


def test_decision_mails_respect_the_site_the_person_and_the_address(
    newsroom: Newsroom, smtp_server: Mailbox, db_session: DBSession
) -> None:
    quiet = newsroom.reader("quiet@example.org", notify_decisions=False)
    unverified = newsroom.reader("unverified@example.org", verified=False)
    happy = newsroom.reader("happy@example.org")
    for author in (quiet, unverified):
        newsroom.decide(newsroom.post(author), Action.APPROVE)
    # Spam is never announced to its author.
    newsroom.decide(newsroom.post(happy), Action.SPAM)
    assert smtp_server.messages == []

    # A comment that was already published: taking it down is no decision on a held comment.
    newsroom.configure(mode="post", digest_pending=0, digest_minutes=0)
    published = newsroom.post(happy)
    assert published.status == Status.PUBLISHED
    newsroom.decide(published, Action.REJECT)
    assert smtp_server.messages == []

    # The site's option off: nobody hears.
    newsroom.configure(mode="pre", notify_authors=False, digest_pending=0, digest_minutes=0)
    newsroom.decide(newsroom.post(happy), Action.APPROVE)
    assert smtp_server.messages == []

    # ... unless the moderator asks for it on this decision.
    held = newsroom.post(happy)
    decide_comment(held.id, Action.APPROVE, newsroom.moderator, notify=True)
    assert [m["To"] for m in smtp_server.messages] == ["happy@example.org"]


def test_a_moderator_may_keep_one_decision_quiet(newsroom: Newsroom, smtp_server: Mailbox) -> None:
    joan = newsroom.reader("joan@example.org")
    decide_comment(newsroom.post(joan).id, Action.REJECT, newsroom.moderator, notify=False)
    assert smtp_server.messages == []


def test_guests_hear_only_good_news(
    factory: Factory, db_session: DBSession, smtp_server: Mailbox
) -> None:
    newsroom = Newsroom(factory, db_session, allow_guests=True, digest_pending=0, digest_minutes=0)
    first = newsroom.post(None, guest_name="Gus", guest_email="gus@example.org")
    second = newsroom.post(None, guest_name="Gus", guest_email="gus@example.org")
    assert first.status == second.status == Status.PENDING  # guests wait until one is approved
    newsroom.decide(first, Action.REJECT, reason="Off topic")
    assert smtp_server.messages == []  # an unverified address hears no bad news
    newsroom.decide(second, Action.APPROVE)
    assert [m["To"] for m in smtp_server.messages] == ["gus@example.org"]
    message = smtp_server.messages[0]
    assert "is published" in message["Subject"]
    assert message["List-Unsubscribe"] is None  # no account, nothing to unsubscribe from


# --- replies --------------------------------------------------------------------------------------


@pytest.fixture
def open_newsroom(factory: Factory, db_session: DBSession) -> Newsroom:
    """A site that publishes comments straight away."""
    return Newsroom(factory, db_session, digest_pending=0, digest_minutes=0)


def test_a_published_reply_tells_the_parents_author(
    open_newsroom: Newsroom, smtp_server: Mailbox
) -> None:
    joan = open_newsroom.reader("joan@example.org", notify_replies=True)  # reply mails: opt-in
    sam = open_newsroom.reader("sam@example.org")
    parent = open_newsroom.post(joan, body="The parking was a mess.")
    assert smtp_server.messages == []
    reply = open_newsroom.post(sam, body="Agreed <img src=x onerror=alert(1)>", parent_id=parent.id)
    assert reply.status == Status.PUBLISHED

    assert [m["To"] for m in smtp_server.messages] == ["joan@example.org"]
    message = smtp_server.messages[0]
    assert message["Subject"] == (
        "Sam replied to your comment on “Harbour festival draws record crowds”"
    )
    text, html = text_of(message), html_of(message)
    assert "The parking was a mess." in text and "Agreed <img src=x" in text
    assert "<img" not in html and "Agreed &lt;img src=x onerror=alert(1)&gt;" in html
    link = UNSUBSCRIBE.search(text)
    assert link is not None and message["List-Unsubscribe"] == f"<{link.group(0)}>"
    assert read_unsubscribe_token(link.group(0).rsplit("/", 1)[1]) == (joan.id, "replies")


def test_no_reply_mail_to_yourself_or_to_who_turned_it_off(
    open_newsroom: Newsroom, smtp_server: Mailbox
) -> None:
    joan = open_newsroom.reader("joan@example.org", notify_replies=True)
    quiet = open_newsroom.reader("quiet@example.org", notify_replies=False)
    unasked = open_newsroom.reader("unasked@example.org")  # never chose: reply mails are opt-in
    unverified = open_newsroom.reader("new@example.org", verified=False, notify_replies=True)
    sam = open_newsroom.reader("sam@example.org")
    mine = open_newsroom.post(joan)
    open_newsroom.post(joan, parent_id=mine.id)  # answering yourself
    for author in (quiet, unasked, unverified):
        open_newsroom.post(sam, parent_id=open_newsroom.post(author).id)
    assert smtp_server.messages == []


def test_approving_a_held_reply_tells_both_authors(
    open_newsroom: Newsroom, smtp_server: Mailbox
) -> None:
    joan = open_newsroom.reader("joan@example.org", notify_replies=True)  # reply mails: opt-in
    sam = open_newsroom.reader("sam@example.org")
    parent = open_newsroom.post(joan)
    open_newsroom.configure(mode="pre", digest_pending=0, digest_minutes=0)
    reply = open_newsroom.post(sam, parent_id=parent.id)
    assert reply.status == Status.PENDING
    assert smtp_server.messages == []  # a held reply is invisible, so no news for joan yet

    open_newsroom.decide(reply, Action.APPROVE)
    assert sorted(m["To"] for m in smtp_server.messages) == [
        "joan@example.org",
        "sam@example.org",
    ]
    assert "replied to your comment" in smtp_server.last_to("joan@example.org")["Subject"]
    assert "is published" in smtp_server.last_to("sam@example.org")["Subject"]


# --- unsubscribing --------------------------------------------------------------------------------


def test_unsubscribing_by_the_link_asks_first(
    open_newsroom: Newsroom, smtp_server: Mailbox, client: FlaskClient, db_session: DBSession
) -> None:
    joan = open_newsroom.reader("joan@example.org", notify_replies=True)  # reply mails: opt-in
    sam = open_newsroom.reader("sam@example.org")
    open_newsroom.post(sam, parent_id=open_newsroom.post(joan).id)
    link = UNSUBSCRIBE.search(text_of(smtp_server.last_to("joan@example.org")))
    assert link is not None
    path = path_of(link.group(0))

    page = client.get(path)
    assert page.status_code == 200
    assert "replies to your comments" in page.text and 'method="post"' in page.text
    assert preferences(db_session, joan) == {"notify_replies": True}  # a GET changes nothing

    done = client.post(path)
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert preferences(db_session, joan) == {"notify_replies": False}

    open_newsroom.post(sam, parent_id=open_newsroom.post(joan).id)
    assert len(smtp_server.messages) == 1  # no second reply mail


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_bad_or_tampered_token_is_refused(
    app: Flask, client: FlaskClient, factory: Factory, db_session: DBSession, method: str
) -> None:
    joan = factory.user(email_verified=True)
    with app.app_context():
        good = unsubscribe_token(joan.id, "replies")
    other_salt = URLSafeSerializer(app.config["SECRET_KEY"], salt="elsewhere").dumps(
        {"user": joan.id, "kind": "replies"}
    )
    other_key = URLSafeSerializer("another-secret", salt=UNSUBSCRIBE_SALT).dumps(
        {"user": joan.id, "kind": "replies"}
    )
    payload, _, signature = good.rpartition(".")
    tampered = payload.replace(payload[-2:], "xx") + "." + signature
    for token in (tampered, other_salt, other_key, "nonsense", good + "x"):
        response = client.open(f"/notifications/unsubscribe/{token}", method=method)
        assert response.status_code == 400, token
        assert "does not work" in response.text
    assert preferences(db_session, joan) == {}


@pytest.fixture
def csrf_client(app: Flask, database: TestDatabase, tmp_path: Path, smtp_server: Mailbox) -> Any:
    """A client of an app on the same database with CSRF protection on, as in production."""
    protected = make_test_app(
        database,
        tmp_path / "csrf-instance",
        {**smtp_server.mail_config(), "JOBS_SYNC": True, "WTF_CSRF_ENABLED": True},
    )
    yield protected.test_client()
    dispose(protected)


def test_the_confirmation_form_needs_its_csrf_token(
    csrf_client: FlaskClient, factory: Factory, db_session: DBSession, app: Flask
) -> None:
    joan = factory.user(email_verified=True)
    with app.app_context():
        path = f"/notifications/unsubscribe/{unsubscribe_token(joan.id, 'decisions')}"

    forged = csrf_client.post(path, data={"anything": "else"})
    assert forged.status_code == 400
    assert preferences(db_session, joan) == {}

    page = csrf_client.get(path)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    assert token is not None, page.text
    done = csrf_client.post(path, data={"csrf_token": token.group(1)})
    assert done.status_code == 200
    assert preferences(db_session, joan) == {"notify_decisions": False}


def test_rfc_8058_one_click_post_needs_no_csrf_token(
    csrf_client: FlaskClient, factory: Factory, db_session: DBSession, app: Flask
) -> None:
    joan = factory.user(email_verified=True, preferences={"notify_decisions": True})
    with app.app_context():
        path = f"/notifications/unsubscribe/{unsubscribe_token(joan.id, 'replies')}"

    # Anything but the exact one-click body still needs the form's token.
    extra = csrf_client.post(path, data={"List-Unsubscribe": "One-Click", "x": "1"})
    wrong = csrf_client.post(path, data={"List-Unsubscribe": "Yes"})
    assert [extra.status_code, wrong.status_code] == [400, 400]
    assert preferences(db_session, joan) == {"notify_decisions": True}

    for content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        response = csrf_client.post(
            path, data={"List-Unsubscribe": "One-Click"}, content_type=content_type
        )
        assert response.status_code == 200, response.text
    assert preferences(db_session, joan) == {"notify_decisions": True, "notify_replies": False}

    bad = csrf_client.post(
        path + "x",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert bad.status_code == 400


# --- the moderators' digest -----------------------------------------------------------------------


def test_many_held_comments_make_one_digest_not_a_flood(
    factory: Factory, db_session: DBSession, smtp_server: Mailbox
) -> None:
    newsroom = Newsroom(factory, db_session, mode="pre", digest_pending=3, digest_minutes=30)
    newsroom.staff(SiteRole.MODERATOR, "unverified-mod@gazette.example", verified=False)
    outsider = factory.site(name="Herald")
    db_session.add(
        SiteMembership(
            user=factory.user(email="herald@herald.example", email_verified=True),
            site=outsider,
            role=SiteRole.MODERATOR,
        )
    )
    db_session.commit()
    readers = [newsroom.reader(f"reader{n}@example.org") for n in range(12)]
    newsroom.post(readers[0])
    newsroom.post(readers[1])
    assert smtp_server.messages == []  # 2 pending: below digest_pending

    for reader in readers[2:]:
        newsroom.post(
            reader,
            body=f"Please see http://a.example http://b.example http://c.example {reader.id}",
        )

    assert sorted(m["To"] for m in smtp_server.messages) == [
        "mod@gazette.example",
        "owner@gazette.example",
    ]
    message = smtp_server.last_to("mod@gazette.example")
    assert message["Subject"] == "3 comments wait for review on Gazette"
    text = text_of(message)
    assert f"{PUBLIC_URL}/moderate?site={newsroom.site.key}" in text
    assert "the site reviews every comment: 3" in text
    assert "too many links: 1" in text
    assert "less than a minute" in text

    # Later, once the interval has passed, the next held comment sends a fresh digest.
    newsroom.site.digest_sent_at = utcnow() - timedelta(minutes=31)
    db_session.commit()
    newsroom.post(newsroom.reader("late@example.org"))
    assert len(smtp_server.messages) == 4
    assert smtp_server.messages[-1]["Subject"] == "13 comments wait for review on Gazette"


def test_an_old_pending_comment_is_found_by_the_cron_command(
    factory: Factory, db_session: DBSession, smtp_server: Mailbox, app: Flask
) -> None:
    newsroom = Newsroom(factory, db_session, mode="pre", digest_pending=0, digest_minutes=30)
    comment = newsroom.post(newsroom.reader("joan@example.org"))
    assert smtp_server.messages == []  # fresh: not overdue
    db_session.execute(
        sa.update(Comment)
        .where(Comment.id == comment.id)
        .values(created_at=utcnow() - timedelta(minutes=95))
    )
    db_session.commit()

    runner = app.test_cli_runner()
    first = runner.invoke(args=["notify", "digests"])
    assert first.exit_code == 0, first.output
    assert first.output.strip() == f'{{"checked": 1, "sent": ["{newsroom.site.key}"], "failed": 0}}'
    assert len(smtp_server.messages) == 2
    assert smtp_server.messages[0]["Subject"] == "1 comment waits for review on Gazette"
    assert "1 hour 35 minutes" in text_of(smtp_server.messages[0])

    again = runner.invoke(args=["notify", "digests"])
    assert '"sent": []' in again.output
    assert len(smtp_server.messages) == 2


def test_the_digest_claim_lets_only_one_checker_send(
    factory: Factory, db_session: DBSession, smtp_server: Mailbox
) -> None:
    newsroom = Newsroom(factory, db_session, mode="pre", digest_pending=5, digest_minutes=0)
    for n in range(5):
        newsroom.post(newsroom.reader(f"r{n}@example.org"))
    assert len(smtp_server.messages) == 2  # sent once, at the fifth
    sent_at = db_session.scalar(sa.select(Site.digest_sent_at).where(Site.id == newsroom.site.id))
    assert sent_at is not None
    # A second checker (another worker, the cron job) finds the claim taken.
    assert check_digest(newsroom.site.id) is None
    assert len(smtp_server.messages) == 2


# --- failures -------------------------------------------------------------------------------------


@pytest.fixture
def dead_smtp_app(database: TestDatabase, tmp_path: Path, clean_env: Any) -> Any:
    """An app whose mail server refuses connections."""
    app = make_test_app(
        database,
        tmp_path / "dead-instance",
        {
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": free_port("127.0.0.1"),
            "MAIL_USE_TLS": False,
            "MAIL_SENDER": "comments@news.example",
            "MAIL_TIMEOUT": 2,
            "JOBS_SYNC": True,
        },
    )
    yield app
    dispose(app)


def test_a_failing_mail_server_does_not_fail_the_request(
    app: Flask,
    dead_smtp_app: Flask,
    factory: Factory,
    db_session: DBSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    newsroom = Newsroom(factory, db_session, digest_pending=0, digest_minutes=0)
    joan = newsroom.reader("joan@example.org", notify_replies=True)  # reply mails: opt-in
    sam = newsroom.reader("sam@example.org")
    parent = newsroom.post(joan)
    token, plain = ApiToken.issue(sam, name="test")
    db_session.add(token)
    db_session.commit()

    response = dead_smtp_app.test_client().post(
        "/api/v1/comments",
        json={
            "site": newsroom.site.key,
            "url": newsroom.url,
            "body": "Me too!",
            "parent_id": parent.id,
        },
        headers={"Authorization": f"Bearer {plain}"},
    )
    assert response.status_code == 201, response.text
    assert "Could not send mail to joan@example.org" in caplog.text
    assert "Background job moderation.notify:send_reply_mail failed" in caplog.text
    with dead_smtp_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Comment.id))) == 2


def test_racing_checkers_send_one_digest(
    app: Flask, factory: Factory, db_session: DBSession, smtp_server: Mailbox
) -> None:
    newsroom = Newsroom(factory, db_session, mode="pre", digest_pending=0, digest_minutes=0)
    for n in range(3):
        newsroom.post(newsroom.reader(f"r{n}@example.org"))
    newsroom.configure(mode="pre", digest_pending=2, digest_minutes=0)
    site_id = newsroom.site.id
    start = threading.Barrier(4)
    outcomes: list[object] = []

    def check() -> None:
        with app.app_context():
            start.wait(5)
            try:
                outcomes.append(check_digest(site_id))
            except sa.exc.OperationalError as exc:
                # SQLite refuses the loser's write outright; it sends nothing either.
                outcomes.append(type(exc).__name__)

    workers = [threading.Thread(target=check) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert outcomes.count(newsroom.site.key) == 1, outcomes
    assert sorted(m["To"] for m in smtp_server.messages) == [
        "mod@gazette.example",
        "owner@gazette.example",
    ]


def test_without_public_url_links_point_where_the_request_came(
    app: Flask,
    database: TestDatabase,
    tmp_path: Path,
    smtp_server: Mailbox,
    factory: Factory,
    db_session: DBSession,
) -> None:
    newsroom = Newsroom(factory, db_session, digest_pending=0, digest_minutes=0)
    joan = newsroom.reader("joan@example.org", notify_replies=True)  # reply mails: opt-in
    sam = newsroom.reader("sam@example.org")
    parent = newsroom.post(joan)
    token, plain = ApiToken.issue(sam, name="test")
    db_session.add(token)
    db_session.commit()
    local = make_test_app(
        database, tmp_path / "local-instance", {**smtp_server.mail_config(), "JOBS_SYNC": True}
    )
    try:
        response = local.test_client().post(
            "/api/v1/comments",
            base_url="http://comments.local:8000",
            json={
                "site": newsroom.site.key,
                "url": newsroom.url,
                "body": "Yes!",
                "parent_id": parent.id,
            },
            headers={"Authorization": f"Bearer {plain}"},
        )
    finally:
        dispose(local)
    assert response.status_code == 201, response.text
    header = smtp_server.last_to("joan@example.org")["List-Unsubscribe"]
    assert header.startswith("<http://comments.local:8000/notifications/unsubscribe/")


def test_a_ban_or_suspension_is_told_with_the_moderators_message(
    open_newsroom: Newsroom, smtp_server: Mailbox
) -> None:
    from moderation.desk import AuthorKey, act_on_author

    joan = open_newsroom.reader("joan@example.org")
    unverified = open_newsroom.reader("new@example.org", verified=False)
    for author in (joan, unverified):
        open_newsroom.post(author)  # the desk acts on authors the site knows
    site = open_newsroom.site.key
    act_on_author(open_newsroom.moderator, site, AuthorKey(user_id=joan.id), "trust")
    assert smtp_server.messages == []  # trust is the desk's business, not news to the reader

    act_on_author(
        open_newsroom.moderator,
        site,
        AuthorKey(user_id=joan.id),
        "suspend",
        "Cool off <b>please</b>",
        hours=24,
    )
    message = smtp_server.last_to("joan@example.org")
    assert message["Subject"] == "Your comments on Gazette are suspended"
    assert "Cool off <b>please</b>" in text_of(message)
    assert "Cool off &lt;b&gt;please&lt;/b&gt;" in html_of(message)
    assert "UTC" in text_of(message)  # until when

    act_on_author(open_newsroom.moderator, site, AuthorKey(user_id=joan.id), "ban", "Enough.")
    assert smtp_server.last_to("joan@example.org")["Subject"] == (
        "You can no longer comment on Gazette"
    )
    act_on_author(open_newsroom.moderator, site, AuthorKey(user_id=unverified.id), "ban", "x")
    assert [m["To"] for m in smtp_server.messages] == ["joan@example.org"] * 2
