"""What people do with comments: post them, decide on them, read them. Services own transactions.

Views hand a frozen dataclass or plain values to a function here; the function checks, writes
in one transaction and commits, or raises a ``ServiceError`` (a status, a sentence and extra
fields) that the view turns into a response. Nothing here knows about HTTP requests.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload, selectinload
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.orm.util import identity_key

from auth.models import ApiToken, Role, SiteMembership, SiteRole, User
from auth.permissions import comment_refusal, site_author_of, site_refusal
from moderation import cache, events, scoring, security
from moderation.db import utcnow
from moderation.extensions import db
from moderation.models import (
    ActorType,
    Comment,
    CommentLike,
    Decision,
    Site,
    SiteAuthor,
    Thread,
    normalise_origin,
)
from moderation.policy import (
    AuthorStanding,
    InvalidSettings,
    Reason,
    SiteSettings,
    Verdict,
    decide,
    nudge_reason,
)
from moderation.render import InvalidBody, clean_body, render_markdown
from moderation.status import Action, Status

__all__ = [
    "MAX_COUNT_URLS",
    "MAX_PAGE",
    "CommentPage",
    "Conflict",
    "Forbidden",
    "Invalid",
    "NewComment",
    "NotFound",
    "QueuePage",
    "ServiceError",
    "TooManyRequests",
    "Unauthorized",
    "authenticate_token",
    "canonical_url",
    "comment_counts",
    "decide_comment",
    "get_site",
    "list_comments",
    "memberships",
    "moderation_queue",
    "recount_threads",
    "submit_comment",
    "thread_closed",
    "update_site",
]

log = logging.getLogger(__name__)

MAX_PAGE = 200
DEFAULT_PAGE = 50
MAX_COUNT_URLS = 100
MAX_URL = 2048  # the lengths of the columns
MAX_TITLE = 500
MAX_NAME = 100
MAX_EMAIL = 254
MAX_USER_AGENT = 512
MAX_REASON = 500
STANDING_DAYS = 90  # how far back rejections count against an author
NUDGE_MESSAGE = (
    "This comment may break the community guidelines. Would you like to edit it before "
    "posting? You can also post it as it is."
)
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)  # last_used_at is written at most this often
STAFF_ROLES = frozenset({SiteRole.MODERATOR.value, SiteRole.OWNER.value, Role.ADMIN.value})
OWNER_ROLES = frozenset({SiteRole.OWNER.value, Role.ADMIN.value})
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
SHADOW_REASON = Reason(
    "shadow_banned", "a moderator shadow-banned the author: only they see their comments"
)

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class ServiceError(Exception):
    """A refused request: an HTTP-like status, a sentence for people, and extra fields."""

    status = 400

    def __init__(self, message: str, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = dict(extra or {})


class Invalid(ServiceError):
    """The request is well-formed but its values cannot be used."""

    status = 422


class Unauthorized(ServiceError):
    """The request needs a signed-in user."""

    status = 401


class Forbidden(ServiceError):
    """The user (or origin) may not do this."""

    status = 403


class NotFound(ServiceError):
    """No such object, or one the user may not know about."""

    status = 404


class Conflict(ServiceError):
    """The request collides with the current state (a duplicate, a decision already taken)."""

    status = 409


class Nudge(ServiceError):
    """Not stored: the author is asked to reconsider first (answered 200, not as an error)."""

    status = 200

    def __init__(self, reason: Reason) -> None:
        super().__init__(NUDGE_MESSAGE, {"reasons": [reason.to_dict()]})
        self.reason = reason


class TooManyRequests(ServiceError):
    """Too soon after the previous comment; ``retry_after`` says how many seconds to wait."""

    status = 429

    def __init__(
        self, message: str, retry_after: int, extra: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message, {**(extra or {}), "retry_after": retry_after})
        self.retry_after = retry_after


# ---------------------------------------------------------------------------------------------
# Transactions
# ---------------------------------------------------------------------------------------------


def _in_transaction(work: Callable[[], T], *, keep_loaded: bool = False) -> T:
    """Run ``work`` and commit; on a lost race (unique key, lock, stale row) run it once more.

    ``keep_loaded``: the objects keep the values just written instead of being reloaded on the
    next attribute access (saves the answer to a post two SELECTs).
    """
    for attempt in (1, 2):
        try:
            result = work()
            if keep_loaded:
                session = db.session()
                session.expire_on_commit = False
                try:
                    session.commit()
                finally:
                    session.expire_on_commit = True
            else:
                db.session.commit()
            return result
        except (sa.exc.IntegrityError, sa.exc.OperationalError, StaleDataError) as exc:
            db.session.rollback()
            if attempt == 2:
                raise
            # Two first comments on a new article both insert its thread, or two moderators
            # update one comment: the second sees the first's row when it runs again.
            log.info("Retrying a transaction that lost a race: %s", type(exc).__name__)
        except BaseException:
            db.session.rollback()
            raise
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _find_site(key: str) -> Site:
    site = db.session.scalar(sa.select(Site).where(Site.key == key))
    if site is None:
        raise NotFound(f"There is no site with the key “{key}”.")
    return site


@dataclass(frozen=True)
class _SiteView:
    """What posting needs of a site's row, kept in process between its changes (see below)."""

    id: int
    key: str
    origins: tuple[str, ...]
    moderation_settings: SiteSettings


def _site_view(key: str) -> _SiteView:
    """The site with ``key`` for posting, without a query while its row is unchanged.

    Kept per process under the page cache's generation of the site, which every committed
    change to the row bumps (moderation/cache.py), so an update is seen by the next post.
    """

    def load() -> _SiteView | None:
        # populate_existing: a Site this session loaded earlier may hold the old values.
        query = sa.select(Site).where(Site.key == key).execution_options(populate_existing=True)
        site = db.session.scalar(query)
        if site is None:
            return None
        return _SiteView(site.id, site.key, tuple(site.origins or ()), _settings_of(site))

    view = cache.site_entry(key, load)
    if view is None:
        raise NotFound(f"There is no site with the key “{key}”.")
    # The new comment's thread is noted for the page cache by its site's key: known already.
    cache.note_site_key(db.session(), view.id, view.key)
    return view


def _settings_of(site: Site | _SiteView) -> SiteSettings:
    if isinstance(site, _SiteView):
        return site.moderation_settings  # validated (or failed closed) when it was loaded
    try:
        return site.moderation_settings
    except ValueError:
        # Fail closed: with unreadable settings every comment waits for a moderator.
        log.exception("Site %s has invalid stored settings; holding every comment", site.key)
        return SiteSettings(mode="pre")


def canonical_url(url: str) -> str:
    """``url`` as threads are keyed: http(s), lower-case host, no default port or fragment."""
    text = url.strip()
    if len(text) > MAX_URL:
        raise Invalid(f"The article URL is longer than {MAX_URL} characters.")
    try:
        parts = urlsplit(text)
        if parts.username or parts.password:
            raise Invalid("The article URL must not contain a user name or password.")
        origin = normalise_origin(f"{parts.scheme}://{parts.netloc}")
    except ValueError:
        raise Invalid(
            f"“{url}” is not an article URL; give its full web address, like "
            "https://news.example/2026/story."
        ) from None
    # The fragment only scrolls the page; the path and query say which article it is.
    return origin + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _origin_of(canonical: str) -> str:
    parts = urlsplit(canonical)
    return f"{parts.scheme}://{parts.netloc}"


def _body_hash(body: str) -> str:
    # The same words with different case, spacing or look-alike forms count as the same text.
    normal = " ".join(unicodedata.normalize("NFKC", body).casefold().split())
    return hashlib.sha256(normal.encode()).hexdigest()


def _ip_hash(ip: str | None) -> str | None:
    # Under a random key that rotates (moderation/privacy.py); imported here because the
    # privacy module builds on this one.
    from moderation.privacy import ip_hash

    return ip_hash(ip)


def _display(user: User | None) -> str:
    if user is None:
        return "a user who no longer exists"
    return user.display_name or user.email or f"user {user.id}"


def _is_staff(user: User) -> bool:
    """Whether ``user`` moderates or owns any site, or is an admin."""
    if user.role == Role.ADMIN:
        return True
    return (
        db.session.scalar(
            sa.select(SiteMembership.id).where(SiteMembership.user_id == user.id).limit(1)
        )
        is not None
    )


def _staff_role(user: User, site: Site) -> str | None:
    role = user.role_on(site)
    return role if role in STAFF_ROLES else None


def _reload_user(user: User | None, *, lock: bool = False) -> User | None:
    """The user's current row in this session (their ban may have changed), optionally locked."""
    if user is None:
        return None
    query = sa.select(User).where(User.id == user.id).execution_options(populate_existing=True)
    if lock:
        # Serialises one author's submissions on PostgreSQL, so the duplicate and flood checks
        # see each other's comments (SQLite serialises writers anyway). FOR NO KEY UPDATE: rows
        # that merely reference the user (their tokens, decisions) need not wait.
        query = query.with_for_update(key_share=True)
    return db.session.scalar(query)


# ---------------------------------------------------------------------------------------------
# Cursors: an opaque, URL-safe encoding of the last row's sort key
# ---------------------------------------------------------------------------------------------


def _encode_cursor(kind: str, comment: Comment) -> str:
    raw = json.dumps([kind, comment.created_at.isoformat(), comment.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(kind: str, cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        found, moment, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        created = datetime.fromisoformat(moment)
        if found != kind or not isinstance(row_id, int) or created.tzinfo is None:
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise Invalid("The cursor is not valid for this list; start again without one.") from None
    return created, row_id


def _after(created: datetime, row_id: int, newest_first: bool) -> sa.ColumnElement[bool]:
    if newest_first:
        return sa.or_(
            Comment.created_at < created,
            sa.and_(Comment.created_at == created, Comment.id < row_id),
        )
    return sa.or_(
        Comment.created_at > created,
        sa.and_(Comment.created_at == created, Comment.id > row_id),
    )


def _page_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit must be from 1 to {MAX_PAGE}, not {limit}.")
    return limit


# ---------------------------------------------------------------------------------------------
# Posting a comment
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewComment:
    """A comment someone wants to post, as the view received it."""

    site_key: str
    url: str
    body: str
    title: str | None = None
    parent_id: int | None = None
    author: User | None = None
    guest_name: str | None = None
    guest_email: str | None = None
    origin: str | None = None  # the request's Origin header, if any (cross-origin requests)
    nudge: bool = False  # the client can ask the author to reconsider (the widget can)
    nudged: bool = False  # the author's second submission after a nudge
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class _Identity:
    user: User | None
    name: str
    guest_email: str | None
    # What the site's moderators decided about the author (trust, pre-moderation, shadow ban).
    record: Any = None  # a SiteAuthor, or a row of its table (read-only)

    def owns(self) -> sa.ColumnElement[bool]:
        """A condition matching this author's comments."""
        if self.user is not None:
            return Comment.author_id == self.user.id
        return sa.and_(Comment.author_id.is_(None), Comment.guest_email == self.guest_email)


def _site_record(user: User, site: Site | _SiteView) -> Any:
    """The site's record of ``user`` as a plain row (the same attributes as a ``SiteAuthor``).

    Read-only use on the posting path: a row costs a third of loading the ORM object.
    """
    return db.session.execute(_SITE_RECORD, {"site_id": site.id, "user_id": user.id}).first()


_SITE_RECORD = sa.select(SiteAuthor.__table__).where(
    SiteAuthor.__table__.c.site_id == sa.bindparam("site_id"),
    SiteAuthor.__table__.c.user_id == sa.bindparam("user_id"),
)


def _identity(request: NewComment, site: Site | _SiteView, settings: SiteSettings) -> _Identity:
    if db.session.get_bind().dialect.name == "sqlite":
        # The author was loaded by this request a moment ago, and SQLite serialises writers
        # anyway: reading the row again would change nothing.
        user = request.author
    else:
        user = _reload_user(request.author, lock=True)
    if request.author is not None and user is None:
        raise Unauthorized("Your account no longer exists; sign in again.")
    if user is not None:
        # One rule for "may this person comment", shared with the views (auth.permissions).
        record = _site_record(user, site)
        refusal = comment_refusal(user, site, record)
        if refusal is not None:
            extra = {}
            if user.suspended_until is not None and not user.banned:
                extra["suspended_until"] = _iso(user.suspended_until)
            raise Forbidden(refusal, extra)
        # Shown to everyone under the comment: cleaned like a guest's (no bidi, no Zalgo).
        return _Identity(user, security.clean_name(user.display_name)[:MAX_NAME], None, record)

    if not settings.allow_guests:
        raise Unauthorized("Sign in to comment on this site.")
    name = security.clean_name(request.guest_name or "")  # U+202E must not fake a staff name
    email = (request.guest_email or "").strip().lower()
    if not name:
        raise Invalid("Give a name to comment as a guest.", {"fields": {"name": ["Required."]}})
    if len(name) > MAX_NAME:
        raise Invalid(f"The name must be at most {MAX_NAME} characters long.")
    if not email:
        raise Invalid(
            "Give an e-mail address to comment as a guest.", {"fields": {"email": ["Required."]}}
        )
    if len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email):
        raise Invalid(f"“{request.guest_email}” is not an e-mail address.")
    record = db.session.scalar(
        sa.select(SiteAuthor).where(
            SiteAuthor.site_id == site.id,
            SiteAuthor.user_id.is_(None),
            SiteAuthor.guest_email == email,
        )
    )
    refusal = site_refusal(record)  # a guest address the site's moderators banned
    if refusal is not None:
        raise Forbidden(refusal)
    return _Identity(None, name, email, record)


def _check_origin(site: Site, origin: str | None) -> None:
    if origin is None:
        return
    try:
        allowed = normalise_origin(origin) in site.origins
    except ValueError:
        allowed = False
    if not allowed:
        raise Forbidden(f"This site does not accept comments from pages on {origin}.")


def _article_url(site: Site, url: str) -> str:
    canonical = canonical_url(url)
    if _origin_of(canonical) not in site.origins:
        raise Invalid(
            f"The article URL must be on one of the site's origins "
            f"({', '.join(site.origins) or 'none set'}), not {_origin_of(canonical)}."
        )
    return canonical


def _clean_title(title: str | None) -> str:
    text = " ".join((title or "").split())
    if len(text) > MAX_TITLE:
        raise Invalid(f"The title must be at most {MAX_TITLE} characters long.")
    return text


_THREAD = sa.select(Thread).where(
    Thread.site_id == sa.bindparam("site_id"), Thread.url == sa.bindparam("url")
)


def _thread_for(site: Site | _SiteView, url: str, title: str) -> Thread:
    thread = db.session.scalar(_THREAD, {"site_id": site.id, "url": url})
    if thread is None:
        # If another request creates the same thread first, the unique key fails the commit and
        # _in_transaction runs everything again, finding that thread.
        thread = Thread(site_id=site.id, url=url, title=title)
        db.session.add(thread)
        db.session.flush()
    elif title and not thread.title:
        thread.title = title
    return thread


def recount_threads(thread_ids: Iterable[int], batch: int = 1000) -> None:
    """Recount ``comment_count`` (published comments) of these threads, in batches."""
    ids = sorted(set(thread_ids))
    published = (
        sa.select(sa.func.count())
        .where(Comment.thread_id == Thread.id, Comment.status == Status.PUBLISHED)
        .scalar_subquery()
    )
    for start in range(0, len(ids), batch):
        db.session.execute(
            sa.update(Thread)
            .where(Thread.id.in_(ids[start : start + batch]))
            .values(comment_count=published)
            .execution_options(synchronize_session=False)
        )


def thread_closed(thread: Thread, settings: SiteSettings | None = None) -> bool:
    """Whether ``thread`` takes no comments: closed by hand or past the site's close_after_days."""
    if thread.closed:
        return True
    days = (settings if settings is not None else _settings_of(thread.site)).close_after_days
    if days <= 0:
        return False
    created = thread.created_at
    if created.tzinfo is None:  # SQLite hands back naive UTC
        created = created.replace(tzinfo=utcnow().tzinfo)
    return utcnow() - created > timedelta(days=days)


def _check_parent(thread: Thread, parent_id: int | None, who: _Identity) -> None:
    if parent_id is None:
        return
    parent = db.session.get(Comment, parent_id)
    # A shadow-banned author sees their own comments as published, and may answer them.
    own_shadow = parent is not None and parent.shadow and who.user is not None
    own_shadow = own_shadow and parent.author_id == who.user.id
    # A comment in another thread (or site), or someone else's shadow comment, is reported
    # like a missing one: never reveal it.
    if parent is None or parent.thread_id != thread.id or (parent.shadow and not own_shadow):
        raise Invalid(f"There is no comment {parent_id} on this article to reply to.")
    if parent.status != Status.PUBLISHED and not own_shadow:
        raise Invalid("You can only reply to a published comment.")


@dataclass(frozen=True)
class _History:
    """The author's earlier comments on a site, as the repeat checks and the standing see them."""

    duplicate: int | None  # a comment with the same text within duplicate_minutes
    latest: datetime | None  # when the author last commented (the flood limit)
    approved: int
    rejected: int  # rejected or spam within STANDING_DAYS


def _history_query(owner: sa.ColumnElement[bool]) -> sa.Select[Any]:
    # Built once: a statement made per call costs more Python than the database spends on it.
    return sa.select(
        sa.func.count().filter(Comment.status == Status.PUBLISHED),
        sa.func.count().filter(
            Comment.status.in_((Status.REJECTED, Status.SPAM)),
            Comment.created_at >= sa.bindparam("since"),
        ),
        sa.func.max(Comment.created_at),
        sa.func.min(Comment.id).filter(
            Comment.body_hash == sa.bindparam("body_hash"),
            Comment.created_at >= sa.bindparam("recent"),
        ),
    ).where(Comment.site_id == sa.bindparam("site_id"), owner)


_USER_HISTORY = _history_query(Comment.author_id == sa.bindparam("author_id"))
_GUEST_HISTORY = _history_query(
    sa.and_(Comment.author_id.is_(None), Comment.guest_email == sa.bindparam("guest_email"))
)


def _history(
    site: Site | _SiteView, settings: SiteSettings, who: _Identity, body_hash: str | None = None
) -> _History:
    """One pass over the author's comments on the site (an index-only scan for users)."""
    now = utcnow()
    params: dict[str, Any] = {
        "site_id": site.id,
        "since": now - timedelta(days=STANDING_DAYS),
        "body_hash": body_hash or "",
        "recent": now - timedelta(minutes=max(settings.duplicate_minutes, 0)),
    }
    if who.user is not None:
        query, params["author_id"] = _USER_HISTORY, who.user.id
    else:
        query, params["guest_email"] = _GUEST_HISTORY, who.guest_email
    approved, rejected, latest, duplicate = db.session.execute(query, params).one()
    if body_hash is None or settings.duplicate_minutes <= 0:
        duplicate = None  # the duplicate check is off (or not asked for)
    if settings.flood_seconds <= 0:
        latest = None  # the flood limit is off
    return _History(duplicate, latest, approved or 0, rejected or 0)


def _check_repeats(settings: SiteSettings, history: _History) -> None:
    if history.duplicate is not None:
        raise Conflict(
            "You already posted this comment; it was not posted again.",
            {"comment_id": history.duplicate},
        )
    if settings.flood_seconds > 0 and history.latest is not None:
        wait = settings.flood_seconds - (utcnow() - history.latest).total_seconds()
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise TooManyRequests(
                f"You are commenting too fast; wait {seconds} second"
                f"{'' if seconds == 1 else 's'} before posting again.",
                retry_after=seconds,
            )


def _standing(
    site: Site | _SiteView, who: _Identity, history: _History | None = None
) -> AuthorStanding:
    if history is None:
        history = _history(site, _settings_of(site), who)
    record = who.record
    flags = {
        "trusted": bool(record and record.trusted),
        "premoderate": bool(record and record.premoderate),
    }
    if who.user is None:
        return AuthorStanding(approved=history.approved, guest=True, **flags)
    return AuthorStanding(approved=history.approved, rejected=history.rejected, **flags)


_BUMP_COUNT = (
    sa.update(Thread.__table__)
    .where(Thread.__table__.c.id == sa.bindparam("thread_id"))
    .values(comment_count=Thread.__table__.c.comment_count + sa.bindparam("delta"))
)


def _bump_count(thread_id: int, delta: int) -> None:
    # Done in SQL so that concurrent comments on one article cannot lose an increment; on the
    # table rather than the entity, which spares the ORM's bulk-update bookkeeping.
    db.session.execute(_BUMP_COUNT, {"thread_id": thread_id, "delta": delta})
    loaded = db.session.identity_map.get(identity_key(Thread, thread_id))
    if loaded is not None:
        db.session.expire(loaded, ["comment_count"])  # read again when next asked for


def submit_comment(request: NewComment) -> tuple[Comment, Verdict]:
    """Check, score, route and store a new comment in one transaction; the comment and verdict."""
    try:
        body = clean_body(request.body)
    except InvalidBody as exc:
        raise Invalid(_sentence(str(exc)), {"fields": {"body": [_sentence(str(exc))]}}) from None
    html = render_markdown(body)
    body_hash = _body_hash(body)
    title = _clean_title(request.title)
    # Scored before the transaction: the model needs no database, and scoring inside it would
    # hold SQLite's single writer lock (and a pooled connection) for the model's time, or
    # open a second connection from inside the transaction to look up the active model.
    scores = scoring.score_comment(body)

    def work() -> tuple[Comment, Verdict]:
        site = _site_view(request.site_key)
        _check_origin(site, request.origin)
        url = _article_url(site, request.url)
        settings = _settings_of(site)
        who = _identity(request, site, settings)
        thread = _thread_for(site, url, title)
        if thread_closed(thread, settings):
            raise Forbidden("Comments are closed on this article.")
        _check_parent(thread, request.parent_id, who)
        history = _history(site, settings, who, body_hash)
        _check_repeats(settings, history)

        nudge = nudge_reason(body, scores, settings) if who.user is not None else None
        if nudge is not None and request.nudge and not request.nudged:
            raise Nudge(nudge)  # nothing written: the transaction is rolled back
        verdict = decide(body, scores, settings, _standing(site, who, history))
        shadow = who.record is not None and who.record.shadow_banned
        if shadow:
            # Stored rejected (moderators find it in Rejected), shown to its author alone.
            verdict = Verdict(Status.REJECTED, (SHADOW_REASON, *verdict.reasons))
        reasons = [reason.to_dict() for reason in verdict.reasons]
        if request.nudged:
            outcome = "posted it anyway" if nudge is not None else "changed it"
            reasons.append(
                {"code": "nudged", "message": f"the author was asked to reconsider and {outcome}"}
            )
        values = {
            "thread_id": thread.id,
            "site_id": site.id,
            "parent_id": request.parent_id,
            "author_id": who.user.id if who.user is not None else None,
            "author_name": who.name,
            "guest_email": who.guest_email,
            "body": body,
            "html": html,
            "status": verdict.status,
            "spam_score": scores.spam if scores is not None else None,
            "abuse_score": scores.abuse if scores is not None else None,
            "model_version": (scores.model_version or None) if scores is not None else None,
            "reasons": reasons,
            "ip_hash": _ip_hash(request.ip),
            "user_agent": (request.user_agent or None) and request.user_agent[:MAX_USER_AGENT],
            "body_hash": body_hash,
            "nudged": request.nudged,
            "shadow": shadow,
        }
        # INSERT ... RETURNING straight into a loaded Comment, and a plain INSERT of its
        # decision: the unit of work's bookkeeping was a third of a post's CPU. The page cache
        # notes the new comment's thread from the statement (moderation/cache.py).
        comment = db.session.scalars(sa.insert(Comment).returning(Comment), [values]).one()
        db.session.execute(
            Decision.__table__.insert(),
            [
                {
                    "comment_id": comment.id,
                    "site_id": site.id,
                    "actor_type": ActorType.SYSTEM,
                    "action": None,
                    "from_status": None,
                    "to_status": verdict.status,
                    "reasons": reasons,
                }
            ],
        )
        # The thread itself: the session holds loaded objects weakly, and the answer reads
        # the thread after the commit.
        set_committed_value(comment, "thread", thread)
        if verdict.status == Status.PUBLISHED:
            _bump_count(thread.id, 1)
        return comment, verdict

    comment, verdict = _in_transaction(work, keep_loaded=True)
    events.comment_posted.send(current_app._get_current_object(), comment=comment)
    if comment.shadow:
        verdict = Verdict(Status.PUBLISHED)  # what its author is told
    return comment, verdict


# ---------------------------------------------------------------------------------------------
# Deciding on a comment
# ---------------------------------------------------------------------------------------------


def _last_human_decision(comment_id: int) -> Decision | None:
    return db.session.scalar(
        sa.select(Decision)
        .where(Decision.comment_id == comment_id, Decision.actor_type == ActorType.USER)
        .order_by(Decision.id.desc())
        .limit(1)
    )


def _conflict(comment: Comment, human: Decision | None) -> Conflict:
    extra: dict[str, Any] = {"status": str(comment.status), "version": comment.version}
    if human is None:
        return Conflict(
            f"This comment changed since you loaded it (it is now {comment.status}, version "
            f"{comment.version}); reload it and decide again.",
            extra,
        )
    who = _display(human.actor)
    extra.update(decided_by=who, decided_at=_iso(human.created_at))
    return Conflict(
        f"This comment was already decided by {who} at {_iso(human.created_at)} "
        f"(it is {comment.status}).",
        extra,
    )


def decide_comment(
    comment_id: int,
    action: Action,
    actor: User,
    expected_version: int | None = None,
    reason: str | None = None,
    site_keys: set[str] | None = None,
    notify: bool | None = None,
) -> Comment:
    """Record a moderator's decision on a comment, refusing one that someone already took.

    ``notify`` True or False overrides the site's option of telling the author (recorded as the
    reason ``notify_author`` or ``no_notification`` for the notifications to read).
    """
    note = " ".join((reason or "").split())
    if len(note) > MAX_REASON:
        raise Invalid(f"The reason must be at most {MAX_REASON} characters long.")

    def work() -> Comment:
        user = _reload_user(actor)
        if user is None or not _is_staff(user):
            raise Forbidden("Only moderators can decide on comments.")
        # Locked so that a second moderator waits here, then sees the first one's decision
        # (FOR NO KEY UPDATE: replies being posted to this comment need not wait).
        comment = db.session.scalar(
            sa.select(Comment)
            .where(Comment.id == comment_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
        if (
            comment is None
            or _staff_role(user, comment.site) is None
            or (site_keys is not None and comment.site.key not in site_keys)
        ):
            raise NotFound(f"There is no comment {comment_id} that you moderate.")

        human = _last_human_decision(comment.id)
        moved = expected_version is not None and expected_version != comment.version
        # An undo (a human decision without an action) reopens the comment.
        settled = human is not None and human.action is not None
        # The system's routing is not a human decision: the first person to act on a held
        # comment wins; later ones hear who did it, unless the comment went back to the queue
        # (pending, or reported by readers), or the moderator sent the version they saw, which
        # shows they are overriding the earlier decision knowingly.
        reopened = comment.status == Status.PENDING or comment.needs_review
        if moved or (settled and not reopened and expected_version is None):
            raise _conflict(comment, human)

        before, after = comment.status, action.target
        reasons = [{"code": f"moderator_{action}", "message": f"{action} by {_display(user)}"}]
        if note:
            reasons.append({"code": "moderator_note", "message": note})
        if comment.needs_review:
            comment.needs_review = False
            reasons.append(
                {"code": "report_review_done", "message": "the comment left the Reported queue"}
            )
        if comment.shadow and after == Status.PUBLISHED:
            comment.shadow = False  # approved for everyone, not only for its author
            reasons.append({"code": "shadow_lifted", "message": "shown to everyone from now on"})
        if notify is not None:
            reasons.append(
                {"code": "notify_author", "message": "the author is told of this decision"}
                if notify
                else {"code": "no_notification", "message": "the author is not told of it"}
            )
        comment.status = after
        comment.decisions.append(
            Decision(
                site_id=comment.site_id,
                actor_type=ActorType.USER,
                actor_id=user.id,
                action=action,
                from_status=before,
                to_status=after,
                reasons=reasons,
            )
        )
        if before != after and Status.PUBLISHED in (before, after):
            _bump_count(comment.thread_id, 1 if after == Status.PUBLISHED else -1)
        db.session.flush()
        return comment

    comment = _in_transaction(work)
    events.comment_decided.send(
        current_app._get_current_object(),
        comment=comment,
        decision=comment.decisions[-1],
        actor=actor,
    )
    return comment


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommentPage:
    """One page of a thread's published comments."""

    comments: list[Comment]
    next_cursor: str | None
    thread: Thread | None
    closed: bool = False  # the thread takes no comments (by hand or by close_after_days)


@dataclass(frozen=True)
class QueuePage:
    """One page of the moderation queue, oldest first."""

    comments: list[Comment]
    next_cursor: str | None
    sites: list[Site] = field(default_factory=list)


def _first_page(newest: bool) -> sa.Select[Any]:
    order = (Comment.created_at, Comment.id)
    return (
        sa.select(Comment)
        .where(Comment.thread_id == sa.bindparam("thread_id"), Comment.status == Status.PUBLISHED)
        .order_by(*(column.desc() for column in order) if newest else order)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


# Built once (a statement made per call costs more Python than the database spends on it).
_FIRST_PAGE = {False: _first_page(False), True: _first_page(True)}


def list_comments(
    site_key: str,
    url: str,
    sort: str = "oldest",
    cursor: str | None = None,
    limit: int | None = None,
    viewer: User | None = None,
) -> CommentPage:
    """A page of the published comments on an article, oldest or newest first.

    ``viewer`` (the signed-in reader) also sees their own shadow-banned comments.
    """
    if sort not in ("oldest", "newest", "liked"):
        raise Invalid(f"sort must be “oldest”, “newest” or “liked”, not “{sort}”.")
    size = _page_limit(limit)
    site = _site_view(site_key)
    canonical = canonical_url(url)
    thread = db.session.scalar(_THREAD, {"site_id": site.id, "url": canonical})
    if thread is None:
        return CommentPage([], None, None)
    closed = thread_closed(thread, site.moderation_settings)

    newest = sort == "newest"
    if viewer is None and not cursor and sort != "liked":
        # The first page for everyone: most reads (and every page the cache rebuilds).
        params = {"thread_id": thread.id, "limit": size + 1}
        rows = list(db.session.scalars(_FIRST_PAGE[newest], params))
        more = len(rows) > size
        rows = rows[:size]
        return CommentPage(rows, _encode_cursor(sort, rows[-1]) if more else None, thread, closed)
    visible = Comment.status == Status.PUBLISHED
    if viewer is not None:
        visible = sa.or_(visible, sa.and_(Comment.shadow, Comment.author_id == viewer.id))
    query = sa.select(Comment).where(Comment.thread_id == thread.id, visible)
    if sort == "liked":
        return _liked_page(query, thread, cursor, size, closed)
    if cursor:
        query = query.where(_after(*_decode_cursor(sort, cursor), newest_first=newest))
    order = (Comment.created_at, Comment.id)
    query = query.order_by(*(column.desc() for column in order) if newest else order)
    rows = list(db.session.scalars(query.limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return CommentPage(rows, _encode_cursor(sort, rows[-1]) if more else None, thread, closed)


def comment_counts(site_key: str, urls: Sequence[str]) -> dict[str, int]:
    """Published comments per article URL (as given); unknown or invalid URLs count 0."""
    if len(urls) > MAX_COUNT_URLS:
        raise Invalid(f"Ask for at most {MAX_COUNT_URLS} URLs at once, not {len(urls)}.")
    site = _find_site(site_key)
    canonical: dict[str, str] = {}
    for url in urls:
        try:
            canonical[url] = canonical_url(url)
        except Invalid:
            continue  # a page asking about a malformed link should still get its other counts
    found = dict(
        db.session.execute(
            sa.select(Thread.url, Thread.comment_count).where(
                Thread.site_id == site.id, Thread.url.in_(set(canonical.values()))
            )
        ).all()
    )
    return {url: found.get(canonical.get(url, ""), 0) for url in urls}


def moderation_queue(
    site_keys: str | Iterable[str],
    actor: User | None = None,
    status: Status = Status.PENDING,
    limit: int | None = None,
    cursor: str | None = None,
) -> QueuePage:
    """Comments with ``status`` on the given sites, oldest first (checked against ``actor``)."""
    keys = [site_keys] if isinstance(site_keys, str) else list(dict.fromkeys(site_keys))
    size = _page_limit(limit)
    # Staff first: a commenter learns nothing about which site keys exist.
    if actor is not None and not _is_staff(actor):
        raise Forbidden("Only moderators can see the moderation queue.")
    sites = [_find_site(key) for key in keys]
    if actor is not None:
        for site in sites:
            if _staff_role(actor, site) is None:
                raise NotFound(f"There is no site with the key “{site.key}” that you moderate.")

    query = (
        sa.select(Comment)
        .where(Comment.site_id.in_([site.id for site in sites]), Comment.status == status)
        .options(selectinload(Comment.thread))
    )
    kind = f"queue:{status}"
    if cursor:
        query = query.where(_after(*_decode_cursor(kind, cursor), newest_first=False))
    rows = list(db.session.scalars(query.order_by(Comment.created_at, Comment.id).limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    return QueuePage(rows, _encode_cursor(kind, rows[-1]) if more else None, sites)


# ---------------------------------------------------------------------------------------------
# Users and sites
# ---------------------------------------------------------------------------------------------


# ApiToken.find(plain, with_user=True), built once (the statement is on every signed request).
_TOKEN_WITH_USER = (
    sa.select(ApiToken)
    .where(ApiToken.token_hash == sa.bindparam("token_hash"), ApiToken.revoked_at.is_(None))
    .options(joinedload(ApiToken.user, innerjoin=True))
)


def authenticate_token(plain: str) -> User | None:
    """The user of an unrevoked API token, noting its use (at most once a minute)."""
    token = db.session.scalar(_TOKEN_WITH_USER, {"token_hash": ApiToken.hash(plain)})
    if token is None:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at >= TOKEN_TOUCH_INTERVAL:
        token.last_used_at = now
        try:
            db.session.commit()
        except sa.exc.OperationalError:
            # Bookkeeping only: a locked row (another request touching it) must not fail this one.
            db.session.rollback()
            token = ApiToken.find(plain)
            if token is None:
                return None
    return token.user


def memberships(user: User) -> list[tuple[Site, str]]:
    """The sites ``user`` works on, with the role on each, by name."""
    rows = db.session.execute(
        sa.select(Site, SiteMembership.role)
        .join(SiteMembership, SiteMembership.site_id == Site.id)
        .where(SiteMembership.user_id == user.id)
        .order_by(Site.name, Site.id)
    )
    return [(site, role.value) for site, role in rows]


def get_site(site_key: str, actor: User) -> tuple[Site, str]:
    """A site its staff may see, with the actor's role on it; NotFound for anyone else."""
    site = db.session.scalar(sa.select(Site).where(Site.key == site_key))
    role = _staff_role(actor, site) if site is not None else None
    if site is None or role is None:
        raise NotFound(f"There is no site with the key “{site_key}” that you manage.")
    return site, role


def update_site(
    site_key: str,
    actor: User,
    *,
    name: str | None = None,
    origins: Sequence[str] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> tuple[Site, str]:
    """Change a site's name, origins or some settings (owners and admins only)."""

    def work() -> tuple[Site, str]:
        site, role = get_site(site_key, actor)
        if role not in OWNER_ROLES:
            raise Forbidden("Only the site's owners can change it.")
        if name is not None:
            text = " ".join(name.split())
            if not text or len(text) > 200:
                raise Invalid("The name must be 1 to 200 characters long.")
            site.name = text
        if origins is not None:
            cleaned: list[str] = []
            for value in origins:
                try:
                    origin = normalise_origin(value)
                except ValueError as exc:
                    raise Invalid(_sentence(str(exc))) from None
                if origin not in cleaned:
                    cleaned.append(origin)
            if not cleaned:
                raise Invalid("A site needs at least one origin.")
            site.origins = cleaned  # a new list: JSON columns only see assignments
        if settings:
            try:
                site.moderation_settings = _settings_of(site).with_updates(settings)
            except InvalidSettings as exc:
                raise Invalid(str(exc), {"fields": {"settings": [str(exc)]}}) from None
        return site, role

    return _in_transaction(work)


# ---------------------------------------------------------------------------------------------
# The widget: authors editing and deleting their own comments, readers liking comments
# ---------------------------------------------------------------------------------------------


def _own_comment(comment_id: int, author: User) -> tuple[Comment, SiteSettings]:
    """The author's comment, locked, and its site's settings; 404 for anyone else's."""
    comment = db.session.scalar(
        sa.select(Comment).where(Comment.id == comment_id).with_for_update()
    )
    # Someone else's comment is "not found": its existence is no business of a stranger's.
    if comment is None or comment.author_id is None or comment.author_id != author.id:
        raise NotFound("There is no such comment of yours.")
    if comment.status not in (Status.PUBLISHED, Status.PENDING):
        raise Forbidden("This comment can no longer be changed.")
    settings = _settings_of(comment.site)
    created = comment.created_at
    if created.tzinfo is None:  # SQLite hands back naive UTC
        created = created.replace(tzinfo=utcnow().tzinfo)
    if utcnow() - created > timedelta(minutes=settings.edit_minutes):
        raise Forbidden(
            f"Comments can be changed for {settings.edit_minutes} minutes after posting; "
            "that time has passed."
        )
    return comment, settings


def edit_comment(comment_id: int, author: User, body: str) -> tuple[Comment, Verdict]:
    """Change the text of the author's own comment within the edit window, routed again."""
    try:
        text = clean_body(body)
    except InvalidBody as exc:
        raise Invalid(_sentence(str(exc)), {"fields": {"body": [_sentence(str(exc))]}}) from None
    html = render_markdown(text)
    scores = scoring.score_comment(text)  # before the transaction, as in submit_comment

    def work() -> tuple[Comment, Verdict]:
        comment, settings = _own_comment(comment_id, author)
        site = comment.site
        who = _Identity(author, comment.author_name, None, site_author_of(author, site))
        # The new text goes through the same rules: an edit cannot smuggle abuse past them.
        verdict = decide(text, scores, settings, _standing(site, who))
        before = comment.status
        # A held comment stays held for its moderator; a published one may become held.
        after = verdict.status
        if before == Status.PENDING and verdict.status == Status.PUBLISHED:
            after = before
        if comment.shadow:
            after = before  # stays shown to its author alone
        reasons = [reason.to_dict() for reason in verdict.reasons]
        reasons.append({"code": "edited", "message": "the author edited the comment"})
        comment.body = text
        comment.html = html
        comment.body_hash = _body_hash(text)
        comment.spam_score = scores.spam if scores is not None else None
        comment.abuse_score = scores.abuse if scores is not None else None
        comment.model_version = (scores.model_version or None) if scores is not None else None
        comment.reasons = reasons
        comment.edited_at = utcnow()
        comment.status = after
        comment.decisions.append(
            Decision(
                site_id=site.id,
                actor_type=ActorType.SYSTEM,
                action=None,
                from_status=before,
                to_status=after,
                reasons=reasons,
            )
        )
        if before == Status.PUBLISHED and after != Status.PUBLISHED and not comment.shadow:
            _bump_count(comment.thread_id, -1)
        db.session.flush()
        return comment, Verdict(after, verdict.reasons)

    comment, verdict = _in_transaction(work, keep_loaded=True)
    if comment.shadow:
        verdict = Verdict(Status.PUBLISHED)
    return comment, verdict


def delete_own_comment(comment_id: int, author: User) -> Comment:
    """Delete the author's own comment within the edit window (a system step, with why)."""

    def work() -> Comment:
        comment, _ = _own_comment(comment_id, author)
        before = comment.status
        comment.status = Status.DELETED
        # Recorded as a system step with the author's reason, not as a person's decision:
        # moderator activity, undo and conflict checks count people's decisions only.
        comment.decisions.append(
            Decision(
                site_id=comment.site_id,
                actor_type=ActorType.SYSTEM,
                action=None,
                from_status=before,
                to_status=Status.DELETED,
                reasons=[{"code": "author_deleted", "message": "deleted by its author"}],
            )
        )
        if before == Status.PUBLISHED and not comment.shadow:
            _bump_count(comment.thread_id, -1)
        db.session.flush()
        return comment

    return _in_transaction(work, keep_loaded=True)


def like_comment(comment_id: int, reader: User, liked: bool = True) -> Comment:
    """Like (or unlike) a published comment; once per reader, never one's own."""

    def work() -> Comment:
        comment = db.session.get(Comment, comment_id)
        if comment is None or comment.status != Status.PUBLISHED or comment.shadow:
            raise NotFound("There is no such comment.")
        if comment.author_id == reader.id:
            raise Forbidden("You cannot like your own comment.")
        existing = db.session.scalar(
            sa.select(CommentLike).where(
                CommentLike.comment_id == comment_id, CommentLike.user_id == reader.id
            )
        )
        if liked and existing is None:
            # The unique key settles a race: the loser's transaction runs again, finds the row.
            db.session.add(CommentLike(comment_id=comment_id, user_id=reader.id))
            delta = 1
        elif not liked and existing is not None:
            db.session.delete(existing)
            delta = -1
        else:
            return comment
        db.session.flush()
        # One UPDATE, not read-modify-write, and without bumping the moderators' version.
        db.session.execute(
            sa.update(Comment)
            .where(Comment.id == comment_id)
            .values(like_count=Comment.like_count + delta)
            .execution_options(synchronize_session=False)
        )
        db.session.expire(comment, ["like_count"])
        return comment

    comment = _in_transaction(work)
    db.session.refresh(comment)
    return comment


def liked_by(reader: User | None, comment_ids: Sequence[int]) -> set[int]:
    """Which of ``comment_ids`` the reader has liked."""
    if reader is None or not comment_ids:
        return set()
    return set(
        db.session.scalars(
            sa.select(CommentLike.comment_id).where(
                CommentLike.user_id == reader.id, CommentLike.comment_id.in_(comment_ids)
            )
        )
    )


def _liked_page(
    query: Any, thread: Thread, cursor: str | None, size: int, closed: bool
) -> CommentPage:
    """A page of comments, most liked first; the cursor is an offset (likes change order)."""
    offset = 0
    if cursor:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            kind, offset = json.loads(base64.urlsafe_b64decode(padded.encode()))
            if kind != "liked" or not isinstance(offset, int) or offset < 0:
                raise ValueError(cursor)
        except (ValueError, TypeError, binascii.Error, UnicodeError):
            raise Invalid(
                "The cursor is not valid for this list; start again without one."
            ) from None
    ordered = query.order_by(Comment.like_count.desc(), Comment.created_at, Comment.id)
    rows = list(db.session.scalars(ordered.offset(offset).limit(size + 1)))
    more = len(rows) > size
    following = None
    if more:
        raw = json.dumps(["liked", offset + size], separators=(",", ":")).encode()
        following = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return CommentPage(rows[:size], following, thread, closed)
