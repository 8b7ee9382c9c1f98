"""Privacy: rotating IP hash keys, the retention purge, and admins' export and erasure."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import scoped_session

from auth.account import DELETED_AUTHOR_NAME
from auth.models import ApiToken, Identity, LoginLink, Role, User
from moderation import privacy
from moderation.db import utcnow
from moderation.extensions import db
from moderation.models import (
    ActorType,
    AuthorEvent,
    AuthorNote,
    Comment,
    CommentLike,
    Decision,
    IpHashKey,
    PrivacyEvent,
    Report,
    ReportReason,
    Site,
    SiteAuthor,
    SiteInvite,
    Thread,
    Webhook,
    WebhookDelivery,
)
from moderation.policy import SiteSettings
from moderation.status import Status
from tests.conftest import TestDatabase, dispose, make_test_app

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]

IP = "203.0.113.77"
AGENT = "Mozilla/5.0 (Privacy test)"


def bearer(token: str) -> dict[str, str]:
    """The header that signs a request with ``token``."""
    return {"Authorization": f"Bearer {token}"}


def token_for(db_session: DBSession, user: User) -> str:
    """A new API token of ``user``."""
    token, plain = ApiToken.issue(user, name="test")
    db_session.add(token)
    db_session.commit()
    return plain


def open_site(factory: Factory, **values: Any) -> Site:
    """A site that publishes at once and takes guests."""
    settings = SiteSettings().with_updates(
        {"first_comments_held": 0, "flood_seconds": 0, "allow_guests": True, **values}
    )
    return factory.site(settings=settings.to_dict())


def post(client: FlaskClient, site: Site, token: str, body: str, ip: str = IP) -> Any:
    """POST a comment from ``ip``."""
    return client.post(
        "/api/v1/comments",
        json={"site": site.key, "url": f"{site.origins[0]}/articles/story", "body": body},
        headers={**bearer(token), "User-Agent": AGENT},
        environ_base={"REMOTE_ADDR": ip},
    )


def ago(**delta: float) -> Any:
    """A moment in the past."""
    return utcnow() - timedelta(**delta)


def old_comment(
    factory: Factory, thread: Thread, status: Status, days: float, **fields: Any
) -> Comment:
    """A comment created and last changed ``days`` ago."""
    moment = ago(days=days)
    return factory.comment(thread, status=status, created_at=moment, updated_at=moment, **fields)


# --- IP addresses as rotating keyed hashes ------------------------------------------------------


def test_a_posted_comment_keeps_a_keyed_hash_never_the_address(
    client: FlaskClient, factory: Factory, db_session: DBSession, caplog: pytest.LogCaptureFixture
) -> None:
    site = open_site(factory)
    token = token_for(db_session, factory.user())
    caplog.set_level(logging.DEBUG)
    first = post(client, site, token, "The harbour festival was a delight this year.")
    second = post(client, site, token, "And the fireworks were better than ever before.")
    assert first.status_code == second.status_code == 201, first.json
    comments = db_session.scalars(sa.select(Comment).order_by(Comment.id)).all()
    hashes = {comment.ip_hash for comment in comments}
    assert len(hashes) == 1 and None not in hashes  # one period, one key: the same hash
    (stored,) = hashes
    assert len(stored) == 64 and IP not in stored
    # Exactly one key was created, lazily, for the current period.
    keys = db_session.scalars(sa.select(IpHashKey)).all()
    assert len(keys) == 1
    assert keys[0].starts_at == privacy.period_start(utcnow(), 24)
    # The address appears in no column of any row, and in no log record.
    with db.engine.connect() as connection:
        for table in db.metadata.sorted_tables:
            for row in connection.execute(table.select()):
                assert IP not in json.dumps([str(value) for value in row]), table.name
    assert not [record for record in caplog.records if IP in record.getMessage()]


def test_the_hash_changes_with_the_period_and_old_keys_still_link(app: Flask) -> None:
    with app.app_context():
        now = utcnow()
        today = privacy._hmac(privacy.current_key(now), IP)
        db.session.commit()
        tomorrow_key = privacy.current_key(now + timedelta(hours=24))
        db.session.commit()
        tomorrow = privacy._hmac(tomorrow_key, IP)
        assert today != tomorrow
        assert privacy.ip_hash(IP) == today  # the cached key of the current period
        assert privacy.ip_hash(IP) != privacy.ip_hash("203.0.113.78")
        # Repeat abuse within the window: the address under every kept key.
        assert set(privacy.ip_hashes_within_window(IP)) == {today, tomorrow}
        assert db.session.scalar(sa.select(sa.func.count()).select_from(IpHashKey)) == 2


def test_the_rotation_period_is_a_setting(app: Flask) -> None:
    app.config["IP_HASH_ROTATION_HOURS"] = 6
    with app.app_context():
        now = utcnow()
        first = privacy.current_key(now)
        db.session.commit()
        assert privacy.current_key(now + timedelta(hours=6)) != first
        db.session.commit()
        starts = list(db.session.scalars(sa.select(IpHashKey.starts_at)))
        assert len(starts) == 2
        assert all(start.hour % 6 == 0 and start.minute == 0 for start in starts)
    app.config["IP_HASH_ROTATION_HOURS"] = 0
    with app.app_context(), pytest.raises(privacy.PrivacyError, match="at least 1"):
        privacy.ip_hash(IP)


def test_a_key_from_a_rolled_back_transaction_is_not_kept(app: Flask) -> None:
    with app.app_context():
        lost = privacy.current_key()
        assert privacy.current_key() == lost  # the same within its transaction
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(IpHashKey)) == 0
        kept = privacy.current_key()
        assert kept != lost  # not served from the cache: it never reached the database
        db.session.commit()
        assert db.session.scalar(sa.select(IpHashKey.key)) == kept
        assert privacy._cache(app).get(privacy.period_start(utcnow(), 24)) == kept


def test_processes_agree_on_the_key_of_a_period(
    app: Flask, database: TestDatabase, tmp_path: Path
) -> None:
    other = make_test_app(database, tmp_path / "other")  # a second process, same database
    hashes: list[str | None] = []
    errors: list[BaseException] = []

    def work(flask_app: Flask) -> None:
        try:
            with flask_app.app_context():
                value = privacy.ip_hash(IP)
                db.session.commit()
                hashes.append(value)
        except BaseException as exc:  # reported below
            errors.append(exc)

    try:
        threads = [threading.Thread(target=work, args=(a,)) for a in [app, other] * 3]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        dispose(other)
    assert not errors, errors
    assert len(hashes) == 6 and len(set(hashes)) == 1
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(IpHashKey)) == 1


def test_the_salt_is_part_of_the_hash(app: Flask) -> None:
    with app.app_context():
        one = privacy.ip_hash(IP)
        db.session.commit()
        app.config["MODERATION_IP_SALT"] = "another-salt"
        assert privacy.ip_hash(IP) != one


# --- retention ----------------------------------------------------------------------------------


@pytest.fixture
def aged(factory: Factory, db_session: DBSession) -> dict[str, Any]:
    """A thread with old and recent comments of every kind, and what hangs on them."""
    site = open_site(factory)
    thread = factory.thread(site)
    reader = factory.user()
    rejected = old_comment(factory, thread, Status.REJECTED, 100)
    spam = old_comment(factory, thread, Status.SPAM, 95)
    recent = old_comment(factory, thread, Status.REJECTED, 10)
    pending = old_comment(factory, thread, Status.PENDING, 200)
    published = old_comment(factory, thread, Status.PUBLISHED, 300)
    # A reply published before its parent was rejected: it stays, at the top level.
    reply = old_comment(factory, thread, Status.PUBLISHED, 99, parent_id=rejected.id)
    db_session.add_all(
        [
            Decision(
                comment_id=rejected.id,
                site_id=site.id,
                actor_type=ActorType.SYSTEM,
                to_status=Status.REJECTED,
            ),
            Report(
                comment_id=rejected.id,
                site_id=site.id,
                reporter_id=reader.id,
                reason=ReportReason.ABUSE,
            ),
            CommentLike(comment_id=rejected.id, user_id=reader.id),
        ]
    )
    thread.comment_count = 2
    db_session.commit()
    return {
        "site": site,
        "thread": thread,
        "gone": [rejected.id, spam.id],
        "kept": [recent.id, pending.id, published.id, reply.id],
        "reply": reply.id,
    }


def ids_of(db_session: DBSession) -> set[int]:
    """Every comment id in the database."""
    db_session.expire_all()
    return set(db_session.scalars(sa.select(Comment.id)))


def test_purge_deletes_old_rejected_and_spam_with_their_rows(
    app: Flask, db_session: DBSession, aged: dict[str, Any]
) -> None:
    summary = privacy.purge(batch=1)  # one comment per transaction: the batching loops
    assert ids_of(db_session) == set(aged["kept"])
    assert summary.comments == 2 and summary.replies_detached == 1
    for model in (Decision, Report, CommentLike):
        left = db_session.scalar(
            sa.select(sa.func.count()).select_from(model).where(model.comment_id.in_(aged["gone"]))
        )
        assert left == 0, model.__name__
    reply = db_session.get(Comment, aged["reply"])
    assert reply.parent_id is None and reply.status == Status.PUBLISHED
    # Published comments were not touched: the thread's count is still right.
    thread = db_session.get(Thread, aged["thread"].id)
    published = db_session.scalar(
        sa.select(sa.func.count()).where(
            Comment.thread_id == thread.id, Comment.status == Status.PUBLISHED
        )
    )
    assert thread.comment_count == published == 2
    event = db_session.scalar(sa.select(PrivacyEvent).where(PrivacyEvent.action == "purge"))
    assert event.counts["comments"] == 2 and event.via == "cli"


def test_a_dry_run_counts_and_changes_nothing(
    app: Flask, db_session: DBSession, aged: dict[str, Any]
) -> None:
    before = ids_of(db_session)
    summary = privacy.purge(dry_run=True)
    assert (summary.comments, summary.replies_detached) == (2, 1)
    assert ids_of(db_session) == before
    assert db_session.scalar(sa.select(sa.func.count()).select_from(PrivacyEvent)) == 0


def test_zero_days_keeps_rejected_comments(
    app: Flask, db_session: DBSession, aged: dict[str, Any]
) -> None:
    app.config["RETENTION_REJECTED_DAYS"] = 0
    assert privacy.purge().comments == 0
    assert ids_of(db_session) == set(aged["gone"] + aged["kept"])


def test_ip_hashes_and_their_keys_go_after_the_window(
    app: Flask, factory: Factory, db_session: DBSession
) -> None:
    thread = factory.thread()
    old = old_comment(factory, thread, Status.PUBLISHED, 8, ip_hash="a" * 64, user_agent=AGENT)
    new = old_comment(factory, thread, Status.PUBLISHED, 6, ip_hash="b" * 64, user_agent=AGENT)
    changed = db_session.get(Comment, old.id).updated_at
    now = utcnow()
    for days in (10, 8, 6, 0):
        db_session.add(
            IpHashKey(starts_at=privacy.period_start(now - timedelta(days=days), 24), key=b"k" * 32)
        )
    db_session.commit()
    summary = privacy.purge()
    db_session.expire_all()
    assert (old.ip_hash, old.user_agent) == (None, None)
    assert old.updated_at == changed  # not a change to the comment
    assert (new.ip_hash, new.user_agent) == ("b" * 64, AGENT)
    assert summary.ip_hashes_cleared == 1
    # The 10- and 8-day-old keys made hashes older than the window; 6 days and today stay.
    assert summary.ip_hash_keys == 2
    days_left = sorted(
        (now - start).days for start in db_session.scalars(sa.select(IpHashKey.starts_at))
    )
    assert days_left == [0, 6]


def test_links_invites_and_deliveries_expire(
    app: Flask, factory: Factory, db_session: DBSession
) -> None:
    site = factory.site()
    hook = Webhook(site_id=site.id, url="https://hooks.example/x", events=[], secret="s")
    db_session.add(hook)
    db_session.commit()
    db_session.add_all(
        [
            LoginLink(
                email="a@example.org",
                token_hash="1" * 64,
                created_at=ago(hours=3),
                expires_at=ago(hours=2),
            ),
            LoginLink(
                email="a@example.org",
                token_hash="2" * 64,
                created_at=ago(minutes=30),
                expires_at=ago(minutes=15),
            ),
            LoginLink(email="a@example.org", token_hash="3" * 64, expires_at=ago(minutes=-15)),
            SiteInvite(
                site_id=site.id, email="m@example.org", token_hash="4" * 64, expires_at=ago(days=1)
            ),
            SiteInvite(
                site_id=site.id,
                email="n@example.org",
                token_hash="5" * 64,
                expires_at=ago(days=1),
                accepted_at=ago(days=2),
            ),
            WebhookDelivery(
                webhook_id=hook.id, event="comment.created", body="{}", created_at=ago(days=31)
            ),
            WebhookDelivery(
                webhook_id=hook.id, event="comment.created", body="{}", created_at=ago(days=29)
            ),
        ]
    )
    db_session.commit()
    summary = privacy.purge()
    assert (summary.login_links, summary.site_invites, summary.webhook_deliveries) == (1, 1, 1)
    db_session.expire_all()
    assert sorted(db_session.scalars(sa.select(LoginLink.token_hash))) == ["2" * 64, "3" * 64]
    assert list(db_session.scalars(sa.select(SiteInvite.email))) == ["n@example.org"]
    assert db_session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 1


def test_flask_privacy_purge(
    runner: FlaskCliRunner, db_session: DBSession, aged: dict[str, Any]
) -> None:
    dry = runner.invoke(args=["privacy", "purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["comments"] == 2 and json.loads(dry.output)["dry_run"] is True
    assert ids_of(db_session) == set(aged["gone"] + aged["kept"])
    done = runner.invoke(args=["privacy", "purge", "--batch", "1"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.output)
    assert (summary["comments"], summary["replies_detached"]) == (2, 1)
    assert summary["cutoffs"]["rejected_and_spam_before"]
    assert ids_of(db_session) == set(aged["kept"])


@pytest.mark.parametrize("app_config", [{"RETENTION_AUTO": True}])
def test_the_app_purges_about_once_a_day_by_itself(
    client: FlaskClient, factory: Factory, db_session: DBSession, aged: dict[str, Any]
) -> None:
    token = token_for(db_session, factory.user())
    assert (
        post(client, aged["site"], token, "A first comment that starts the purge.").status_code
        == 201
    )
    # Jobs run inline in tests: the purge is done.
    assert ids_of(db_session).isdisjoint(aged["gone"])
    runs = db_session.scalars(sa.select(PrivacyEvent).where(PrivacyEvent.action == "purge")).all()
    assert [run.via for run in runs] == ["job"]
    # Within the day a job asked for again does nothing; forced, it runs.
    assert privacy.purge_job() is None
    assert privacy.purge_job(force=True) is not None


def test_tests_do_not_purge_by_themselves(
    client: FlaskClient, factory: Factory, db_session: DBSession, aged: dict[str, Any]
) -> None:
    token = token_for(db_session, factory.user())
    assert (
        post(client, aged["site"], token, "Nothing is purged by this comment.").status_code == 201
    )
    assert set(aged["gone"]) <= ids_of(db_session)


# --- export and erasure -------------------------------------------------------------------------


@pytest.fixture
def person(factory: Factory, db_session: DBSession) -> dict[str, Any]:
    """Anna: an account on two sites (one anonymises, one removes) and guest comments."""
    keep = open_site(factory, deleted_account_comments="anonymise")
    remove = open_site(factory, deleted_account_comments="remove")
    anna = factory.user(email="anna@example.org", display_name="Anna Berg")
    db_session.add(Identity(user=anna, provider="x", subject="123", email="anna@example.org"))
    kept_thread, removed_thread = factory.thread(keep), factory.thread(remove)
    mine = [
        factory.comment(
            kept_thread, author_id=anna.id, body="Mine on the first site.", ip_hash="c" * 64
        ),
        factory.comment(removed_thread, author_id=anna.id, body="Mine on the second site."),
    ]
    guest = [
        factory.comment(
            kept_thread,
            guest_email="anna@example.org",
            author_name="Anna G",
            body="As a guest here.",
        ),
        factory.comment(
            removed_thread,
            guest_email="anna@example.org",
            author_name="Anna G",
            body="As a guest there.",
        ),
    ]
    other = factory.comment(removed_thread, body="Someone else's comment.")
    kept_thread.comment_count = 2
    removed_thread.comment_count = 3
    db_session.add_all(
        [
            SiteAuthor(site_id=keep.id, guest_email="anna@example.org", trusted=True),
            AuthorNote(site_id=keep.id, guest_email="anna@example.org", body="Polite guest."),
            AuthorEvent(site_id=keep.id, guest_email="anna@example.org", action="trust"),
            LoginLink(email="anna@example.org", token_hash="9" * 64, expires_at=ago(minutes=-10)),
        ]
    )
    db_session.commit()
    admin = factory.user(email="admin@example.org", role=Role.ADMIN)
    return {
        "anna": anna,
        "sites": (keep, remove),
        "threads": (kept_thread, removed_thread),
        "mine": [c.id for c in mine],
        "guest": [c.id for c in guest],
        "other": other.id,
        "admin_token": token_for(db_session, admin),
        "admin": admin,
    }


def test_flask_privacy_export(
    runner: FlaskCliRunner, db_session: DBSession, person: dict[str, Any]
) -> None:
    result = runner.invoke(args=["privacy", "export", "--email", " Anna@Example.org "])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["email"] == "anna@example.org"
    (account,) = data["accounts"]
    assert account["user"]["display_name"] == "Anna Berg"
    assert [i["provider"] for i in account["identities"]] == ["x"]
    assert [c["body"] for c in account["comments"]] == [
        "Mine on the first site.",
        "Mine on the second site.",
    ]
    assert [c["body"] for c in data["guest_comments"]] == ["As a guest here.", "As a guest there."]
    assert {c["site"] for c in data["guest_comments"]} == {s.key for s in person["sites"]}
    notes = [r for r in data["moderation_records"] if "moderator_note" in r]
    assert notes[0]["moderator_note"] == "Polite guest."
    event = db_session.scalar(sa.select(PrivacyEvent).where(PrivacyEvent.action == "export"))
    assert event.counts == {"accounts": 1, "comments": 2, "guest_comments": 2}
    assert "anna" not in json.dumps(event.counts)  # the log keeps no address


def test_export_matches_what_the_reader_downloads(
    client: FlaskClient, runner: FlaskCliRunner, person: dict[str, Any]
) -> None:
    with client.session_transaction() as session:
        session["_user_id"] = person["anna"].get_id()
    own = client.get("/account/data.json").json
    admin = json.loads(
        runner.invoke(args=["privacy", "export", "--email", "anna@example.org"]).output
    )
    assert admin["accounts"] == [own]


def test_unknown_addresses_are_refused(runner: FlaskCliRunner, person: dict[str, Any]) -> None:
    for command in (["export"], ["erase", "--yes"]):
        result = runner.invoke(args=["privacy", *command, "--email", "nobody@example.org"])
        assert result.exit_code == 2
        assert "No account, guest comment or moderation record" in result.output


def assert_erased(db_session: DBSession, person: dict[str, Any]) -> None:
    """Anna is gone: account, guest records, links; comments per each site's setting."""
    db_session.expire_all()
    assert db_session.get(User, person["anna"].id) is None
    kept_mine, removed_mine = (db_session.get(Comment, i) for i in person["mine"])
    kept_guest, removed_guest = (db_session.get(Comment, i) for i in person["guest"])
    for comment in (kept_mine, removed_mine, kept_guest, removed_guest):
        assert comment.author_name == DELETED_AUTHOR_NAME
        assert comment.author_id is None and comment.guest_email is None
        assert comment.ip_hash is None
    assert kept_mine.status == kept_guest.status == Status.PUBLISHED
    assert kept_guest.body == "As a guest here."
    assert removed_mine.status == removed_guest.status == Status.DELETED
    assert removed_guest.body == "" and removed_guest.html == ""
    kept_thread, removed_thread = (db_session.get(Thread, t.id) for t in person["threads"])
    assert (kept_thread.comment_count, removed_thread.comment_count) == (2, 1)
    assert db_session.get(Comment, person["other"]).status == Status.PUBLISHED
    for model, column in (
        (SiteAuthor, SiteAuthor.guest_email),
        (AuthorNote, AuthorNote.guest_email),
    ):
        assert (
            db_session.scalar(
                sa.select(sa.func.count()).select_from(model).where(column.is_not(None))
            )
            == 0
        )
    assert (
        db_session.scalar(sa.select(AuthorEvent.guest_email).where(AuthorEvent.action == "trust"))
        is None
    )
    assert db_session.scalar(sa.select(sa.func.count()).select_from(LoginLink)) == 0
    # Each site's audit log records the erasure, without the address.
    erasures = db_session.scalars(sa.select(AuthorEvent).where(AuthorEvent.action == "erase")).all()
    assert sorted(e.site_id for e in erasures) == sorted(s.id for s in person["sites"])
    assert all("anna" not in e.message.lower() for e in erasures)


def test_flask_privacy_erase(
    runner: FlaskCliRunner, db_session: DBSession, person: dict[str, Any]
) -> None:
    refused = runner.invoke(args=["privacy", "erase", "--email", "anna@example.org"], input="n\n")
    assert refused.exit_code == 1 and "Erase 1 account(s) and 2 guest comment(s)" in refused.output
    assert db_session.get(User, person["anna"].id) is not None
    result = runner.invoke(args=["privacy", "erase", "--email", "anna@example.org", "--yes"])
    assert result.exit_code == 0, result.output
    erased = json.loads(result.output)["erased"]
    assert erased["accounts"] == 1 and erased["account_comments"] == 2
    assert (erased["guest_comments_anonymised"], erased["guest_comments_removed"]) == (1, 1)
    assert erased["guest_records"] == 2 and erased["login_links"] == 1
    assert_erased(db_session, person)
    event = db_session.scalar(sa.select(PrivacyEvent).where(PrivacyEvent.action == "erase"))
    assert event.via == "cli" and event.counts == erased


def test_the_audit_log_shows_the_erasure(
    client: FlaskClient, runner: FlaskCliRunner, person: dict[str, Any]
) -> None:
    runner.invoke(args=["privacy", "erase", "--email", "anna@example.org", "--yes"])
    site = person["sites"][0]
    log = client.get(
        f"/api/v1/moderation/audit?site={site.key}&action=erase",
        headers=bearer(person["admin_token"]),
    )
    assert log.status_code == 200, log.json
    (entry,) = log.json["entries"]
    assert "erased on request: 4 comment(s) anonymised or removed, 1 account(s)" in json.dumps(
        entry
    )


def test_admins_export_and_erase_over_http(
    client: FlaskClient, db_session: DBSession, person: dict[str, Any]
) -> None:
    admin = bearer(person["admin_token"])
    exported = client.get("/api/v1/admin/privacy/export?email=anna%40example.org", headers=admin)
    assert exported.status_code == 200, exported.json
    assert len(exported.json["accounts"]) == 1 and len(exported.json["guest_comments"]) == 2
    assert exported.json["accounts"][0]["comments"][0]["body"] == "Mine on the first site."

    bad = client.get("/api/v1/admin/privacy/export?email=not-an-address", headers=admin)
    assert bad.status_code == 422 and "email" in bad.json["fields"]
    unconfirmed = client.post(
        "/api/v1/admin/privacy/erase",
        json={"email": "anna@example.org", "confirm": False},
        headers=admin,
    )
    assert unconfirmed.status_code == 422
    assert unconfirmed.json["fields"]["confirm"] == [
        "Set confirm to true: erasure cannot be undone."
    ]
    assert db_session.get(User, person["anna"].id) is not None

    erased = client.post(
        "/api/v1/admin/privacy/erase",
        json={"email": "anna@example.org", "confirm": True},
        headers=admin,
    )
    assert erased.status_code == 200, erased.json
    assert erased.json["erased"]["accounts"] == 1
    assert_erased(db_session, person)
    events = db_session.scalars(sa.select(PrivacyEvent).order_by(PrivacyEvent.id)).all()
    assert [(e.action, e.via, e.actor_id) for e in events] == [
        ("export", "api", person["admin"].id),
        ("erase", "api", person["admin"].id),
    ]
    again = client.post(
        "/api/v1/admin/privacy/erase",
        json={"email": "anna@example.org", "confirm": True},
        headers=admin,
    )
    assert again.status_code == 404 and "anna@example.org" in again.json["error"]


def test_only_admins_may_and_a_session_needs_the_header(
    client: FlaskClient, factory: Factory, db_session: DBSession, person: dict[str, Any]
) -> None:
    owner = factory.user()
    plain = client.get(
        "/api/v1/admin/privacy/export?email=anna%40example.org",
        headers=bearer(token_for(db_session, owner)),
    )
    assert plain.status_code == 403 and "administrator" in plain.json["error"]
    with client.session_transaction() as session:
        session["_user_id"] = person["admin"].get_id()
    url = "/api/v1/admin/privacy/export?email=anna%40example.org"
    assert client.get(url).status_code == 401  # a cookie alone could come from another site
    assert client.get(url, headers={"X-Requested-With": "fetch"}).status_code == 200


def test_deleting_an_account_clears_its_ip_hashes(
    client: FlaskClient, db_session: DBSession, person: dict[str, Any]
) -> None:
    with client.session_transaction() as session:
        session["_user_id"] = person["anna"].get_id()
    assert client.post("/account/delete", data={"delete-confirm": "y"}).status_code == 302
    db_session.expire_all()
    assert db_session.get(Comment, person["mine"][0]).ip_hash is None
