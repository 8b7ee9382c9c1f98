"""Reader reports: a signed-in reader flags a published comment; enough reports queue or hide it.

Each report weighs 1, less from a new account, nothing from an author the site sanctioned. When
the weight of the reports since the last moderator decision reaches the site's
``reports_to_queue``, the comment enters the Reported queue (it stays visible); at
``reports_to_hide`` (when above 0) the system also hides it (status pending) until a moderator
decides. Readers' reports never train the classifier: only moderators' decisions are labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import selectinload

from auth.models import User
from moderation.db import utcnow
from moderation.extensions import db
from moderation.models import ActorType, Comment, Decision, Report, ReportReason, SiteAuthor
from moderation.policy import SiteSettings
from moderation.service import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    TooManyRequests,
    Unauthorized,
    _bump_count,
    _in_transaction,
    _is_staff,
    _reload_user,
    _settings_of,
    _staff_role,
)
from moderation.status import Status

__all__ = [
    "MAX_NOTE",
    "MAX_REPORT_LIST",
    "REPORTS_PER_HOUR",
    "NewReport",
    "ReportOutcome",
    "comment_reports",
    "report_comment",
    "report_weight",
]

MAX_NOTE = 500  # the column's length
MAX_REPORT_LIST = 500
REPORTS_PER_HOUR = 30  # per reader; the config key MODERATION_REPORTS_PER_HOUR overrides (0: off)
REPORT_WINDOW = timedelta(hours=1)
REPORTED = "reported"  # the reason code of the system's hiding decision
# Weights like 0.3 do not add up exactly (0.3 * 10 < 3.0); a threshold reached within this
# margin counts as reached.
_EPSILON = 1e-9
_REASON_LABELS = {
    ReportReason.SPAM: "spam",
    ReportReason.ABUSE: "abuse",
    ReportReason.OFF_TOPIC: "off-topic",
    ReportReason.OTHER: "other",
}


@dataclass(frozen=True)
class NewReport:
    """A reader's report as the view received it."""

    comment_id: int
    reporter: User | None
    reason: str
    note: str | None = None


@dataclass(frozen=True)
class ReportOutcome:
    """The stored report, the comment after it, and what the report changed."""

    report: Report
    comment: Comment
    queued: bool  # the comment is (now or already) in the Reported queue
    hidden: bool  # this report hid the comment


def _now() -> datetime:
    return utcnow()


def report_weight(reporter: User, site_id: int, settings: SiteSettings, now: datetime) -> float:
    """How much one report from ``reporter`` counts on the site: 1, less if new, 0 if sanctioned."""
    if reporter.banned or (reporter.suspended_until is not None and reporter.suspended_until > now):
        return 0.0
    standing = db.session.scalar(
        sa.select(SiteAuthor).where(
            SiteAuthor.site_id == site_id, SiteAuthor.user_id == reporter.id
        )
    )
    if standing is not None and (
        standing.banned
        or standing.shadow_banned
        or (standing.suspended_until is not None and standing.suspended_until > now)
    ):
        # Accepted and stored like any report, so a sanctioned reader learns nothing, but it
        # cannot push a comment anywhere.
        return 0.0
    if now - reporter.created_at < timedelta(days=settings.new_account_days):
        return settings.new_account_report_weight
    return 1.0


def _clean_note(reason: ReportReason, note: str | None) -> str:
    text = " ".join((note or "").split())
    if len(text) > MAX_NOTE:
        message = f"The note must be at most {MAX_NOTE} characters long."
        raise Invalid(message, {"fields": {"note": [message]}})
    if reason is ReportReason.OTHER and not text:
        message = "Say in a note what is wrong with the comment."
        raise Invalid(message, {"fields": {"note": [message]}})
    return text


def _reason(value: str) -> ReportReason:
    try:
        return ReportReason(value)
    except ValueError:
        choices = ", ".join(reason.value for reason in ReportReason)
        message = f"The reason must be one of {choices}, not “{value}”."
        raise Invalid(message, {"fields": {"reason": [message]}}) from None


def _reportable(comment: Comment | None, reporter: User, comment_id: int) -> Comment:
    """The comment if ``reporter`` may report it; otherwise a refusal that reveals nothing."""
    if comment is not None and comment.status == Status.PENDING and comment.needs_review:
        # The reader saw it published; it was hidden by reports since.
        raise Conflict("This comment is already hidden until a moderator reviews it.")
    visible = (
        comment is not None
        and comment.status == Status.PUBLISHED
        and (not comment.shadow or comment.author_id == reporter.id)
    )
    if not visible or comment is None:
        raise NotFound(f"There is no published comment {comment_id} to report.")
    if comment.author_id == reporter.id:
        raise Conflict("You cannot report your own comment.")
    return comment


def _reports_per_hour() -> int:
    return int(current_app.config.get("MODERATION_REPORTS_PER_HOUR", REPORTS_PER_HOUR))


def _check_rate(reporter: User, now: datetime) -> None:
    cap = _reports_per_hour()
    if cap <= 0:
        return
    recent = list(
        db.session.scalars(
            sa.select(Report.created_at)
            .where(Report.reporter_id == reporter.id, Report.created_at > now - REPORT_WINDOW)
            .order_by(Report.created_at.desc())
            .limit(cap)
        )
    )
    if len(recent) >= cap:
        # Free again when the oldest of the last ``cap`` reports leaves the window.
        wait = max(1, math.ceil((recent[-1] + REPORT_WINDOW - now).total_seconds()))
        minutes = max(1, math.ceil(wait / 60))
        unit = "minute" if minutes == 1 else "minutes"
        raise TooManyRequests(
            f"You reported {cap} comments in the last hour; try again in {minutes} {unit}.",
            retry_after=wait,
        )


def _last_review(comment_id: int) -> datetime | None:
    """When a moderator last decided on the comment (None: never)."""
    return db.session.scalar(
        sa.select(sa.func.max(Decision.created_at)).where(
            Decision.comment_id == comment_id, Decision.actor_type == ActorType.USER
        )
    )


def _since(comment_id: int, reviewed: datetime | None) -> sa.ColumnElement[bool]:
    condition = Report.comment_id == comment_id
    return condition if reviewed is None else sa.and_(condition, Report.created_at > reviewed)


def _weight_since(comment_id: int, reviewed: datetime | None, total_weight: float) -> float:
    """The weight of the reports since the last review (the comment's total if none)."""
    if reviewed is None:
        return total_weight
    weight = db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Report.weight), 0.0)).where(
            _since(comment_id, reviewed)
        )
    )
    return float(weight or 0.0)


def _reports_message(what: str, comment_id: int, reviewed: datetime | None, weight: float) -> str:
    """“<what> after 5 reader reports (spam 3, abuse 2)”, counting since the last review."""
    counts = dict(
        db.session.execute(
            sa.select(Report.reason, sa.func.count(Report.id))
            .where(_since(comment_id, reviewed))
            .group_by(Report.reason)
        ).all()
    )
    total = sum(counts.values())
    breakdown = ", ".join(
        f"{_REASON_LABELS[ReportReason(reason)]} {count}"
        for reason, count in sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    )
    noun = "report" if total == 1 else "reports"
    message = f"{what} after {total} reader {noun} ({breakdown})"
    if not math.isclose(weight, total):
        # New accounts' reports count less; say what the total came to.
        message += f", weighing {weight:g} together"
    return message


def _queue(comment: Comment, message: str) -> None:
    """Put a published comment in the Reported queue (still visible), with a system decision."""
    # A plain UPDATE: joining the Reported queue is not a change of the comment a moderator
    # holding its card should hear about as a conflict (no version bump).
    db.session.execute(
        sa.update(Comment)
        .where(Comment.id == comment.id)
        .values(needs_review=True)
        .execution_options(synchronize_session=False)
    )
    # In the audit log like every system decision; the status does not change.
    db.session.add(
        Decision(
            comment_id=comment.id,
            site_id=comment.site_id,
            actor_type=ActorType.SYSTEM,
            action=None,
            from_status=Status.PUBLISHED,
            to_status=Status.PUBLISHED,
            reasons=[{"code": REPORTED, "message": message}],
        )
    )


def _hide(comment_id: int, message: str) -> Comment:
    """Take a published comment down until a moderator reviews it (a system decision)."""
    comment = db.session.scalar(
        sa.select(Comment).where(Comment.id == comment_id).execution_options(populate_existing=True)
    )
    assert comment is not None  # locked by this transaction's UPDATE
    reason = {"code": REPORTED, "message": message}
    comment.status = Status.PENDING
    comment.needs_review = True
    # The card shows the comment's reasons: say why it is back in the queue (once).
    comment.reasons = [r for r in (comment.reasons or []) if r.get("code") != REPORTED] + [reason]
    db.session.add(
        Decision(
            comment_id=comment.id,
            site_id=comment.site_id,
            actor_type=ActorType.SYSTEM,
            action=None,
            from_status=Status.PUBLISHED,
            to_status=Status.PENDING,
            reasons=[reason],
        )
    )
    _bump_count(comment.thread_id, -1)
    return comment


def report_comment(request: NewReport) -> ReportOutcome:
    """Store a reader's report and move the comment to the Reported queue or hide it if due."""
    reason = _reason(request.reason)
    note = _clean_note(reason, request.note)
    if request.reporter is None:
        raise Unauthorized("Sign in to report a comment.")

    def work() -> ReportOutcome:
        # Locked: one reader's reports run one at a time, so the duplicate check and the hourly
        # cap see each other (other readers' reports need not wait).
        reporter = _reload_user(request.reporter, lock=True)
        if reporter is None:
            raise Unauthorized("Your account no longer exists; sign in again.")
        comment = _reportable(
            db.session.get(Comment, request.comment_id, populate_existing=True),
            reporter,
            request.comment_id,
        )
        already = db.session.scalar(
            sa.select(Report.id).where(
                Report.comment_id == comment.id, Report.reporter_id == reporter.id
            )
        )
        if already is not None:
            raise Conflict("You already reported this comment.")
        now = _now()
        _check_rate(reporter, now)
        settings = _settings_of(comment.site)
        weight = report_weight(reporter, comment.site_id, settings, now)

        report = Report(
            comment_id=comment.id,
            site_id=comment.site_id,
            reporter_id=reporter.id,
            reason=reason,
            note=note,
            weight=weight,
            created_at=now,
        )
        db.session.add(report)
        db.session.flush()
        # In SQL, so concurrent reports cannot lose an increment: on PostgreSQL the UPDATE waits
        # for the row, then adds to the committed value; the status check is redone on it too.
        totals = db.session.execute(
            sa.update(Comment)
            .where(Comment.id == comment.id, Comment.status == Status.PUBLISHED)
            .values(
                report_count=Comment.report_count + 1,
                report_weight=Comment.report_weight + weight,
            )
            .returning(Comment.report_weight, Comment.needs_review)
            .execution_options(synchronize_session=False)
        ).first()
        if totals is None:
            raise Conflict(
                "This comment was taken down a moment ago; there is no need to report it."
            )
        total_weight, needs_review = totals

        reviewed = _last_review(comment.id)
        since_review = _weight_since(comment.id, reviewed, total_weight)
        queued = bool(needs_review)
        hidden = False
        if settings.reports_to_hide > 0 and since_review + _EPSILON >= settings.reports_to_hide:
            message = _reports_message("hidden", comment.id, reviewed, since_review)
            comment = _hide(comment.id, message)
            queued = hidden = True
        elif not needs_review and since_review + _EPSILON >= settings.reports_to_queue:
            message = _reports_message("in the Reported queue", comment.id, reviewed, since_review)
            _queue(comment, message)
            queued = True
        db.session.flush()
        return ReportOutcome(report, comment, queued, hidden)

    # The commit expired the comment, so its counters (written in SQL) are read afresh.
    return _in_transaction(work)


def comment_reports(
    comment_id: int, actor: User, limit: int = 100
) -> tuple[Comment, SiteSettings, list[Report]]:
    """A comment's reports, newest first, for the moderators of its site."""
    if not 1 <= limit <= MAX_REPORT_LIST:
        raise Invalid(f"limit must be from 1 to {MAX_REPORT_LIST}, not {limit}.")
    if not _is_staff(actor):
        raise Forbidden("Only moderators can see the reports on a comment.")
    comment = db.session.get(Comment, comment_id)
    if comment is None or _staff_role(actor, comment.site) is None:
        raise NotFound(f"There is no comment {comment_id} that you moderate.")
    reports = list(
        db.session.scalars(
            sa.select(Report)
            .where(Report.comment_id == comment.id)
            .options(selectinload(Report.reporter))
            .order_by(Report.created_at.desc(), Report.id.desc())
            .limit(limit)
        )
    )
    return comment, _settings_of(comment.site), reports
