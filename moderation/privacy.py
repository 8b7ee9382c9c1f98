"""Privacy: IP addresses as rotating keyed hashes, retention, and admins' export and erasure.

- ``ip_hash(ip)``: HMAC-SHA256 of the address under a random key that changes every
  ``IP_HASH_ROTATION_HOURS`` (kept in ``ip_hash_keys``, created on first use in a period, cached
  per process) mixed with the ``MODERATION_IP_SALT`` secret. The raw address is never stored.
- ``purge()`` (``flask privacy purge``, the ``purge_job`` job, about once a day by itself when
  ``RETENTION_AUTO`` is on): deletes old rejected and spam comments, expired login links and
  invitations, old webhook deliveries, and clears IP hashes and user agents older than
  ``IP_HASH_KEEP_DAYS`` along with their keys. Batched: one short transaction per batch.
- ``export_data``/``erase_data`` (``flask privacy export|erase``, ``/api/v1/admin/privacy/*``):
  what a reader gets from ``/account`` themself, for a request an admin received by mail, plus
  the comments posted as a guest with that address. Recorded in ``privacy_events`` and, for
  erasures, in each affected site's audit log.

docs/privacy.md tells readers' side of it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import marshmallow as ma
import sqlalchemy as sa
from flask import Flask, current_app, g
from flask.cli import AppGroup
from marshmallow import fields, validate
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from auth.account import DELETED_AUTHOR_NAME, account_data, erase_account
from auth.models import Identity, LoginLink, Role, User
from moderation import api as core
from moderation import events, service
from moderation.db import utcnow
from moderation.extensions import db
from moderation.jobs import enqueue, job
from moderation.models import (
    AuthorEvent,
    AuthorNote,
    Comment,
    IpHashKey,
    PrivacyEvent,
    Site,
    SiteAuthor,
    SiteInvite,
    Thread,
    WebhookDelivery,
)
from moderation.status import Status

__all__ = [
    "PurgeSummary",
    "bp",
    "erase_data",
    "export_data",
    "find_subject",
    "ip_hash",
    "ip_hashes_within_window",
    "privacy_cli",
    "purge",
    "purge_job",
]

log = logging.getLogger(__name__)

BATCH = 1000  # rows per transaction: a purge never holds a table's lock for long
PURGED_STATUSES = (Status.REJECTED, Status.SPAM)
# A login link's row also counts the address's link requests of the last hour (rate limit).
LOGIN_LINK_GRACE = timedelta(hours=1)
PURGE_EVERY = timedelta(days=1)  # RETENTION_AUTO: how often the app purges by itself
CHECK_EVERY = 3600.0  # seconds between a process's looks at when the last purge ran
PENDING_KEYS = "privacy_pending_ip_keys"
ERASE_ACTION = "erase"


class PrivacyError(service.ServiceError):
    """A retention setting the service cannot work with."""

    status = 500


# ---------------------------------------------------------------------------------------------
# IP address hashes under rotating keys
# ---------------------------------------------------------------------------------------------


def _hours_setting(app: Flask) -> int:
    hours = int(app.config.get("IP_HASH_ROTATION_HOURS", 24))
    if hours < 1:
        raise PrivacyError(f"IP_HASH_ROTATION_HOURS must be at least 1, not {hours}.")
    return hours


def _days_setting(app: Flask, name: str, default: int) -> int:
    days = int(app.config.get(name, default))
    if days < 0:
        raise PrivacyError(f"{name} must be 0 or more days, not {days}.")
    return days


def period_start(moment: datetime, hours: int) -> datetime:
    """The start of the key period ``moment`` falls in (periods of ``hours`` from the epoch)."""
    length = hours * 3600
    seconds = int(moment.timestamp()) // length * length
    return datetime.fromtimestamp(seconds, UTC)


class _KeyCache:
    """The keys of this process, by period start; only keys known to be committed."""

    def __init__(self) -> None:
        self.keys: dict[datetime, bytes] = {}
        self.lock = threading.Lock()

    def get(self, start: datetime) -> bytes | None:
        with self.lock:
            return self.keys.get(start)

    def put(self, start: datetime, key: bytes) -> None:
        with self.lock:
            # Only the current period is ever asked for again: forget the older ones.
            self.keys = {s: k for s, k in self.keys.items() if s >= start} | {start: key}


def _cache(app: Flask) -> _KeyCache:
    cache = app.extensions.get("privacy_ip_keys")
    if cache is None:
        cache = app.extensions.setdefault("privacy_ip_keys", _KeyCache())
    return cache  # type: ignore[no-any-return]


@sa.event.listens_for(Session, "after_commit")
def _keep_new_keys(session: Session) -> None:
    # A key this transaction inserted exists for other processes only once committed; caching it
    # earlier would let a rolled-back key live on in this process alone.
    for cache, start, key in session.info.pop(PENDING_KEYS, []):
        cache.put(start, key)


@sa.event.listens_for(Session, "after_soft_rollback")
def _drop_new_keys(session: Session, previous_transaction: Any) -> None:
    session.info.pop(PENDING_KEYS, None)


def _insert_key(start: datetime, key: bytes) -> None:
    """Insert the period's key unless another process did first (no error either way)."""
    dialect = db.session.get_bind().dialect.name
    values = {"starts_at": start, "key": key, "created_at": utcnow()}
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        db.session.execute(
            insert(IpHashKey).values(**values).on_conflict_do_nothing(index_elements=["starts_at"])
        )
        return
    try:  # pragma: no cover - other databases: a savepoint absorbs the lost race
        with db.session.begin_nested():
            db.session.execute(sa.insert(IpHashKey).values(**values))
    except sa.exc.IntegrityError:  # pragma: no cover
        pass


def current_key(now: datetime | None = None) -> bytes:
    """The random key of the current period, created on first use (in the caller's transaction)."""
    app = current_app._get_current_object()
    start = period_start(now or utcnow(), _hours_setting(app))
    cache = _cache(app)
    key = cache.get(start)
    if key is not None:
        return key
    pending = db.session.info.get(PENDING_KEYS, [])
    for _, pending_start, pending_key in pending:
        if pending_start == start:
            return pending_key  # inserted earlier in this same transaction
    query = sa.select(IpHashKey.key).where(IpHashKey.starts_at == start)
    key = db.session.scalar(query)
    if key is not None:
        cache.put(start, key)  # committed by someone (this transaction inserted nothing)
        return key
    _insert_key(start, secrets.token_bytes(32))
    # Ours, or the one a racing process committed first: the database says which.
    key = db.session.scalar(query)
    if key is None:  # pragma: no cover - the row was just inserted or found
        raise PrivacyError("The IP hash key of this period could not be stored.")
    db.session.info.setdefault(PENDING_KEYS, []).append((cache, start, key))
    return key


def _hmac(key: bytes, ip: str) -> str:
    # The salt from the environment is never in the database: a dump of it (keys included)
    # is not enough to try all 2^32 IPv4 addresses against the hashes.
    salt = str(current_app.config.get("MODERATION_IP_SALT") or current_app.config["SECRET_KEY"])
    return hmac.new(key + salt.encode(), ip.encode(), hashlib.sha256).hexdigest()


def ip_hash(ip: str | None) -> str | None:
    """The stored form of an IP address: its hash under this period's key (None without one)."""
    if not ip:
        return None
    return _hmac(current_key(), ip)


def ip_hashes_within_window(ip: str) -> list[str]:
    """``ip`` hashed under every key still kept: match them against ``Comment.ip_hash`` to find
    the same address's comments of the last ``IP_HASH_KEEP_DAYS`` (repeat abuse)."""
    keys = db.session.scalars(sa.select(IpHashKey.key).order_by(IpHashKey.starts_at.desc()))
    return [_hmac(key, ip) for key in keys]


# ---------------------------------------------------------------------------------------------
# Retention
# ---------------------------------------------------------------------------------------------


@dataclass
class PurgeSummary:
    """What a purge removed (or, on a dry run, would remove)."""

    dry_run: bool = False
    comments: int = 0  # rejected and spam comments deleted, with their decisions, reports, likes
    replies_detached: int = 0  # replies to them, kept as top-level comments
    ip_hashes_cleared: int = 0  # comments whose ip_hash and user_agent were set to NULL
    ip_hash_keys: int = 0
    login_links: int = 0
    site_invites: int = 0
    webhook_deliveries: int = 0
    cutoffs: dict[str, str | None] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """The numbers alone."""
        return {
            name: value
            for name, value in asdict(self).items()
            if isinstance(value, int) and not isinstance(value, bool)
        }


def _ids(query: sa.Select[Any]) -> list[int]:
    return list(db.session.scalars(query))


def _count(condition: sa.ColumnElement[bool], model: Any) -> int:
    return int(db.session.scalar(sa.select(sa.func.count()).select_from(model).where(condition)))


def _delete_batched(model: Any, condition: sa.ColumnElement[bool], batch: int) -> int:
    """Delete the rows matching ``condition``, ``batch`` per transaction; how many."""
    total = 0
    while ids := _ids(sa.select(model.id).where(condition).order_by(model.id).limit(batch)):
        db.session.execute(
            sa.delete(model).where(model.id.in_(ids)).execution_options(synchronize_session=False)
        )
        db.session.commit()
        total += len(ids)
    return total


def _purge_comments(cutoff: datetime, dry_run: bool, batch: int, summary: PurgeSummary) -> None:
    # updated_at: a comment rejected today after weeks in the queue still gets its full period.
    old = sa.and_(
        Comment.status.in_(PURGED_STATUSES),
        Comment.created_at < cutoff,
        Comment.updated_at < cutoff,
    )
    if dry_run:
        summary.comments = _count(old, Comment)
        purged = sa.select(Comment.id).where(old).scalar_subquery()
        summary.replies_detached = _count(
            sa.and_(Comment.parent_id.in_(purged), sa.not_(old)), Comment
        )
        return
    sites: set[int] = set()
    # In the order of the (status, created_at, id) index: ordering by id alone would sort every
    # remaining match again for each batch.
    oldest = (Comment.status, Comment.created_at, Comment.id)
    while ids := _ids(sa.select(Comment.id).where(old).order_by(*oldest).limit(batch)):
        summary.replies_detached += _count(
            sa.and_(Comment.parent_id.in_(ids), Comment.id.not_in(ids)), Comment
        )
        sites.update(db.session.scalars(sa.select(Comment.site_id).where(Comment.id.in_(ids))))
        # The database does the rest: decisions, reports and likes go with the comment
        # (ON DELETE CASCADE); replies stay, as top-level comments (ON DELETE SET NULL).
        db.session.execute(
            sa.delete(Comment)
            .where(Comment.id.in_(ids))
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        summary.comments += len(ids)
    _forget_counts(sites)


def _clear_ip_hashes(cutoff: datetime, dry_run: bool, batch: int, summary: PurgeSummary) -> None:
    identifying = sa.or_(Comment.ip_hash.is_not(None), Comment.user_agent.is_not(None))
    old = sa.and_(Comment.created_at < cutoff, identifying)
    if dry_run:
        summary.ip_hashes_cleared = _count(old, Comment)
        return
    last = 0
    # Walked by id with a cursor: one pass over the table, never the same rows twice.
    while ids := _ids(
        sa.select(Comment.id).where(old, Comment.id > last).order_by(Comment.id).limit(batch)
    ):
        db.session.execute(
            sa.update(Comment)
            .where(Comment.id.in_(ids))
            # updated_at kept: clearing an address is not a change to the comment (and would
            # restart the rejected comments' retention period).
            .values(ip_hash=None, user_agent=None, updated_at=Comment.updated_at)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        summary.ip_hashes_cleared += len(ids)
        last = ids[-1]


def _forget_counts(site_ids: Iterable[int]) -> None:
    from moderation.desk import invalidate_counts  # the desk imports half the app

    for site_id in site_ids:
        invalidate_counts(site_id)


def purge(
    *, dry_run: bool = False, batch: int = BATCH, now: datetime | None = None, via: str = "cli"
) -> PurgeSummary:
    """Apply the retention settings (see the module docstring); a summary of what went."""
    app = current_app._get_current_object()
    now = now or utcnow()
    hours = _hours_setting(app)
    keep_ips = _days_setting(app, "IP_HASH_KEEP_DAYS", 7)
    keep_rejected = _days_setting(app, "RETENTION_REJECTED_DAYS", 90)
    keep_deliveries = _days_setting(app, "RETENTION_DELIVERIES_DAYS", 30)
    summary = PurgeSummary(dry_run=dry_run)
    db.session.rollback()  # start from a clean transaction; each batch commits its own

    rejected_cutoff = now - timedelta(days=keep_rejected) if keep_rejected else None
    if rejected_cutoff is not None:
        _purge_comments(rejected_cutoff, dry_run, batch, summary)

    ip_cutoff = now - timedelta(days=keep_ips)
    _clear_ip_hashes(ip_cutoff, dry_run, batch, summary)
    # A key is done once its whole period lies before the cutoff: every hash it made was
    # cleared just now, and a new comment can no longer be hashed with it.
    old_keys = IpHashKey.starts_at <= ip_cutoff - timedelta(hours=hours)
    # Never the current period's key, even with IP_HASH_KEEP_DAYS=0.
    old_keys = sa.and_(old_keys, IpHashKey.starts_at < period_start(now, hours))
    if dry_run:
        summary.ip_hash_keys = _count(old_keys, IpHashKey)
    else:
        summary.ip_hash_keys = _delete_batched(IpHashKey, old_keys, batch)

    links = sa.and_(LoginLink.expires_at < now, LoginLink.created_at < now - LOGIN_LINK_GRACE)
    invites = sa.and_(SiteInvite.expires_at < now, SiteInvite.accepted_at.is_(None))
    deliveries_cutoff = now - timedelta(days=keep_deliveries) if keep_deliveries else None
    deliveries = (
        WebhookDelivery.created_at < deliveries_cutoff
        if deliveries_cutoff is not None
        else sa.false()
    )
    for name, model, condition in (
        ("login_links", LoginLink, links),
        ("site_invites", SiteInvite, invites),
        ("webhook_deliveries", WebhookDelivery, deliveries),
    ):
        done = _count(condition, model) if dry_run else _delete_batched(model, condition, batch)
        setattr(summary, name, done)

    summary.cutoffs = {
        "rejected_and_spam_before": _iso(rejected_cutoff),
        "ip_hashes_before": _iso(ip_cutoff),
        "webhook_deliveries_before": _iso(deliveries_cutoff),
    }
    if not dry_run:
        db.session.add(PrivacyEvent(action="purge", via=via, counts=summary.counts()))
        db.session.commit()
    log.info("Retention purge%s: %s", " (dry run)" if dry_run else "", summary.counts())
    return summary


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None


def _last_purge() -> datetime | None:
    return db.session.scalar(
        sa.select(sa.func.max(PrivacyEvent.created_at)).where(PrivacyEvent.action == "purge")
    )


@job("default", timeout=3600)
def purge_job(force: bool = False) -> dict[str, int] | None:
    """The purge as a background job; skipped if another process purged within the day."""
    last = _last_purge()
    if not force and last is not None and last > utcnow() - PURGE_EVERY + timedelta(minutes=5):
        return None  # several processes asked for it at once: one run is enough
    return purge(via="job").counts()


def _on_comment_posted(sender: Flask, **extra: Any) -> None:
    """RETENTION_AUTO: about once a day, the first comment after it enqueues the purge."""
    if not sender.config.get("RETENTION_AUTO"):
        return
    state = sender.extensions.setdefault("privacy_schedule", {"checked": None})
    now = time.monotonic()
    if state["checked"] is not None and now - state["checked"] < CHECK_EVERY:
        return
    state["checked"] = now
    try:
        last = _last_purge()
        if last is None or last < utcnow() - PURGE_EVERY:
            enqueue(purge_job)
    except Exception:  # the comment is stored; retention can wait for the next check
        log.exception("Could not schedule the retention purge")


# Signals are global and hold receivers weakly; a module-level function lives as long as the
# module. The receiver acts only for apps with RETENTION_AUTO on.
events.comment_posted.connect(_on_comment_posted)


# ---------------------------------------------------------------------------------------------
# Export and erasure of one person's data (a request received by mail)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """Everything stored under one e-mail address: accounts and guest posts and records."""

    email: str
    users: tuple[User, ...]
    guest_comments: int
    guest_records: int

    @property
    def found(self) -> bool:
        """Whether the address is known at all."""
        return bool(self.users or self.guest_comments or self.guest_records)


def _normalise(email: str) -> str:
    return email.strip().lower()


def _guest(email: str) -> sa.ColumnElement[bool]:
    return sa.and_(Comment.author_id.is_(None), Comment.guest_email == email)


def find_subject(email: str) -> Subject:
    """Who ``email`` is: accounts with it (their own or a linked login's), guest comments."""
    address = _normalise(email)
    by_identity = sa.select(Identity.user_id).where(sa.func.lower(Identity.email) == address)
    users = db.session.scalars(
        sa.select(User)
        .where(sa.or_(sa.func.lower(User.email) == address, User.id.in_(by_identity)))
        .order_by(User.id)
    ).all()
    records = _count(SiteAuthor.guest_email == address, SiteAuthor) + _count(
        AuthorNote.guest_email == address, AuthorNote
    )
    return Subject(address, tuple(users), _count(_guest(address), Comment), records)


def _known(email: str) -> Subject:
    subject = find_subject(email)
    if not subject.found:
        raise service.NotFound(
            f"No account, guest comment or moderation record uses the address {subject.email}."
        )
    return subject


def _site_keys(site_ids: Iterable[int]) -> dict[int, str]:
    ids = sorted(set(site_ids))
    return dict(db.session.execute(sa.select(Site.id, Site.key).where(Site.id.in_(ids))).all())


def _records(email: str, users: Iterable[User]) -> list[dict[str, Any]]:
    """What moderators decided and noted about the person, per site."""
    user_ids = [user.id for user in users]
    mine_author = sa.or_(SiteAuthor.guest_email == email, SiteAuthor.user_id.in_(user_ids))
    mine_note = sa.or_(AuthorNote.guest_email == email, AuthorNote.user_id.in_(user_ids))
    authors = db.session.scalars(sa.select(SiteAuthor).where(mine_author).order_by(SiteAuthor.id))
    notes = db.session.scalars(sa.select(AuthorNote).where(mine_note).order_by(AuthorNote.id))
    authors, notes = list(authors), list(notes)
    keys = _site_keys([a.site_id for a in authors] + [n.site_id for n in notes])
    return [
        {
            "site": keys.get(record.site_id),
            "as": "guest" if record.guest_email else "account",
            "banned": record.banned,
            "ban_message": record.ban_message,
            "suspended_until": _iso(record.suspended_until),
            "premoderate": record.premoderate,
            "trusted": record.trusted,
            "shadow_banned": record.shadow_banned,
        }
        for record in authors
    ] + [
        {
            "site": keys.get(note.site_id),
            "as": "guest" if note.guest_email else "account",
            "moderator_note": note.body,
            "created_at": _iso(note.created_at),
        }
        for note in notes
    ]


def _record(action: str, actor: User | None, via: str, counts: dict[str, int]) -> None:
    db.session.add(
        PrivacyEvent(
            action=action, actor_id=actor.id if actor is not None else None, via=via, counts=counts
        )
    )


def export_data(email: str, *, actor: User | None = None, via: str = "cli") -> dict[str, Any]:
    """What ``/account/data.json`` gives each account with ``email``, plus guest comments and
    moderation records; NotFound for an unknown address. Recorded (counts only)."""
    subject = _known(email)
    rows = db.session.execute(
        sa.select(Comment, Thread.url, Site.key)
        .join(Thread, Comment.thread_id == Thread.id)
        .join(Site, Comment.site_id == Site.id)
        .where(_guest(subject.email))
        .order_by(Comment.created_at, Comment.id)
    )
    guest_comments = [
        {
            "id": comment.id,
            "site": key,
            "article_url": url,
            "author_name": comment.author_name,
            "body": comment.body,
            "status": str(comment.status),
            "created_at": _iso(comment.created_at),
            "updated_at": _iso(comment.updated_at),
        }
        for comment, url, key in rows
    ]
    data = {
        "email": subject.email,
        "exported_at": _iso(utcnow()),
        "accounts": [account_data(user) for user in subject.users],
        "guest_comments": guest_comments,
        "moderation_records": _records(subject.email, subject.users),
    }
    counts = {
        "accounts": len(data["accounts"]),
        "comments": sum(len(account["comments"]) for account in data["accounts"]),
        "guest_comments": len(guest_comments),
    }
    _record("export", actor, via, counts)
    db.session.commit()
    return data


def _erase_guest(email: str) -> tuple[set[int], dict[str, int]]:
    """Guest comments with ``email`` anonymised or removed per their site; the sites, counts."""
    mine = _guest(email)
    site_ids = set(db.session.scalars(sa.select(Comment.site_id).where(mine).distinct()))
    sites = db.session.scalars(sa.select(Site).where(Site.id.in_(site_ids))).all()
    removing = [s.id for s in sites if s.moderation_settings.deleted_account_comments == "remove"]
    counts = {"guest_comments_anonymised": 0, "guest_comments_removed": 0}
    if removing:
        removed = sa.and_(mine, Comment.site_id.in_(removing))
        threads = list(db.session.scalars(sa.select(Comment.thread_id).where(removed).distinct()))
        counts["guest_comments_removed"] = db.session.execute(
            sa.update(Comment)
            .where(removed)
            .values(status=Status.DELETED, body="", html="")
            .execution_options(synchronize_session=False)
        ).rowcount
        service.recount_threads(threads)  # comment_count counts published comments
    anonymised = db.session.execute(
        sa.update(Comment)
        .where(mine)
        .values(
            guest_email=None,
            author_name=DELETED_AUTHOR_NAME,
            ip_hash=None,
            user_agent=None,
            version=Comment.version + 1,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    counts["guest_comments_anonymised"] = anonymised - counts["guest_comments_removed"]
    return site_ids, counts


def erase_data(email: str, *, actor: User | None = None, via: str = "cli") -> dict[str, int]:
    """Erase everything under ``email`` in one transaction: each account as if its owner deleted
    it, guest comments per each site's ``deleted_account_comments``, guest moderation records,
    login links and invitations. NotFound for an unknown address. Counts of what went."""
    subject = _known(email)
    address = subject.email
    counts: dict[str, int] = {"accounts": len(subject.users)}
    user_ids = [user.id for user in subject.users]
    site_ids = set(
        db.session.scalars(
            sa.select(Comment.site_id).where(Comment.author_id.in_(user_ids)).distinct()
        )
    )
    counts["account_comments"] = _count(Comment.author_id.in_(user_ids), Comment)
    # Counted first: deleting an account also deletes the links sent to its addresses.
    counts["login_links"] = _count(LoginLink.email == address, LoginLink)
    for user in subject.users:
        erase_account(user)
    guest_sites, guest_counts = _erase_guest(address)
    counts.update(guest_counts)
    site_ids |= guest_sites
    # What moderators recorded about the guest goes with the guest's comments, as it does
    # for an account (SiteAuthor and AuthorNote rows cascade when a user is deleted).
    site_ids |= set(
        db.session.scalars(sa.select(SiteAuthor.site_id).where(SiteAuthor.guest_email == address))
    )
    counts["guest_records"] = (
        db.session.execute(sa.delete(SiteAuthor).where(SiteAuthor.guest_email == address)).rowcount
        + db.session.execute(
            sa.delete(AuthorNote).where(AuthorNote.guest_email == address)
        ).rowcount
    )
    db.session.execute(
        sa.update(AuthorEvent)
        .where(AuthorEvent.guest_email == address)
        .values(guest_email=None)
        .execution_options(synchronize_session=False)
    )
    db.session.execute(sa.delete(LoginLink).where(LoginLink.email == address))
    counts["site_invites"] = db.session.execute(
        sa.delete(SiteInvite).where(SiteInvite.email == address, SiteInvite.accepted_at.is_(None))
    ).rowcount
    touched = sum(counts[name] for name in ("account_comments", *guest_counts))
    # Each affected site's audit log says that (not whose) data was erased, and by whom.
    message = (
        "Personal data erased on request: "
        f"{touched} comment(s) "
        f"anonymised or removed, {counts['accounts']} account(s) deleted."
    )
    for site_id in sorted(site_ids):
        db.session.add(
            AuthorEvent(
                site_id=site_id,
                actor_id=actor.id if actor is not None else None,
                action=ERASE_ACTION,
                message=message,
            )
        )
    _record("erase", actor, via, counts)
    db.session.commit()
    _forget_counts(site_ids)
    return counts


# ---------------------------------------------------------------------------------------------
# flask privacy ...
# ---------------------------------------------------------------------------------------------

privacy_cli = AppGroup(
    "privacy", help="Retention purge, and export or erase one person's data (docs/privacy.md)."
)


class _Refused(click.ClickException):
    exit_code = 2  # as moderation.cli: the command line asked for something impossible


def _echo_json(data: Any, indent: int | None = None) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=indent))


@privacy_cli.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@click.option(
    "--batch",
    type=click.IntRange(1, 100_000),
    default=BATCH,
    show_default=True,
    help="Rows per transaction.",
)
def purge_command(dry_run: bool, batch: int) -> None:
    """Delete old rejected and spam comments, expired links, old deliveries and IP hashes."""
    try:
        summary = purge(dry_run=dry_run, batch=batch, via="cli")
    except PrivacyError as exc:
        raise _Refused(exc.message) from None
    _echo_json(asdict(summary))


@privacy_cli.command("export")
@click.option("--email", required=True, help="The address the request came from.")
def export_command(email: str) -> None:
    """Everything stored about EMAIL, as JSON on stdout (GDPR art. 15)."""
    try:
        data = export_data(email, via="cli")
    except service.NotFound as exc:
        raise _Refused(exc.message) from None
    _echo_json(data, indent=2)


@privacy_cli.command("erase")
@click.option("--email", required=True, help="The address the request came from.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase_command(email: str, yes: bool) -> None:
    """Erase everything stored about EMAIL (GDPR art. 17); prints what went, as JSON."""
    subject = find_subject(email)
    if not subject.found:
        raise _Refused(
            f"No account, guest comment or moderation record uses the address {subject.email}."
        )
    if not yes:
        click.confirm(
            f"Erase {len(subject.users)} account(s) and {subject.guest_comments} guest "
            f"comment(s) of {subject.email}? This cannot be undone",
            abort=True,
            err=True,
        )
    _echo_json({"email": subject.email, "erased": erase_data(email, via="cli")})


# ---------------------------------------------------------------------------------------------
# /api/v1/admin/privacy/... (admins of the installation)
# ---------------------------------------------------------------------------------------------

bp = core.guarded_blueprint(
    "privacy_api",
    __name__,
    "/api/v1/admin/privacy",
    "An admin's export and erasure of one person's data (requests by mail).",
)


class ExportQuerySchema(ma.Schema):
    """Whose data."""

    class Meta:
        unknown = ma.EXCLUDE

    email = fields.Email(required=True, metadata={"description": "The requester's address."})


class EraseSchema(ma.Schema):
    """Whose data to erase, confirmed."""

    email = fields.Email(required=True, metadata={"description": "The requester's address."})
    confirm = fields.Bool(
        required=True,
        validate=validate.Equal(True, error="Set confirm to true: erasure cannot be undone."),
        metadata={"description": "Must be true."},
    )


class ExportedCommentSchema(ma.Schema):
    """A comment in an export."""

    id = fields.Int()
    site = fields.Str(metadata={"description": "Site key (guest comments)."})
    article_url = fields.Str()
    author_name = fields.Str()
    body = fields.Str()
    status = fields.Str()
    created_at = fields.Str()
    updated_at = fields.Str()


class ExportedAccountSchema(ma.Schema):
    """One account, as ``/account/data.json`` shows it to its owner."""

    user = fields.Dict(metadata={"description": "Profile, role, preferences."})
    identities = fields.List(fields.Dict(), metadata={"description": "Ways of logging in."})
    comments = fields.List(fields.Nested(ExportedCommentSchema))


class ExportSchema(ma.Schema):
    """Everything stored under one address."""

    email = fields.Str()
    exported_at = fields.Str()
    accounts = fields.List(fields.Nested(ExportedAccountSchema))
    guest_comments = fields.List(fields.Nested(ExportedCommentSchema))
    moderation_records = fields.List(
        fields.Dict(), metadata={"description": "Bans, trust and moderators' notes, per site."}
    )


class ErasedSchema(ma.Schema):
    """What an erasure removed."""

    email = fields.Str()
    erased = fields.Dict(keys=fields.Str(), values=fields.Int())


def _require_admin() -> None:
    """Every route here is for the installation's admins (checked before reading the input)."""
    user = core._signed_in()
    if user.role != Role.ADMIN:
        raise service.Forbidden(
            "Only an administrator of the installation can export or erase someone's data."
        )


bp.before_request(_require_admin)  # after core._authenticate, registered above


_documented = core.documented_errors(bp)


@bp.route("/export", methods=["GET"])
@bp.arguments(ExportQuerySchema, location="query")
@bp.response(200, ExportSchema)
@_documented
def export_endpoint(query: dict[str, Any]) -> dict[str, Any]:
    """Everything stored under an address (admins); 404 if nothing is."""
    return export_data(query["email"], actor=g.api_user, via="api")


@bp.route("/erase", methods=["POST"])
@bp.arguments(EraseSchema)
@bp.response(200, ErasedSchema)
@_documented
def erase_endpoint(data: dict[str, Any]) -> dict[str, Any]:
    """Erase everything stored under an address (admins); 404 if nothing is."""
    erased = erase_data(data["email"], actor=g.api_user, via="api")
    return {"email": _normalise(data["email"]), "erased": erased}
