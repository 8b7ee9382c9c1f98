"""The audit log: every decision on a comment (system and human) and every action on an author.

Read-only queries over ``Decision`` and ``AuthorEvent``, newest first with keyset pagination,
filtered by site, comment, moderator, actor type, action and time; a CSV export of the same; and
moderator activity (decisions per hour, per moderator, time from post to first human decision).
Only the staff of a site see its log; a global admin may leave the site out to see every site.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from auth.models import Role, User
from moderation.db import utcnow
from moderation.extensions import db
from moderation.models import ActorType, AuthorEvent, Comment, Decision, Site
from moderation.service import Forbidden, Invalid, NotFound, _display, _is_staff, _staff_role
from moderation.status import Action, Status

__all__ = [
    "CSV_COLUMNS",
    "DECISION_ACTIONS",
    "MAX_DAYS",
    "Activity",
    "AuditEntry",
    "AuditFilter",
    "AuditPage",
    "audit_csv",
    "audit_log",
    "moderator_activity",
    "parse_moment",
]

DEFAULT_PAGE = 50
MAX_PAGE = 200
CSV_BATCH = 500
MAX_DAYS = 90
SYSTEM_NAME = "System"
# How a decision without an action shows in the log: the policy routing a new comment, the
# system hiding a published one until review (reader reports), another system change (a
# comment entering the Reported queue), or a moderator undoing their decision.
ROUTE, HOLD, MOVE, UNDO = "route", "hold", "move", "undo"
DECISION_ACTIONS: tuple[str, ...] = (
    *(action.value for action in Action),
    ROUTE,
    HOLD,
    MOVE,
    UNDO,
)
# Tie-break between the two sources at the same instant (newest first: decisions first).
_RANK = {"author": 0, "decision": 1}
CSV_COLUMNS = (
    "created_at",
    "kind",
    "id",
    "site",
    "comment_id",
    "actor_type",
    "actor_id",
    "actor_name",
    "action",
    "from_status",
    "to_status",
    "reasons",
    "author_id",
    "author_name",
    "until",
)
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class AuditFilter:
    """What to show: sites (by key), a comment, a moderator, an actor type, an action, a period."""

    sites: tuple[str, ...] = ()
    comment_id: int | None = None
    moderator_id: int | None = None
    actor_type: str | None = None  # "system" or "user"
    action: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


@dataclass(frozen=True)
class AuditEntry:
    """One line of the log: a decision on a comment or an action on an author."""

    kind: str  # "decision" or "author"
    id: int
    created_at: datetime
    site_key: str
    comment_id: int | None
    actor_type: str
    actor_id: int | None
    actor_name: str
    action: str
    from_status: str | None
    to_status: str | None
    reasons: list[dict[str, str]]
    author: dict[str, Any] | None = None  # the author an author action was about
    until: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The entry as the JSON API shows it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "comment_id": self.comment_id,
            "site": self.site_key,
            "actor": {"type": self.actor_type, "id": self.actor_id, "name": self.actor_name},
            "action": self.action,
            "from_status": self.from_status,
            "to_status": self.to_status,
            "reasons": self.reasons,
            "author": self.author,
            "until": self.until,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class AuditPage:
    """One page of the log, newest first."""

    entries: list[AuditEntry]
    next_cursor: str | None


@dataclass(frozen=True)
class Activity:
    """What the moderators of some sites did in a period."""

    since: datetime
    until: datetime
    per_hour: list[tuple[datetime, int]]
    moderators: list[dict[str, Any]]
    decided: int  # comments whose first human decision fell in the period
    median_minutes: float | None
    p90_minutes: float | None
    sites: list[Site] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------------------------


def parse_moment(name: str, value: str | None, *, end_of_day: bool = False) -> datetime | None:
    """An ISO 8601 date or time as aware UTC (naive means UTC); a date alone is its midnight.

    With ``end_of_day`` a date alone means the midnight after it, so ``until=2026-11-27``
    includes that whole day.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time(), tzinfo=UTC)
            return moment + timedelta(days=1) if end_of_day else moment
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        message = (
            f"{name} must be a date or time like 2026-11-27 or 2026-11-27T14:30Z, not “{value}”."
        )
        raise Invalid(message, {"fields": {name: [message]}}) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _staff_sites(keys: Sequence[str], actor: User) -> list[Site] | None:
    """The sites asked for, all moderated by ``actor``; None means every site (admins only)."""
    if not _is_staff(actor):
        raise Forbidden("Only moderators can see the audit log.")
    keys = list(dict.fromkeys(key for key in keys if key))
    if not keys:
        if actor.role == Role.ADMIN:
            return None
        message = "Give the site (site=KEY, repeat it for several sites)."
        raise Invalid(message, {"fields": {"site": [message]}})
    sites = []
    for key in keys:
        site = db.session.scalar(sa.select(Site).where(Site.key == key))
        # Unknown and not-yours answer alike, so site keys cannot be probed.
        if site is None or _staff_role(actor, site) is None:
            raise NotFound(f"There is no site with the key “{key}” that you moderate.")
        sites.append(site)
    return sites


def _page_size(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise Invalid(f"limit must be from 1 to {MAX_PAGE}, not {limit}.")
    return limit


def _check_filter(filters: AuditFilter) -> None:
    if filters.actor_type is not None and filters.actor_type not in (
        ActorType.SYSTEM.value,
        ActorType.USER.value,
    ):
        raise Invalid(f"actor_type must be “system” or “user”, not “{filters.actor_type}”.")
    if filters.action is not None and not (
        0 < len(filters.action) <= 32 and filters.action.replace("_", "").isalpha()
    ):
        raise Invalid(f"“{filters.action}” is not an action.")
    if filters.since and filters.until and filters.since >= filters.until:
        raise Invalid("since must be before until.")


# ---------------------------------------------------------------------------------------------
# Cursors: the last entry's (time, kind, id), newest first
# ---------------------------------------------------------------------------------------------


def _encode_cursor(entry: AuditEntry) -> str:
    raw = json.dumps(
        ["audit", entry.created_at.isoformat(), _RANK[entry.kind], entry.id], separators=(",", ":")
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        kind, moment, rank, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        created = datetime.fromisoformat(moment)
        if (
            kind != "audit"
            or rank not in _RANK.values()
            or not isinstance(row_id, int)
            or created.tzinfo is None
        ):
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise Invalid("The cursor is not valid for this list; start again without one.") from None
    return created, rank, row_id


def _before(
    created_column: Any, id_column: Any, rank: int, cursor: tuple[datetime, int, int]
) -> sa.ColumnElement[bool]:
    """Rows of one source (all of one ``rank``) that come after the cursor, newest first."""
    created, cursor_rank, row_id = cursor
    if rank < cursor_rank:
        return created_column <= created
    if rank > cursor_rank:
        return created_column < created
    return sa.or_(created_column < created, sa.and_(created_column == created, id_column < row_id))


# ---------------------------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------------------------


def _decision_action(decision: Decision) -> str:
    if decision.action is not None:
        return str(decision.action)
    if decision.actor_type == ActorType.USER:
        return UNDO
    if decision.from_status is None:
        return ROUTE
    return HOLD if decision.to_status == Status.PENDING else MOVE


def _decision_action_condition(action: str) -> sa.ColumnElement[bool]:
    if action not in (ROUTE, HOLD, MOVE, UNDO):
        return Decision.action == Action(action)
    if action == UNDO:
        return sa.and_(Decision.action.is_(None), Decision.actor_type == ActorType.USER)
    system = sa.and_(Decision.action.is_(None), Decision.actor_type == ActorType.SYSTEM)
    if action == ROUTE:
        return sa.and_(system, Decision.from_status.is_(None))
    pending = Decision.to_status == Status.PENDING
    return sa.and_(
        system,
        Decision.from_status.is_not(None),
        pending if action == HOLD else sa.not_(pending),
    )


def _sources(filters: AuditFilter) -> tuple[bool, bool]:
    """Whether decisions and author events can match the filters."""
    decisions = filters.action is None or filters.action in DECISION_ACTIONS
    authors = (
        filters.comment_id is None
        and filters.actor_type != ActorType.SYSTEM.value
        and (filters.action is None or filters.action not in DECISION_ACTIONS)
    )
    return decisions, authors


def _decision_query(
    filters: AuditFilter, site_ids: list[int] | None, cursor: tuple[datetime, int, int] | None
) -> sa.Select[tuple[Decision]]:
    query = sa.select(Decision).options(selectinload(Decision.actor))
    if site_ids is not None:
        query = query.where(Decision.site_id.in_(site_ids))
    if filters.comment_id is not None:
        query = query.where(Decision.comment_id == filters.comment_id)
    if filters.moderator_id is not None:
        query = query.where(Decision.actor_id == filters.moderator_id)
    if filters.actor_type is not None:
        query = query.where(Decision.actor_type == ActorType(filters.actor_type))
    if filters.action is not None:
        query = query.where(_decision_action_condition(filters.action))
    if filters.since is not None:
        query = query.where(Decision.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(Decision.created_at < filters.until)
    if cursor is not None:
        query = query.where(_before(Decision.created_at, Decision.id, _RANK["decision"], cursor))
    return query.order_by(Decision.created_at.desc(), Decision.id.desc())


def _author_query(
    filters: AuditFilter, site_ids: list[int] | None, cursor: tuple[datetime, int, int] | None
) -> sa.Select[tuple[AuthorEvent]]:
    query = sa.select(AuthorEvent).options(selectinload(AuthorEvent.actor))
    if site_ids is not None:
        query = query.where(AuthorEvent.site_id.in_(site_ids))
    if filters.moderator_id is not None:
        query = query.where(AuthorEvent.actor_id == filters.moderator_id)
    if filters.action is not None:
        query = query.where(AuthorEvent.action == filters.action)
    if filters.since is not None:
        query = query.where(AuthorEvent.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(AuthorEvent.created_at < filters.until)
    if cursor is not None:
        query = query.where(
            _before(AuthorEvent.created_at, AuthorEvent.id, _RANK["author"], cursor)
        )
    return query.order_by(AuthorEvent.created_at.desc(), AuthorEvent.id.desc())


def _actor_name(actor_type: str, actor: User | None) -> str:
    return SYSTEM_NAME if actor_type == ActorType.SYSTEM.value else _display(actor)


def _decision_entry(decision: Decision, site_key: str) -> AuditEntry:
    return AuditEntry(
        kind="decision",
        id=decision.id,
        created_at=decision.created_at,
        site_key=site_key,
        comment_id=decision.comment_id,
        actor_type=str(decision.actor_type),
        actor_id=decision.actor_id,
        actor_name=_actor_name(str(decision.actor_type), decision.actor),
        action=_decision_action(decision),
        from_status=str(decision.from_status) if decision.from_status is not None else None,
        to_status=str(decision.to_status),
        reasons=list(decision.reasons or []),
    )


def _author_entry(event: AuthorEvent, site_key: str, subjects: dict[int, User]) -> AuditEntry:
    subject = subjects.get(event.user_id) if event.user_id is not None else None
    return AuditEntry(
        kind="author",
        id=event.id,
        created_at=event.created_at,
        site_key=site_key,
        comment_id=None,
        actor_type=ActorType.USER.value,
        actor_id=event.actor_id,
        actor_name=_display(event.actor),
        action=event.action,
        from_status=None,
        to_status=None,
        reasons=[{"code": "moderator_note", "message": event.message}] if event.message else [],
        author={
            "id": event.user_id,
            "name": _display(subject) if event.user_id is not None else None,
            "guest_email": event.guest_email,
        },
        until=event.until,
    )


def _site_keys(site_ids: Iterable[int], known: list[Site] | None) -> dict[int, str]:
    keys = {site.id: site.key for site in known or []}
    missing = set(site_ids) - keys.keys()
    if missing:
        rows = db.session.execute(sa.select(Site.id, Site.key).where(Site.id.in_(missing)))
        keys.update({site_id: key for site_id, key in rows})
    return keys


def _page(
    filters: AuditFilter, sites: list[Site] | None, cursor: str | None, size: int
) -> AuditPage:
    position = _decode_cursor(cursor) if cursor else None
    site_ids = [site.id for site in sites] if sites is not None else None
    with_decisions, with_authors = _sources(filters)
    decisions = (
        list(db.session.scalars(_decision_query(filters, site_ids, position).limit(size + 1)))
        if with_decisions
        else []
    )
    events = (
        list(db.session.scalars(_author_query(filters, site_ids, position).limit(size + 1)))
        if with_authors
        else []
    )
    keys = _site_keys({row.site_id for row in (*decisions, *events)}, sites)
    subject_ids = {event.user_id for event in events if event.user_id is not None}
    subjects = (
        {
            user.id: user
            for user in db.session.scalars(sa.select(User).where(User.id.in_(subject_ids)))
        }
        if subject_ids
        else {}
    )
    entries = [_decision_entry(d, keys[d.site_id]) for d in decisions] + [
        _author_entry(e, keys[e.site_id], subjects) for e in events
    ]
    entries.sort(key=lambda e: (e.created_at, _RANK[e.kind], e.id), reverse=True)
    more = len(entries) > size
    entries = entries[:size]
    return AuditPage(entries, _encode_cursor(entries[-1]) if more else None)


def audit_log(
    filters: AuditFilter, actor: User, cursor: str | None = None, limit: int | None = None
) -> AuditPage:
    """A page of the audit log, newest first, of sites ``actor`` moderates."""
    size = _page_size(limit)
    _check_filter(filters)
    sites = _staff_sites(filters.sites, actor)
    return _page(filters, sites, cursor, size)


# ---------------------------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------------------------


def _cell(value: Any) -> Any:
    """A value safe to open in a spreadsheet: text that would run as a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv_row(entry: AuditEntry) -> list[Any]:
    reasons = " | ".join(f"{r.get('code', '')}: {r.get('message', '')}" for r in entry.reasons)
    author = entry.author or {}
    return [
        _cell(value)
        for value in (
            entry.created_at,
            entry.kind,
            entry.id,
            entry.site_key,
            entry.comment_id,
            entry.actor_type,
            entry.actor_id,
            entry.actor_name,
            entry.action,
            entry.from_status,
            entry.to_status,
            reasons,
            author.get("id"),
            author.get("name") or author.get("guest_email"),
            entry.until,
        )
    ]


def audit_csv(filters: AuditFilter, actor: User) -> Iterator[str]:
    """The whole filtered log as CSV text chunks (a header, then a chunk per batch of rows).

    Permissions and filters are checked before this returns, so a refusal is an error answer
    rather than a broken download.
    """
    _check_filter(filters)
    sites = _staff_sites(filters.sites, actor)

    def chunks() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        cursor: str | None = None
        while True:
            page = _page(filters, sites, cursor, CSV_BATCH)
            for entry in page.entries:
                writer.writerow(_csv_row(entry))
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    return chunks()


# ---------------------------------------------------------------------------------------------
# Moderator activity
# ---------------------------------------------------------------------------------------------


def _hour_of(column: Any) -> Any:
    """The UTC hour a timestamp falls in, in the database's dialect."""
    # Literals rather than bound parameters: PostgreSQL must see the GROUP BY expression as
    # the same one as in the SELECT list.
    if db.engine.dialect.name == "postgresql":
        utc = sa.func.timezone(sa.literal_column("'UTC'"), column)
        return sa.func.date_trunc(sa.literal_column("'hour'"), utc)
    # SQLite stores UTC text ("2026-11-27 14:05:09.123456"); its hour is a prefix.
    return sa.func.strftime(sa.literal_column("'%Y-%m-%d %H:00:00'"), column)


def _as_hour(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks (PostgreSQL's percentile_cont)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _first_decision_minutes(
    site_ids: list[int] | None, since: datetime, until: datetime
) -> list[float]:
    """Minutes from post to first human decision, for comments first decided in the period."""
    # Only comments someone decided in the period can have their first decision in it: look
    # those up through the (site, time) index rather than grouping a site's whole history.
    decided = sa.select(Decision.comment_id).where(
        Decision.actor_type == ActorType.USER,
        Decision.created_at >= since,
        Decision.created_at < until,
    )
    if site_ids is not None:
        decided = decided.where(Decision.site_id.in_(site_ids))
    first_sq = (
        sa.select(Decision.comment_id, sa.func.min(Decision.created_at).label("first_at"))
        .where(Decision.actor_type == ActorType.USER, Decision.comment_id.in_(decided))
        .group_by(Decision.comment_id)
        .having(sa.func.min(Decision.created_at) >= since)
        .subquery()
    )
    rows = db.session.execute(
        sa.select(first_sq.c.first_at, Comment.created_at).join(
            Comment, Comment.id == first_sq.c.comment_id
        )
    )
    return [max(0.0, (decided - posted).total_seconds() / 60) for decided, posted in rows]


def moderator_activity(
    site_keys: Sequence[str], actor: User, days: int = 7, now: datetime | None = None
) -> Activity:
    """Human decisions per hour and per moderator, and how long comments waited for one."""
    if not 1 <= days <= MAX_DAYS:
        raise Invalid(f"days must be from 1 to {MAX_DAYS}, not {days}.")
    sites = _staff_sites(site_keys, actor)
    site_ids = [site.id for site in sites] if sites is not None else None
    moment = now or utcnow()
    # Whole hours: the current one and the ones before it, ``days`` days of them.
    current_hour = moment.replace(minute=0, second=0, microsecond=0)
    since = current_hour - timedelta(hours=days * 24 - 1)
    until = moment

    human = [
        Decision.actor_type == ActorType.USER,
        Decision.created_at >= since,
        Decision.created_at < until,
    ]
    if site_ids is not None:
        human.append(Decision.site_id.in_(site_ids))

    hour = _hour_of(Decision.created_at).label("hour")
    counted = {
        _as_hour(bucket): count
        for bucket, count in db.session.execute(
            sa.select(hour, sa.func.count(Decision.id)).where(*human).group_by(hour)
        )
    }
    per_hour = [
        (since + timedelta(hours=n), counted.get(since + timedelta(hours=n), 0))
        for n in range(days * 24)
    ]

    by_moderator: dict[int | None, dict[str, Any]] = {}
    for actor_id, action, count in db.session.execute(
        sa.select(Decision.actor_id, Decision.action, sa.func.count(Decision.id))
        .where(*human)
        .group_by(Decision.actor_id, Decision.action)
    ):
        row = by_moderator.setdefault(actor_id, {"decisions": 0, "author_actions": 0})
        row["decisions"] += count
        name = str(action) if action is not None else UNDO  # human, so no system moves
        row[name] = row.get(name, 0) + count
    events = [AuthorEvent.created_at >= since, AuthorEvent.created_at < until]
    if site_ids is not None:
        events.append(AuthorEvent.site_id.in_(site_ids))
    for actor_id, count in db.session.execute(
        sa.select(AuthorEvent.actor_id, sa.func.count(AuthorEvent.id))
        .where(*events)
        .group_by(AuthorEvent.actor_id)
    ):
        row = by_moderator.setdefault(actor_id, {"decisions": 0, "author_actions": 0})
        row["author_actions"] += count
    users = {
        user.id: user
        for user in db.session.scalars(
            sa.select(User).where(User.id.in_([i for i in by_moderator if i is not None]))
        )
    }
    moderators = [
        {
            "id": actor_id,
            "name": _display(users.get(actor_id)) if actor_id is not None else _display(None),
            "approve": row.get(Action.APPROVE.value, 0),
            "reject": row.get(Action.REJECT.value, 0),
            "spam": row.get(Action.SPAM.value, 0),
            **row,
        }
        for actor_id, row in by_moderator.items()
    ]
    moderators.sort(key=lambda m: (-m["decisions"], -m["author_actions"], m["name"]))

    waits = _first_decision_minutes(site_ids, since, until)
    return Activity(
        since=since,
        until=until,
        per_hour=per_hour,
        moderators=moderators,
        decided=len(waits),
        median_minutes=_percentile(waits, 0.5),
        p90_minutes=_percentile(waits, 0.9),
        sites=sites or [],
    )
