"""The data model on a real database: constraints, cascades, locking, timestamps, helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.orm.exc import StaleDataError

from auth.models import ApiToken, Role, SiteMembership, SiteRole, User
from moderation.extensions import db
from moderation.models import (
    ActorType,
    Comment,
    Decision,
    Site,
    Thread,
    new_site_key,
    normalise_origin,
)
from moderation.policy import SiteSettings
from moderation.status import Action, Status

if TYPE_CHECKING:
    from tests.conftest import Factory

DBSession = scoped_session[Any]


def count(session: DBSession, model: type[Any]) -> int:
    """Rows of ``model``'s table, counted in the database."""
    return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


# --- timestamps and types ---------------------------------------------------------------------


def test_timestamps_come_back_timezone_aware_utc(factory: Factory, db_session: DBSession) -> None:
    comment = factory.comment()
    created = comment.created_at
    assert created.tzinfo is not None and created.utcoffset() == timedelta(0)
    db_session.expire_all()
    again = db_session.get(Comment, comment.id)
    assert again is not None
    assert again.created_at == created
    assert again.created_at.utcoffset() == timedelta(0)


def test_timestamps_in_other_zones_are_stored_as_utc(
    factory: Factory, db_session: DBSession
) -> None:
    user = factory.user()
    later = datetime(2030, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    user.suspended_until = later
    db_session.commit()
    db_session.expire_all()
    assert user.suspended_until == later
    assert user.suspended_until.tzinfo == UTC
    assert user.suspended_until.hour == 10


def test_naive_datetimes_are_refused(factory: Factory, db_session: DBSession) -> None:
    user = factory.user()
    user.suspended_until = datetime(2030, 5, 1, 12, 0)  # naive on purpose
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        db_session.commit()
    db_session.rollback()


def test_timestamp_defaults_are_per_row(factory: Factory) -> None:
    first = factory.user()
    second = factory.user()
    assert second.created_at >= first.created_at
    assert datetime.now(UTC) - first.created_at < timedelta(minutes=1)


def test_enums_are_stored_as_their_values(factory: Factory, db_session: DBSession) -> None:
    comment = factory.comment(status=Status.PENDING)
    stored = db_session.execute(
        sa.text("SELECT status FROM comments WHERE id = :id"), {"id": comment.id}
    ).scalar()
    assert stored == "pending"
    assert comment.status is Status.PENDING


def test_status_outside_the_enum_is_refused_by_the_database(
    factory: Factory, db_session: DBSession
) -> None:
    comment = factory.comment()
    with pytest.raises(sa.exc.IntegrityError):
        db_session.execute(
            sa.text("UPDATE comments SET status = 'hidden' WHERE id = :id"), {"id": comment.id}
        )
    db_session.rollback()


def test_json_columns_round_trip(factory: Factory, db_session: DBSession) -> None:
    reasons = [{"code": "first_comment", "message": "the author has no approved comments yet"}]
    comment = factory.comment(status=Status.PENDING, reasons=reasons, spam_score=0.25)
    db_session.expire_all()
    assert comment.reasons == reasons
    assert comment.spam_score == pytest.approx(0.25)
    assert comment.abuse_score is None


def test_indexes_for_the_hot_queries_exist(app: Any) -> None:
    with app.app_context():
        inspector = sa.inspect(db.engine)
        comment_indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("comments")}
        decision_indexes = {
            i["name"]: i["column_names"] for i in inspector.get_indexes("decisions")
        }
    assert comment_indexes["ix_comments_site_status_created"] == [
        "site_id",
        "status",
        "created_at",
        "id",
    ]
    assert comment_indexes["ix_comments_thread_status_created"] == [
        "thread_id",
        "status",
        "created_at",
        "id",
    ]
    assert comment_indexes["ix_comments_author_created"] == ["author_id", "created_at"]
    assert comment_indexes["ix_comments_author_body_hash"] == ["author_id", "body_hash"]
    assert decision_indexes["ix_decisions_comment_id"] == ["comment_id"]
    assert decision_indexes["ix_decisions_site_created"] == ["site_id", "created_at"]


@pytest.mark.postgres_only
def test_postgres_column_types(app: Any) -> None:
    with app.app_context():
        rows = db.session.execute(
            sa.text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = 'comments'"
            )
        ).all()
    types = dict(rows)
    assert types["id"] == "bigint"
    assert types["created_at"] == "timestamp with time zone"
    assert types["reasons"] == "jsonb"
    assert types["status"] == "character varying"


# --- optimistic locking -----------------------------------------------------------------------


def test_second_of_two_concurrent_updates_fails(factory: Factory, db_session: DBSession) -> None:
    comment = factory.comment(status=Status.PENDING)
    assert comment.version == 1
    other = Session(db.engine)  # a second moderator, in another request
    try:
        theirs = other.get(Comment, comment.id)
        assert theirs is not None and theirs.version == 1

        comment.status = Status.PUBLISHED
        db_session.commit()
        assert comment.version == 2

        theirs.status = Status.REJECTED
        with pytest.raises(StaleDataError):
            other.commit()
    finally:
        other.rollback()
        other.close()
    db_session.expire_all()
    assert comment.status is Status.PUBLISHED


def test_updates_bump_version_and_updated_at(factory: Factory, db_session: DBSession) -> None:
    comment = factory.comment()
    before = comment.updated_at
    comment.html = "<p>edited</p>"
    db_session.commit()
    assert comment.version == 2
    assert comment.updated_at >= before


# --- unique constraints -----------------------------------------------------------------------


def test_site_keys_are_unique(factory: Factory, db_session: DBSession) -> None:
    site = factory.site()
    assert len(site.key) >= 12
    db_session.add(Site(key=site.key, name="Copy", origins=[]))
    with pytest.raises(sa.exc.IntegrityError):
        db_session.commit()
    db_session.rollback()


def test_one_thread_per_url_and_site(factory: Factory, db_session: DBSession) -> None:
    thread = factory.thread()
    other_site = factory.site()
    db_session.add(Thread(site=other_site, url=thread.url))  # same URL, other site: fine
    db_session.commit()
    db_session.add(Thread(site_id=thread.site_id, url=thread.url))
    with pytest.raises(sa.exc.IntegrityError):
        db_session.commit()
    db_session.rollback()


def test_user_emails_are_unique_but_optional(factory: Factory, db_session: DBSession) -> None:
    factory.user(email=None)
    factory.user(email=None)
    user = factory.user()
    db_session.add(User(email=user.email, display_name="Twin"))
    with pytest.raises(sa.exc.IntegrityError):
        db_session.commit()
    db_session.rollback()


def test_one_membership_per_user_and_site(factory: Factory, db_session: DBSession) -> None:
    user, site = factory.user(), factory.site()
    db_session.add(SiteMembership(user=user, site=site, role=SiteRole.MODERATOR))
    db_session.commit()
    db_session.add(SiteMembership(user_id=user.id, site_id=site.id, role=SiteRole.OWNER))
    with pytest.raises(sa.exc.IntegrityError):
        db_session.commit()
    db_session.rollback()


def test_token_hashes_are_unique(factory: Factory, db_session: DBSession) -> None:
    user = factory.user()
    token, _ = ApiToken.issue(user, "one")
    db_session.add(token)
    db_session.commit()
    db_session.add(ApiToken(user_id=user.id, name="copy", token_hash=token.token_hash))
    with pytest.raises(sa.exc.IntegrityError):
        db_session.commit()
    db_session.rollback()


# --- cascades ---------------------------------------------------------------------------------


def _site_with_everything(factory: Factory, db_session: DBSession) -> tuple[Site, User, Comment]:
    site = factory.site()
    user = factory.user()
    thread = factory.thread(site)
    parent = factory.comment(thread, author_id=user.id)
    reply = factory.comment(thread, parent_id=parent.id, author_id=user.id)
    db_session.add(SiteMembership(user_id=user.id, site_id=site.id, role=SiteRole.OWNER))
    db_session.add(ApiToken.issue(user, "cli")[0])
    db_session.add(
        Decision(
            comment_id=parent.id,
            site_id=site.id,
            actor_type=ActorType.SYSTEM,
            to_status=Status.PUBLISHED,
        )
    )
    db_session.add(
        Decision(
            comment_id=reply.id,
            site_id=site.id,
            actor_type=ActorType.USER,
            actor_id=user.id,
            action=Action.APPROVE,
            from_status=Status.PENDING,
            to_status=Status.PUBLISHED,
        )
    )
    db_session.commit()
    return site, user, parent


def test_deleting_a_site_deletes_its_threads_comments_decisions_and_staff(
    factory: Factory, db_session: DBSession
) -> None:
    site, _, _ = _site_with_everything(factory, db_session)
    keep = factory.comment()  # on another site
    db_session.delete(site)
    db_session.commit()
    db_session.expire_all()
    assert count(db_session, Thread) == 1
    assert db_session.scalars(sa.select(Comment.id)).all() == [keep.id]
    assert count(db_session, Decision) == 0
    assert count(db_session, SiteMembership) == 0
    assert count(db_session, User) == 1  # people are not the site's to delete


def test_deleting_a_user_keeps_their_comments_and_decisions(
    factory: Factory, db_session: DBSession
) -> None:
    _, user, parent = _site_with_everything(factory, db_session)
    db_session.delete(user)
    db_session.commit()
    db_session.expire_all()
    assert count(db_session, Comment) == 2
    assert parent.author_id is None
    assert parent.author_name  # still shown under the name it was posted with
    assert count(db_session, Decision) == 2
    assert db_session.scalars(sa.select(Decision.actor_id)).all() == [None, None]
    assert count(db_session, ApiToken) == 0
    assert count(db_session, SiteMembership) == 0


def test_deleting_a_comment_keeps_its_replies(factory: Factory, db_session: DBSession) -> None:
    _, _, parent = _site_with_everything(factory, db_session)
    db_session.delete(parent)
    db_session.commit()
    db_session.expire_all()
    reply = db_session.scalars(sa.select(Comment)).one()
    assert reply.parent_id is None
    assert [d.comment_id for d in db_session.scalars(sa.select(Decision))] == [reply.id]


# --- helpers ----------------------------------------------------------------------------------


def test_api_token_is_stored_only_as_its_hash(factory: Factory, db_session: DBSession) -> None:
    user = factory.user()
    token, plain = ApiToken.issue(user, "desk")
    db_session.add(token)
    db_session.commit()
    assert plain.startswith("mod_") and len(plain) > 40
    assert token.token_hash == ApiToken.hash(plain) != plain
    stored = db_session.execute(sa.text("SELECT token_hash FROM api_tokens")).scalars().all()
    assert plain not in stored
    found = ApiToken.find(plain)
    assert found is not None and found.user_id == user.id
    assert ApiToken.find(plain + "x") is None
    token.revoked_at = datetime.now(UTC)
    db_session.commit()
    assert ApiToken.find(plain) is None


def test_role_on_site(factory: Factory, db_session: DBSession) -> None:
    site, other = factory.site(), factory.site()
    moderator, commenter = factory.user(), factory.user()
    admin = factory.user(role=Role.ADMIN)
    db_session.add(SiteMembership(user=moderator, site=site, role=SiteRole.MODERATOR))
    db_session.commit()
    assert moderator.role_on(site) == "moderator"
    assert moderator.role_on(other) is None
    assert commenter.role_on(site) is None
    assert commenter.role == Role.COMMENTER
    assert admin.role_on(other) == "admin"


def test_site_settings_are_validated(factory: Factory, db_session: DBSession) -> None:
    site = factory.site()
    assert site.moderation_settings == SiteSettings()
    site.moderation_settings = SiteSettings().with_updates({"mode": "pre", "max_links": "0"})
    db_session.commit()
    db_session.expire_all()
    assert site.moderation_settings.mode == "pre"
    assert site.moderation_settings.max_links == 0
    site.settings = {"mode": "sometimes"}
    with pytest.raises(ValueError, match="mode"):
        _ = site.moderation_settings


def test_thread_slug_is_the_last_path_segment(factory: Factory) -> None:
    assert factory.thread(url="https://news.example/2024/05/council-vote/").slug == "council-vote"
    assert factory.thread(url="https://news.example/articles/bridge?page=2").slug == "bridge"


@pytest.mark.parametrize(
    ("value", "origin"),
    [
        ("https://news.example", "https://news.example"),
        ("https://News.Example/", "https://news.example"),
        ("HTTP://news.example:80", "http://news.example"),
        ("https://news.example:8443", "https://news.example:8443"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("http://[::1]:5000", "http://[::1]:5000"),
    ],
)
def test_origins_are_normalised(value: str, origin: str) -> None:
    assert normalise_origin(value) == origin


@pytest.mark.parametrize(
    "value",
    [
        "news.example",
        "ftp://news.example",
        "https://",
        "https://news.example/articles",
        "https://news.example/?q=1",
        "https://news.example#top",
        "https://user:pw@news.example",
        "https://news.example:99999",
        "javascript:alert(1)",
    ],
)
def test_bad_origins_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="origin"):
        normalise_origin(value)


def test_site_keys_never_look_like_options(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = iter(["-looksLikeOpt", "fine_key_123"])
    monkeypatch.setattr("moderation.models.secrets.token_urlsafe", lambda n: next(keys))
    assert new_site_key() == "fine_key_123"
