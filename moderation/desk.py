"""The moderators' review desk: queues, cards, authors, notes, author actions, bulk and undo.

Services in the manner of ``moderation.service``: views hand plain values in, each state change
is one transaction (``service._in_transaction``), refusals are ``service.ServiceError``s. A site
the actor does not moderate is reported as missing (404), never as forbidden.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import selectinload

from auth.models import Identity, Role, SiteMembership, User
from classifier.normalize import PLACEHOLDERS, normalize_full
from moderation import events, scoring, service
from moderation.db import utcnow
from moderation.extensions import db
from moderation.jobs import EXTENSION as JOBS_EXTENSION
from moderation.jobs import enqueue, job
from moderation.models import (
    ActorType,
    AuthorEvent,
    AuthorNote,
    Comment,
    Decision,
    Report,
    Site,
    SiteAuthor,
    Thread,
)
from moderation.policy import SiteSettings, _word_patterns, match_words
from moderation.service import Conflict, Forbidden, Invalid, NotFound
from moderation.status import Action, Status

__all__ = [
    "AUTHOR_ACTIONS",
    "MAX_BULK",
    "QUEUES",
    "SORTS",
    "UNDO_SECONDS",
    "AuthorKey",
    "AuthorProfile",
    "AuthorSummary",
    "BulkResult",
    "Card",
    "DeskPage",
    "Highlight",
    "QueueFilter",
    "act_on_author",
    "add_note",
    "author_acted",
    "author_profile",
    "author_summary",
    "cards",
    "comment_author_summaries",
    "comment_author_summary",
    "decide_many",
    "find_comment",
    "highlights",
    "invalidate_counts",
    "moderated_sites",
    "queue",
    "queue_counts",
    "site_author",
    "undo_decision",
]

log = logging.getLogger(__name__)

UNDO_SECONDS = 10  # how long a moderator may take back their own last decision
MAX_BULK = 100  # comments in one bulk decision
COUNTS_TTL = 5.0  # seconds a site's queue counts are reused (MODERATION_COUNTS_TTL overrides)
RECENT_COMMENTS = 50  # in the author drawer
RECENT_EVENTS = 100
MAX_NOTE = 2000
MAX_MESSAGE = 1000
MAX_SUSPEND_HOURS = 8760  # a year

QUEUES = ("pending", "reported", "spam", "approved", "rejected")
SORTS = ("oldest", "newest", "abuse", "spam", "reports")
_QUEUE_STATUS = {
    "pending": Status.PENDING,
    "spam": Status.SPAM,
    "approved": Status.PUBLISHED,
    "rejected": Status.REJECTED,
}
# The queues' former names (the ``status`` parameter of the first queue endpoint).
STATUS_QUEUES = {"pending": "pending", "spam": "spam", "rejected": "rejected"}

AUTHOR_ACTIONS = (
    "ban",
    "unban",
    "suspend",
    "unsuspend",
    "premoderate",
    "unpremoderate",
    "trust",
    "untrust",
    "shadow_ban",
    "unshadow_ban",
)
_REASON_CODE = re.compile(r"[a-z_]{1,40}")

# The notifications e-mail ban and suspension messages from this signal (moderation.events).
author_acted = events.author_acted


# ---------------------------------------------------------------------------------------------
# Who moderates what
# ---------------------------------------------------------------------------------------------


def _require_staff(actor: User | None, doing: str = "use the review desk") -> User:
    if actor is None:
        raise service.Unauthorized("Sign in first.")
    if not service._is_staff(actor):
        raise Forbidden(f"Only moderators can {doing}.")
    return actor


def _site_for(actor: User, key: str) -> Site:
    site = db.session.scalar(sa.select(Site).where(Site.key == key))
    if site is None or service._staff_role(actor, site) is None:
        raise NotFound(f"There is no site with the key “{key}” that you moderate.")
    return site


def moderated_sites(actor: User | None, keys: Iterable[str] = ()) -> list[Site]:
    """The sites named by ``keys`` (default: every site ``actor`` moderates), checked."""
    user = _require_staff(actor, "see the moderation queue")
    wanted = list(dict.fromkeys(keys))
    if wanted:
        return [_site_for(user, key) for key in wanted]
    if user.role == Role.ADMIN:
        return list(db.session.scalars(sa.select(Site).order_by(Site.name, Site.id)))
    return list(
        db.session.scalars(
            sa.select(Site)
            .join(SiteMembership, SiteMembership.site_id == Site.id)
            .where(SiteMembership.user_id == user.id)
            .order_by(Site.name, Site.id)
        )
    )


def find_comment(actor: User | None, comment_id: int) -> Comment:
    """A comment on a site ``actor`` moderates; NotFound for any other (or none)."""
    user = _require_staff(actor, "see comments under moderation")
    comment = db.session.get(Comment, comment_id)
    if comment is None or service._staff_role(user, comment.site) is None:
        raise NotFound(f"There is no comment {comment_id} that you moderate.")
    return comment


# ---------------------------------------------------------------------------------------------
# Queues
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilter:
    """Which comments of a queue, in which order (every field optional)."""

    queue: str = "pending"
    sort: str = "oldest"
    article: str | None = None
    reason: str | None = None
    author_id: int | None = None
    author_email: str | None = None
    min_abuse: float | None = None
    max_abuse: float | None = None
    min_spam: float | None = None
    max_spam: float | None = None

    def __post_init__(self) -> None:
        if self.queue not in QUEUES:
            raise Invalid(f"queue must be one of {', '.join(QUEUES)}, not “{self.queue}”.")
        if self.sort not in SORTS:
            raise Invalid(f"sort must be one of {', '.join(SORTS)}, not “{self.sort}”.")
        if self.reason is not None and not _REASON_CODE.fullmatch(self.reason):
            raise Invalid(f"“{self.reason}” is not a reason code (like abuse_score).")
        for kind in ("abuse", "spam"):
            low, high = getattr(self, f"min_{kind}"), getattr(self, f"max_{kind}")
            for name, value in ((f"min_{kind}", low), (f"max_{kind}", high)):
                if value is not None and not 0 <= value <= 1:
                    raise Invalid(f"{name} must be from 0 to 1, not {value}.")
            if low is not None and high is not None and low > high:
                raise Invalid(f"min_{kind} ({low}) must not be above max_{kind} ({high}).")


@dataclass(frozen=True)
class DeskPage:
    """One page of a queue, the sites it covers and their queue counts."""

    comments: list[Comment]
    next_cursor: str | None
    sites: list[Site]
    counts: dict[str, int]


def _sort_key(sort: str) -> tuple[sa.ColumnElement[Any], bool, bool]:
    """The sort column, whether it runs descending, and whether ties run by id descending."""
    if sort == "oldest":
        return Comment.created_at, False, False
    if sort == "newest":
        return Comment.created_at, True, True
    if sort == "reports":
        return Comment.report_count, True, False
    # Unscored comments (classifier unavailable) sort after every scored one.
    column = Comment.abuse_score if sort == "abuse" else Comment.spam_score
    return sa.func.coalesce(column, -1.0), True, False


def _cursor_value(sort: str, comment: Comment) -> Any:
    if sort in ("oldest", "newest"):
        return comment.created_at.isoformat()
    if sort == "reports":
        return comment.report_count
    score = comment.abuse_score if sort == "abuse" else comment.spam_score
    return -1.0 if score is None else score


def _encode_cursor(kind: str, value: Any, row_id: int) -> str:
    raw = json.dumps([kind, value, row_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(kind: str, sort: str, cursor: str) -> tuple[Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        found, value, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if found != kind or not isinstance(row_id, int) or isinstance(row_id, bool):
            raise ValueError(cursor)
        if sort in ("oldest", "newest"):
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError(cursor)
        elif sort == "reports":
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(cursor)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise Invalid("The cursor is not valid for this list; start again without one.") from None
    return value, row_id


def _has_reason(code: str) -> sa.ColumnElement[bool]:
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.type_coerce(Comment.reasons, postgresql.JSONB).contains([{"code": code}])
    return sa.text(
        "EXISTS (SELECT 1 FROM json_each(comments.reasons) "
        "WHERE json_extract(json_each.value, '$.code') = :reason_code)"
    ).bindparams(reason_code=code)


def _filters(sites: Sequence[Site], what: QueueFilter) -> list[sa.ColumnElement[bool]]:
    ids = [site.id for site in sites]
    conditions: list[sa.ColumnElement[bool]] = [Comment.site_id.in_(ids)]
    if what.queue == "reported":
        conditions.append(Comment.needs_review.is_(True))
    else:
        conditions.append(Comment.status == _QUEUE_STATUS[what.queue])
    if what.article:
        url = service.canonical_url(what.article)
        conditions.append(
            Comment.thread_id.in_(
                sa.select(Thread.id).where(Thread.site_id.in_(ids), Thread.url == url)
            )
        )
    if what.reason:
        conditions.append(_has_reason(what.reason))
    if what.author_id is not None:
        conditions.append(Comment.author_id == what.author_id)
    if what.author_email:
        conditions.append(Comment.guest_email == what.author_email.strip().lower())
    for column, low, high in (
        (Comment.abuse_score, what.min_abuse, what.max_abuse),
        (Comment.spam_score, what.min_spam, what.max_spam),
    ):
        if low is not None:
            conditions.append(column >= low)
        if high is not None:
            conditions.append(column <= high)
    return conditions


def queue(
    actor: User | None,
    site_keys: Iterable[str] = (),
    what: QueueFilter | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> DeskPage:
    """A page of a queue on the given sites (all the actor moderates by default), keyset-paged."""
    what = what or QueueFilter()
    size = service._page_limit(limit)
    sites = moderated_sites(actor, site_keys)
    counts = queue_counts(sites)
    if not sites:
        return DeskPage([], None, [], counts)

    column, descending, id_descending = _sort_key(what.sort)
    kind = f"desk:{what.queue}:{what.sort}"
    query = sa.select(Comment).where(*_filters(sites, what))
    if cursor:
        value, last_id = _decode_cursor(kind, what.sort, cursor)
        beyond = column < value if descending else column > value
        tie = Comment.id < last_id if id_descending else Comment.id > last_id
        query = query.where(sa.or_(beyond, sa.and_(column == value, tie)))
    query = query.order_by(
        column.desc() if descending else column.asc(),
        Comment.id.desc() if id_descending else Comment.id.asc(),
    ).options(selectinload(Comment.thread))
    rows = list(db.session.scalars(query.limit(size + 1)))
    more = len(rows) > size
    rows = rows[:size]
    next_cursor = (
        _encode_cursor(kind, _cursor_value(what.sort, rows[-1]), rows[-1].id) if more else None
    )
    return DeskPage(rows, next_cursor, sites, counts)


# --- counts: cached for a few seconds per site, in Redis when REDIS_URL is set ----------------


class _LocalCounts:
    """A per-app, per-process cache of each site's queue counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[int, tuple[float, dict[str, int]]] = {}

    def get(self, site_id: int) -> dict[str, int] | None:
        with self._lock:
            item = self._items.get(site_id)
        if item is None or item[0] < time.monotonic():
            return None
        return dict(item[1])

    def put(self, site_id: int, counts: dict[str, int], ttl: float) -> None:
        with self._lock:
            self._items[site_id] = (time.monotonic() + ttl, dict(counts))

    def drop(self, site_id: int) -> None:
        with self._lock:
            self._items.pop(site_id, None)


def _local_cache(app: Flask) -> _LocalCounts:
    cache = app.extensions.get("desk_counts")
    if cache is None:
        cache = app.extensions.setdefault("desk_counts", _LocalCounts())
    return cache  # type: ignore[no-any-return]


_redis_clients: dict[str, Any] = {}


def _redis() -> Any | None:
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    client = _redis_clients.get(url)
    if client is None:
        import redis  # only needed when Redis is configured

        client = _redis_clients.setdefault(
            url, redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        )
    return client


def _redis_key(site_id: int) -> str:
    # Namespaced by database, so that installations (or test runs) sharing a Redis never read
    # each other's counts for a site with the same id.
    database = db.engine.url.render_as_string(hide_password=True)
    schema = str(current_app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}).get("connect_args", ""))
    space = hashlib.sha256(f"{database}|{schema}".encode()).hexdigest()[:12]
    return f"moderation:desk:counts:{space}:{site_id}"


def _cached(site_id: int) -> dict[str, int] | None:
    client = _redis()
    if client is None:
        return _local_cache(current_app._get_current_object()).get(site_id)
    try:
        raw = client.get(_redis_key(site_id))
    except Exception:  # a cache outage must not stop the desk; count instead
        log.warning("Redis is unreachable; counting the queues without the cache")
        return None
    return json.loads(raw) if raw else None


def _store(site_id: int, counts: dict[str, int]) -> None:
    ttl = float(current_app.config.get("MODERATION_COUNTS_TTL", COUNTS_TTL))
    client = _redis()
    if client is None:
        _local_cache(current_app._get_current_object()).put(site_id, counts, ttl)
        return
    try:
        client.set(_redis_key(site_id), json.dumps(counts), px=max(1, int(ttl * 1000)))
    except Exception:
        log.warning("Redis is unreachable; queue counts are not cached")


def invalidate_counts(site_id: int) -> None:
    """Forget a site's cached counts (after a decision or a new comment on it)."""
    client = _redis()
    if client is None:
        _local_cache(current_app._get_current_object()).drop(site_id)
        return
    try:
        client.delete(_redis_key(site_id))
    except Exception:
        log.warning("Redis is unreachable; queue counts may lag for a few seconds")


def _count_site(site_id: int) -> dict[str, int]:
    # Two grouped index scans per site, run at most once per TTL (not per request).
    by_status = dict(
        db.session.execute(
            sa.select(Comment.status, sa.func.count())
            .where(Comment.site_id == site_id, Comment.status.in_(list(_QUEUE_STATUS.values())))
            .group_by(Comment.status)
        ).all()
    )
    reported = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Comment)
        .where(Comment.site_id == site_id, Comment.needs_review.is_(True))
    )
    counts = {queue: int(by_status.get(status, 0)) for queue, status in _QUEUE_STATUS.items()}
    counts["reported"] = int(reported or 0)
    return counts


def queue_counts(sites: Sequence[Site]) -> dict[str, int]:
    """How many comments wait in each queue, summed over ``sites`` (cached a few seconds)."""
    total = dict.fromkeys(QUEUES, 0)
    for site in sites:
        counts = _cached(site.id)
        if counts is None:
            counts = _count_site(site.id)
            _store(site.id, counts)
        for name in QUEUES:
            total[name] += int(counts.get(name, 0))
    return total


def site_counts(actor: User | None, site_keys: Iterable[str] = ()) -> dict[str, int]:
    """The queue counts of the given sites (all the actor moderates by default)."""
    return queue_counts(moderated_sites(actor, site_keys))


@events.comment_posted.connect
def _forget_counts_on_post(sender: Any, comment: Comment, **extra: Any) -> None:
    invalidate_counts(comment.site_id)


@events.comment_decided.connect
def _forget_counts_on_decision(sender: Any, comment: Comment, **extra: Any) -> None:
    invalidate_counts(comment.site_id)


# ---------------------------------------------------------------------------------------------
# Cards: highlights, the parent comment, the last human decision
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Highlight:
    """A stretch of a comment's body that pushed it into a queue, by character offsets."""

    start: int
    end: int
    source: str  # "abuse", "spam", "banned_word" or "suspect_word"
    label: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"start": self.start, "end": self.end, "source": self.source, "label": self.label}


# When stretches overlap, the merged one takes the most severe source.
_SOURCE_RANK = {"banned_word": 0, "abuse": 1, "spam": 2, "suspect_word": 3}
_MIN_WEIGHT = 0.3  # explanation weights below this are noise, not a reason to highlight
_RELATIVE_WEIGHT = 0.25  # ... and so are those far below the strongest one
# The classifier sees links, addresses and mentions as placeholders; moderators read words.
_PLACEHOLDER_LABELS = {token: kind for kind, token in PLACEHOLDERS.items()}


def _word_spans(body: str, words: Sequence[str], source: str) -> list[Highlight]:
    found = match_words(body, words)
    if not found:
        return []
    spans: list[Highlight] = []
    folded = body.casefold()
    same_length = len(folded) == len(body)  # offsets carry over unless casefolding grew a letter
    normal = normalize_full(body)
    for word in found:
        # The policy's own patterns, so that exactly what it matched is highlighted.
        for pattern in _word_patterns(word):
            if same_length:
                spans += [Highlight(*m.span(), source, word) for m in pattern.finditer(folded)]
            for match in pattern.finditer(normal.text):
                spans.append(Highlight(*normal.span(*match.span()), source, word))
    return spans


@lru_cache(maxsize=4096)
def _explained(path: str, version: str, body: str, tasks: tuple[str, ...]) -> tuple[Highlight, ...]:
    """Classifier highlights of ``body`` (cached: explaining costs about 10 ms)."""
    # The model that scored the comment may have been replaced since (``version`` is only part
    # of the cache key): the current one's explanation is the best there is.
    model = scoring._load(path)
    if model is None:
        return ()
    try:
        explanation = model.explain(body)
    except Exception:
        log.exception("The classifier could not explain a comment; no highlights")
        return ()
    spans: list[Highlight] = []
    for task in tasks:
        items = [item for item in explanation.get(task, []) if item.spans]
        if not items:
            continue
        floor = max(_MIN_WEIGHT, _RELATIVE_WEIGHT * max(item.weight for item in items))
        for item in items:
            if item.weight >= floor:
                label = _PLACEHOLDER_LABELS.get(item.feature, item.feature)
                spans += [Highlight(start, end, task, label) for start, end in item.spans]
    return tuple(spans)


def _merge(spans: Iterable[Highlight], length: int) -> list[Highlight]:
    ordered = sorted(
        (s for s in spans if 0 <= s.start < s.end <= length),
        key=lambda s: (s.start, s.end),
    )
    merged: list[Highlight] = []
    for span in ordered:
        last = merged[-1] if merged else None
        if last is None or span.start >= last.end:
            merged.append(span)
            continue
        source = min(last.source, span.source, key=_SOURCE_RANK.__getitem__)
        labels = list(dict.fromkeys([*last.label.split(", "), span.label]))
        merged[-1] = Highlight(last.start, max(last.end, span.end), source, ", ".join(labels))
    return merged


def highlights(comment: Comment, settings: SiteSettings | None = None) -> list[Highlight]:
    """What to highlight in a comment: listed words and the classifier's strongest reasons."""
    settings = settings or service._settings_of(comment.site)
    body = comment.body
    spans = _word_spans(body, settings.banned_words, "banned_word")
    spans += _word_spans(body, settings.suspect_words, "suspect_word")
    tasks = _explained_tasks(comment)
    if tasks and comment.explained is not None:
        # Worked out in the background when the comment was held (explain_comment).
        spans += [Highlight(*item) for item in comment.explained if item[2] in tasks]
    elif tasks and comment.model_version:
        spans += _explained(scoring.model_path(), comment.model_version, body, tasks)
    return _merge(spans, len(body))


def _explained_tasks(comment: Comment) -> tuple[str, ...]:
    # The classifier's reasons only where its score is why the comment is in the queue.
    codes = {reason.get("code") for reason in comment.reasons or []}
    return tuple(task for task in ("abuse", "spam") if {f"{task}_score", f"{task}_reject"} & codes)


@events.comment_posted.connect
def _explain_held_comment(sender: Any, comment: Comment, **extra: Any) -> None:
    # Moderators open held comments by the page: each explanation costs milliseconds, so it
    # is worked out once, off the request, rather than for every card on every page view.
    if not isinstance(sender, Flask) or JOBS_EXTENSION not in sender.extensions:
        return
    if comment.status != Status.PUBLISHED and _explained_tasks(comment) and comment.model_version:
        try:
            enqueue(explain_comment, comment.id)
        except Exception:
            log.exception("Could not queue the explanation of comment %s", comment.id)


@job("default")
def explain_comment(comment_id: int) -> None:
    """Store the classifier's highlights of a held comment for the desk's cards."""
    comment = db.session.get(Comment, comment_id)
    if comment is None or comment.explained is not None:
        return
    tasks = _explained_tasks(comment)
    if not tasks or not comment.model_version:
        return
    spans = _explained(scoring.model_path(), comment.model_version, comment.body, tasks)
    # Derived data: a plain UPDATE that leaves the version alone (no false "already decided").
    db.session.execute(
        sa.update(Comment.__table__)
        .where(Comment.__table__.c.id == comment_id)
        .values(explained=[[h.start, h.end, h.source, h.label] for h in spans])
    )
    db.session.commit()


@dataclass(frozen=True)
class Card:
    """A comment with what a moderator needs beside it."""

    comment: Comment
    highlights: list[Highlight] = field(default_factory=list)
    parent: Comment | None = None
    last_decision: Decision | None = None


def cards(comments: Sequence[Comment], with_highlights: bool = True) -> list[Card]:
    """Cards for ``comments`` (in order), loading parents and last decisions in two queries."""
    ids = [comment.id for comment in comments]
    parent_ids = {c.parent_id for c in comments if c.parent_id is not None}
    parents: dict[int, Comment] = {}
    if parent_ids:
        found = db.session.scalars(sa.select(Comment).where(Comment.id.in_(parent_ids)))
        parents = {parent.id: parent for parent in found}
    latest: dict[int, Decision] = {}
    if ids:
        newest = (
            sa.select(sa.func.max(Decision.id))
            .where(Decision.comment_id.in_(ids), Decision.actor_type == ActorType.USER)
            .group_by(Decision.comment_id)
        )
        latest = {
            d.comment_id: d
            for d in db.session.scalars(
                sa.select(Decision)
                .where(Decision.id.in_(newest))
                .options(selectinload(Decision.actor))
            )
        }
    settings: dict[int, SiteSettings] = {}
    result = []
    for comment in comments:
        marks: list[Highlight] = []
        if with_highlights:
            if comment.site_id not in settings:
                settings[comment.site_id] = service._settings_of(comment.site)
            marks = highlights(comment, settings[comment.site_id])
        parent = parents.get(comment.parent_id) if comment.parent_id is not None else None
        result.append(Card(comment, marks, parent, latest.get(comment.id)))
    return result


# ---------------------------------------------------------------------------------------------
# Authors
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorKey:
    """An author on a site: a user, or a guest known by e-mail address."""

    user_id: int | None = None
    guest_email: str | None = None

    def __post_init__(self) -> None:
        if (self.user_id is None) == (self.guest_email is None):
            raise Invalid("Name an author by user id or, for a guest, by e-mail address.")
        if self.guest_email is not None:
            object.__setattr__(self, "guest_email", self.guest_email.strip().lower())

    @classmethod
    def of(cls, comment: Comment) -> AuthorKey | None:
        """The author of ``comment`` (None if their account was deleted)."""
        if comment.author_id is not None:
            return cls(user_id=comment.author_id)
        if comment.guest_email:
            return cls(guest_email=comment.guest_email)
        return None

    def owns(self, model: Any = Comment) -> sa.ColumnElement[bool]:
        """A condition on ``model`` (Comment, SiteAuthor, AuthorNote ...) matching this author."""
        if self.user_id is not None:
            column = model.author_id if model is Comment else model.user_id
            return column == self.user_id  # type: ignore[no-any-return]
        user_column = model.author_id if model is Comment else model.user_id
        return sa.and_(user_column.is_(None), model.guest_email == self.guest_email)

    def describe(self) -> str:
        """The key as people read it."""
        return f"user {self.user_id}" if self.user_id is not None else f"guest {self.guest_email}"


@dataclass(frozen=True)
class AuthorSummary:
    """What a moderator sees of an author on one site."""

    id: int | None
    guest_email: str | None
    name: str
    login_methods: list[str]
    account_created_at: datetime | None
    approved: int
    rejected: int
    pending: int
    spam: int
    reports_made: int
    reports_received: int
    notes_count: int
    state: dict[str, Any]


def site_author(site_id: int, key: AuthorKey) -> SiteAuthor | None:
    """The site's stored decisions about the author, if any."""
    return db.session.scalar(
        sa.select(SiteAuthor).where(SiteAuthor.site_id == site_id, key.owns(SiteAuthor))
    )


def _state(row: SiteAuthor | None, user: User | None) -> dict[str, Any]:
    now = utcnow()
    suspended = row.suspended_until if row is not None else None
    if suspended is not None and suspended <= now:
        suspended = None  # over
    return {
        "banned": bool(row and row.banned),
        "ban_message": row.ban_message if row is not None else "",
        "suspended_until": suspended,
        "suspend_message": (row.suspend_message if row is not None and suspended else ""),
        "premoderate": bool(row and row.premoderate),
        "trusted": bool(row and row.trusted),
        "shadow_banned": bool(row and row.shadow_banned),
        # The installation-wide account state (admins' bans), shown for context.
        "account_banned": bool(user and user.banned),
        "account_suspended_until": (
            user.suspended_until
            if user is not None and user.suspended_until and user.suspended_until > now
            else None
        ),
    }


def _exists_on_site(site: Site, key: AuthorKey) -> bool:
    for model in (Comment, SiteAuthor, AuthorNote):
        if db.session.scalar(
            sa.select(model.id).where(model.site_id == site.id, key.owns(model)).limit(1)
        ):
            return True
    return False


def _author_user(site: Site, key: AuthorKey) -> User | None:
    """The author's account, NotFound unless they wrote (or were noted) on ``site``.

    Guests are not checked: a site may ban an e-mail address before it ever comments, and the
    address says nothing about accounts elsewhere.
    """
    if key.user_id is None:
        return None
    if not _exists_on_site(site, key):
        raise NotFound(f"There is no author {key.describe()} on this site.")
    return db.session.get(User, key.user_id) if key.user_id is not None else None


def _summary(site: Site, key: AuthorKey, user: User | None) -> AuthorSummary:
    by_status = dict(
        db.session.execute(
            sa.select(Comment.status, sa.func.count())
            .where(Comment.site_id == site.id, key.owns())
            .group_by(Comment.status)
        ).all()
    )
    received = db.session.scalar(
        sa.select(sa.func.count(Report.id))
        .join(Comment, Comment.id == Report.comment_id)
        .where(Report.site_id == site.id, key.owns())
    )
    made = 0
    if key.user_id is not None:
        made = db.session.scalar(
            sa.select(sa.func.count(Report.id)).where(
                Report.site_id == site.id, Report.reporter_id == key.user_id
            )
        )
    notes = db.session.scalar(
        sa.select(sa.func.count(AuthorNote.id)).where(
            AuthorNote.site_id == site.id, key.owns(AuthorNote)
        )
    )
    if user is not None:
        name = user.display_name
        methods = sorted(
            {
                "sso" if provider.startswith("sso:") else provider
                for provider in db.session.scalars(
                    sa.select(Identity.provider).where(Identity.user_id == user.id)
                )
            }
        )
        created: datetime | None = user.created_at
    else:
        name = db.session.scalar(
            sa.select(Comment.author_name)
            .where(Comment.site_id == site.id, key.owns())
            .order_by(Comment.created_at.desc(), Comment.id.desc())
            .limit(1)
        ) or (key.guest_email or "")
        methods, created = ["guest"], None
    return AuthorSummary(
        id=key.user_id,
        guest_email=key.guest_email,
        name=name,
        login_methods=methods,
        account_created_at=created,
        approved=int(by_status.get(Status.PUBLISHED, 0)),
        rejected=int(by_status.get(Status.REJECTED, 0)),
        pending=int(by_status.get(Status.PENDING, 0)),
        spam=int(by_status.get(Status.SPAM, 0)),
        reports_made=int(made or 0),
        reports_received=int(received or 0),
        notes_count=int(notes or 0),
        state=_state(site_author(site.id, key), user),
    )


def author_summary(actor: User | None, site_key: str, key: AuthorKey) -> AuthorSummary:
    """An author's record on a site the actor moderates."""
    site = _site_for(_require_staff(actor, "see authors' records"), site_key)
    return _summary(site, key, _author_user(site, key))


def comment_author_summary(comment: Comment) -> AuthorSummary | None:
    """The record of a comment's author on its site (the caller checked the actor)."""
    key = AuthorKey.of(comment)
    if key is None:
        return None
    user = db.session.get(User, key.user_id) if key.user_id is not None else None
    return _summary(comment.site, key, user)


_Who = tuple[int, int | None, str | None]  # site id, user id, guest e-mail


def _who(site_id: int, user_id: int | None, email: str | None) -> _Who:
    return (site_id, user_id, None if user_id is not None else email)


def comment_author_summaries(comments: Sequence[Comment]) -> dict[int, AuthorSummary]:
    """``comment_author_summary`` for a page of comments in a few grouped queries, by id."""
    keys = {c.id: _who(c.site_id, c.author_id, c.guest_email) for c in comments}
    keys = {cid: who for cid, who in keys.items() if who[1] is not None or who[2]}
    if not keys:
        return {}
    site_ids = {who[0] for who in keys.values()}
    user_ids = {who[1] for who in keys.values() if who[1] is not None}
    emails = {who[2] for who in keys.values() if who[2]}
    mine = sa.or_(
        Comment.author_id.in_(user_ids),
        sa.and_(Comment.author_id.is_(None), Comment.guest_email.in_(emails)),
    )
    by_status: dict[_Who, dict[Status, int]] = {}
    for site_id, user_id, email, status, count in db.session.execute(
        sa.select(
            Comment.site_id, Comment.author_id, Comment.guest_email, Comment.status, sa.func.count()
        )
        .where(Comment.site_id.in_(site_ids), mine)
        .group_by(Comment.site_id, Comment.author_id, Comment.guest_email, Comment.status)
    ):
        by_status.setdefault(_who(site_id, user_id, email), {})[status] = count
    received: dict[_Who, int] = {}
    for site_id, user_id, email, count in db.session.execute(
        sa.select(Comment.site_id, Comment.author_id, Comment.guest_email, sa.func.count(Report.id))
        .join(Report, Report.comment_id == Comment.id)
        .where(Comment.site_id.in_(site_ids), mine)
        .group_by(Comment.site_id, Comment.author_id, Comment.guest_email)
    ):
        who = _who(site_id, user_id, email)
        received[who] = received.get(who, 0) + count
    made = {
        (site_id, user_id, None): count
        for site_id, user_id, count in db.session.execute(
            sa.select(Report.site_id, Report.reporter_id, sa.func.count())
            .where(Report.site_id.in_(site_ids), Report.reporter_id.in_(user_ids))
            .group_by(Report.site_id, Report.reporter_id)
        )
    }
    noted = {
        _who(site_id, user_id, email): count
        for site_id, user_id, email, count in db.session.execute(
            sa.select(
                AuthorNote.site_id, AuthorNote.user_id, AuthorNote.guest_email, sa.func.count()
            )
            .where(
                AuthorNote.site_id.in_(site_ids),
                sa.or_(AuthorNote.user_id.in_(user_ids), AuthorNote.guest_email.in_(emails)),
            )
            .group_by(AuthorNote.site_id, AuthorNote.user_id, AuthorNote.guest_email)
        )
    }
    records = {
        _who(row.site_id, row.user_id, row.guest_email): row
        for row in db.session.scalars(
            sa.select(SiteAuthor).where(
                SiteAuthor.site_id.in_(site_ids),
                sa.or_(SiteAuthor.user_id.in_(user_ids), SiteAuthor.guest_email.in_(emails)),
            )
        )
    }
    users = {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(user_ids)))}
    methods: dict[int, set[str]] = {}
    for user_id, provider in db.session.execute(
        sa.select(Identity.user_id, Identity.provider).where(Identity.user_id.in_(user_ids))
    ):
        methods.setdefault(user_id, set()).add("sso" if provider.startswith("sso:") else provider)

    result = {}
    names = {c.id: c.author_name for c in comments}
    for comment_id, who in keys.items():
        counts = by_status.get(who, {})
        user = users.get(who[1]) if who[1] is not None else None
        result[comment_id] = AuthorSummary(
            id=who[1],
            guest_email=who[2],
            name=user.display_name if user is not None else names[comment_id],
            login_methods=sorted(methods.get(who[1], set())) if who[1] is not None else ["guest"],
            account_created_at=user.created_at if user is not None else None,
            approved=counts.get(Status.PUBLISHED, 0),
            rejected=counts.get(Status.REJECTED, 0),
            pending=counts.get(Status.PENDING, 0),
            spam=counts.get(Status.SPAM, 0),
            reports_made=made.get(who, 0),
            reports_received=received.get(who, 0),
            notes_count=noted.get(who, 0),
            state=_state(records.get(who), user),
        )
    return result


@dataclass(frozen=True)
class AuthorProfile:
    """The author drawer: their record, recent comments, notes and the actions on them."""

    site: Site
    summary: AuthorSummary
    comments: list[Comment]
    notes: list[AuthorNote]
    events: list[AuthorEvent]


def author_profile(actor: User | None, site_key: str, key: AuthorKey) -> AuthorProfile:
    """Everything the author drawer shows, for a site the actor moderates."""
    site = _site_for(_require_staff(actor, "see authors' records"), site_key)
    user = _author_user(site, key)
    comments = list(
        db.session.scalars(
            sa.select(Comment)
            .where(Comment.site_id == site.id, key.owns())
            .order_by(Comment.created_at.desc(), Comment.id.desc())
            .limit(RECENT_COMMENTS)
            .options(selectinload(Comment.thread))
        )
    )
    notes = list(
        db.session.scalars(
            sa.select(AuthorNote)
            .where(AuthorNote.site_id == site.id, key.owns(AuthorNote))
            .order_by(AuthorNote.created_at.desc(), AuthorNote.id.desc())
            .options(selectinload(AuthorNote.moderator))
        )
    )
    history = list(
        db.session.scalars(
            sa.select(AuthorEvent)
            .where(AuthorEvent.site_id == site.id, key.owns(AuthorEvent))
            .order_by(AuthorEvent.created_at.desc(), AuthorEvent.id.desc())
            .limit(RECENT_EVENTS)
            .options(selectinload(AuthorEvent.actor))
        )
    )
    return AuthorProfile(site, _summary(site, key, user), comments, notes, history)


def add_note(actor: User | None, site_key: str, key: AuthorKey, body: str) -> AuthorNote:
    """A moderator's note about an author, audited as an AuthorEvent ``note``."""
    text = (body or "").strip()
    if not text:
        raise Invalid("Write the note first.", {"fields": {"body": ["Required."]}})
    if len(text) > MAX_NOTE:
        raise Invalid(f"A note must be at most {MAX_NOTE} characters long.")

    def work() -> AuthorNote:
        user = _require_staff(service._reload_user(actor), "write notes about authors")
        site = _site_for(user, site_key)
        _author_user(site, key)
        note = AuthorNote(
            site_id=site.id,
            user_id=key.user_id,
            guest_email=key.guest_email,
            moderator_id=user.id,
            body=text,
        )
        db.session.add(note)
        db.session.add(
            AuthorEvent(
                site_id=site.id,
                actor_id=user.id,
                user_id=key.user_id,
                guest_email=key.guest_email,
                action="note",
                message=text,
            )
        )
        db.session.flush()
        return note

    return service._in_transaction(work)


def act_on_author(
    actor: User | None,
    site_key: str,
    key: AuthorKey,
    action: str,
    message: str | None = None,
    hours: int | None = None,
) -> AuthorSummary:
    """Ban, suspend, pre-moderate, trust or shadow-ban an author on a site (or undo it)."""
    if action not in AUTHOR_ACTIONS:
        raise Invalid(f"action must be one of {', '.join(AUTHOR_ACTIONS)}, not “{action}”.")
    text = " ".join((message or "").split())
    if len(text) > MAX_MESSAGE:
        raise Invalid(f"The message must be at most {MAX_MESSAGE} characters long.")
    if action == "suspend" and (
        hours is None or isinstance(hours, bool) or not 1 <= hours <= MAX_SUSPEND_HOURS
    ):
        raise Invalid(
            f"Say for how many hours to suspend (1 to {MAX_SUSPEND_HOURS}).",
            {"fields": {"hours": ["Required for suspend."]}},
        )

    def work() -> tuple[Site, AuthorEvent, AuthorSummary]:
        user = _require_staff(service._reload_user(actor), "act on authors")
        site = _site_for(user, site_key)
        target = _author_user(site, key)
        if target is not None and service._staff_role(target, site) is not None:
            raise Forbidden("Moderators, owners and admins of the site cannot be acted on here.")
        row = site_author(site.id, key)
        if row is None:
            row = SiteAuthor(site_id=site.id, user_id=key.user_id, guest_email=key.guest_email)
            db.session.add(row)
        until = None
        if action == "ban":
            row.banned, row.ban_message = True, text
        elif action == "unban":
            row.banned, row.ban_message = False, ""
        elif action == "suspend":
            until = utcnow() + timedelta(hours=hours or 0)
            row.suspended_until, row.suspend_message = until, text
        elif action == "unsuspend":
            row.suspended_until, row.suspend_message = None, ""
        elif action in ("premoderate", "trust"):
            # One or the other: trusting an author ends their pre-moderation and vice versa.
            row.premoderate, row.trusted = action == "premoderate", action == "trust"
        elif action == "unpremoderate":
            row.premoderate = False
        elif action == "untrust":
            row.trusted = False
        elif action == "shadow_ban":
            row.shadow_banned = True
        elif action == "unshadow_ban":
            row.shadow_banned = False
        row.updated_by_id = user.id
        event = AuthorEvent(
            site_id=site.id,
            actor_id=user.id,
            user_id=key.user_id,
            guest_email=key.guest_email,
            action=action,
            message=text,
            until=until,
        )
        db.session.add(event)
        db.session.flush()
        return site, event, _summary(site, key, target)

    site, event, summary = service._in_transaction(work)
    author = db.session.get(User, key.user_id) if key.user_id is not None else None
    author_acted.send(
        current_app._get_current_object(),
        site=site,
        event=event,
        author=author,
        guest_email=key.guest_email,
        actor=actor,
    )
    return summary


# ---------------------------------------------------------------------------------------------
# Decisions: many at once, and undo
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BulkResult:
    """What happened to one comment of a bulk decision."""

    id: int
    comment: Comment | None = None
    status: int = 200
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the decision was recorded."""
        return self.comment is not None


def decide_many(
    actor: User | None,
    action: Action,
    items: Sequence[tuple[int, int | None]],
    reason: str | None = None,
    notify: bool | None = None,
) -> list[BulkResult]:
    """Decide on each ``(comment id, version or None)``, each in its own transaction."""
    if not items:
        raise Invalid("Select at least one comment.")
    if len(items) > MAX_BULK:
        raise Invalid(f"Decide on at most {MAX_BULK} comments at once, not {len(items)}.")
    ids = [comment_id for comment_id, _ in items]
    if len(set(ids)) != len(ids):
        raise Invalid("Each comment may appear only once in a bulk decision.")
    _require_staff(actor, "decide on comments")
    results = []
    for comment_id, version in items:
        try:
            comment = service.decide_comment(
                comment_id, action, actor, version, reason=reason, notify=notify
            )
        except (Conflict, NotFound) as refusal:
            results.append(
                BulkResult(
                    comment_id, status=refusal.status, error=refusal.message, extra=refusal.extra
                )
            )
        else:
            results.append(BulkResult(comment_id, comment))
    return results


def undo_decision(actor: User | None, comment_id: int) -> Comment:
    """Take back the actor's own last decision on a comment, within UNDO_SECONDS, if it is last."""

    def work() -> Comment:
        user = _require_staff(service._reload_user(actor), "decide on comments")
        comment = db.session.scalar(
            sa.select(Comment)
            .where(Comment.id == comment_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
        if comment is None or service._staff_role(user, comment.site) is None:
            raise NotFound(f"There is no comment {comment_id} that you moderate.")
        last = service._last_human_decision(comment.id)
        extra = {"status": str(comment.status), "version": comment.version}
        if last is None or last.action is None:
            raise Conflict("There is no decision on this comment to undo.", extra)
        if last.actor_id != user.id:
            raise service._conflict(comment, last)
        age = (utcnow() - last.created_at).total_seconds()
        if age > UNDO_SECONDS:
            raise Conflict(
                f"Your decision is {int(age)} seconds old; a decision can be undone for "
                f"{UNDO_SECONDS} seconds. Decide again instead.",
                extra,
            )
        if last.from_status is None or comment.status != last.to_status:
            raise service._conflict(comment, last)
        before, after = comment.status, last.from_status
        codes = {reason.get("code") for reason in last.reasons or []}
        reasons = [
            {
                "code": "moderator_undo",
                "message": f"{service._display(user)} undid their {last.action} "
                f"of {service._iso(last.created_at)}",
            }
        ]
        # Back where it was: in the Reported queue, hidden from everyone but its author ...
        if "report_review_done" in codes:
            comment.needs_review = True
        if "shadow_lifted" in codes:
            comment.shadow = True
        comment.status = after
        db.session.add(
            Decision(
                comment_id=comment.id,
                site_id=comment.site_id,
                actor_type=ActorType.USER,
                actor_id=user.id,
                action=None,
                from_status=before,
                to_status=after,
                reasons=reasons,
            )
        )
        if before != after and Status.PUBLISHED in (before, after):
            service._bump_count(comment.thread_id, 1 if after == Status.PUBLISHED else -1)
        db.session.flush()
        return comment

    comment = service._in_transaction(work)
    invalidate_counts(comment.site_id)
    return comment
