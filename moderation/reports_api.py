"""JSON API for reader reports, the audit log (JSON and CSV) and moderator activity.

A second flask-smorest blueprint under ``/api/v1``, registered by ``moderation.api.init_app``
and sharing its authentication (bearer token, or the session plus ``X-Requested-With``) and its
error shape ``{"error": "<sentence>", ...}``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import marshmallow as ma
from flask import Response, stream_with_context
from marshmallow import fields, validate

from moderation import api as core
from moderation import audit, reports
from moderation.db import utcnow
from moderation.models import Comment, Report, ReportReason
from moderation.policy import SiteSettings
from moderation.schemas import ID_RANGE, ReasonSchema

__all__ = ["bp"]

bp = core.guarded_blueprint(
    "reports_api", __name__, "/api/v1", "Reader reports, the audit log and moderator activity."
)

_SAFE_FILENAME = re.compile(r"[^A-Za-z0-9_-]+")


class _Query(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # caches and analytics add parameters of their own


# --- requests ---------------------------------------------------------------------------------


class ReportCreateSchema(ma.Schema):
    """A reader's report of a published comment."""

    reason = fields.Str(
        required=True,
        validate=validate.OneOf([reason.value for reason in ReportReason]),
        metadata={"description": "spam, abuse, off_topic or other."},
    )
    note = fields.Str(
        allow_none=True,
        validate=validate.Length(max=reports.MAX_NOTE),
        metadata={"description": "What is wrong (required with the reason other)."},
    )


class ReportListQuerySchema(_Query):
    """How many reports to list."""

    limit = fields.Int(
        load_default=100, validate=validate.Range(min=1, max=reports.MAX_REPORT_LIST)
    )


class AuditFilterQuerySchema(_Query):
    """Which entries of the audit log."""

    site = fields.List(
        fields.Str(),
        load_default=list,
        metadata={"description": "Site key; repeat it for several sites (admins may omit it)."},
    )
    comment = fields.Int(
        load_default=None, validate=ID_RANGE, metadata={"description": "Only this comment."}
    )
    moderator = fields.Int(
        load_default=None,
        validate=ID_RANGE,
        metadata={"description": "Only this actor (user id)."},
    )
    actor_type = fields.Str(
        load_default=None,
        validate=validate.OneOf(("system", "user")),
        metadata={"description": "system or user."},
    )
    action = fields.Str(
        load_default=None,
        validate=validate.Length(min=1, max=32),
        metadata={
            "description": "approve, reject, spam, delete, undo, route (the policy routing a "
            "new comment), hold (the system hiding a reported comment), move (a comment "
            "entering the Reported queue), or an author action (ban, suspend, ...)."
        },
    )
    since = fields.Str(
        load_default=None, metadata={"description": "From this date or time (inclusive, UTC)."}
    )
    until = fields.Str(
        load_default=None,
        metadata={"description": "Before this time; a date alone includes that whole day."},
    )


class AuditQuerySchema(AuditFilterQuerySchema):
    """Which entries of the audit log, and which page."""

    cursor = fields.Str(
        load_default=None, metadata={"description": "next_cursor of the previous page."}
    )
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=audit.MAX_PAGE))


class ActivityQuerySchema(_Query):
    """Whose activity, over how many days."""

    site = fields.List(fields.Str(), load_default=list, metadata={"description": "Site key(s)."})
    days = fields.Int(load_default=7, validate=validate.Range(min=1, max=audit.MAX_DAYS))


# --- responses --------------------------------------------------------------------------------


class ReportedCommentSchema(ma.Schema):
    """The reported comment, as the reader may see it."""

    id = fields.Int()
    status = fields.Str()
    report_count = fields.Int()


class ReportCreatedSchema(ma.Schema):
    """A stored report."""

    id = fields.Int()
    reason = fields.Str()
    created_at = fields.DateTime()


class ReportCreatedEnvelopeSchema(ma.Schema):
    """The report and the comment after it."""

    report = fields.Nested(ReportCreatedSchema)
    comment = fields.Nested(ReportedCommentSchema)


class ReporterSchema(ma.Schema):
    """Who reported, with what moderators need to weigh it."""

    id = fields.Int()
    name = fields.Str()
    account_created_at = fields.DateTime()
    account_age_days = fields.Float()
    new_account = fields.Bool(metadata={"description": "Younger than the site's new_account_days."})


class ReportDetailSchema(ma.Schema):
    """One report, as moderators see it."""

    id = fields.Int()
    reason = fields.Str()
    note = fields.Str()
    weight = fields.Float()
    created_at = fields.DateTime()
    reporter = fields.Nested(ReporterSchema)


class ReportTotalsSchema(ma.Schema):
    """A comment's report counters."""

    id = fields.Int()
    status = fields.Str()
    report_count = fields.Int()
    report_weight = fields.Float()
    needs_review = fields.Bool()


class CommentReportsSchema(ma.Schema):
    """A comment's reports, newest first."""

    comment = fields.Nested(ReportTotalsSchema)
    reports = fields.List(fields.Nested(ReportDetailSchema))


class AuditActorSchema(ma.Schema):
    """Who acted: the system or a person."""

    type = fields.Str()
    id = fields.Int(allow_none=True)
    name = fields.Str()


class AuditSubjectSchema(ma.Schema):
    """The author an author action was about."""

    id = fields.Int(allow_none=True)
    name = fields.Str(allow_none=True)
    guest_email = fields.Str(allow_none=True)


class AuditEntrySchema(ma.Schema):
    """A decision on a comment, or an action on an author."""

    id = fields.Int()
    kind = fields.Str(metadata={"description": "decision or author."})
    comment_id = fields.Int(allow_none=True)
    site = fields.Str()
    actor = fields.Nested(AuditActorSchema)
    action = fields.Str()
    from_status = fields.Str(allow_none=True)
    to_status = fields.Str(allow_none=True)
    reasons = fields.List(fields.Nested(ReasonSchema))
    author = fields.Nested(AuditSubjectSchema, allow_none=True)
    until = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class AuditLogSchema(ma.Schema):
    """A page of the audit log, newest first."""

    entries = fields.List(fields.Nested(AuditEntrySchema))
    next_cursor = fields.Str(allow_none=True)


class ActivityHourSchema(ma.Schema):
    """Human decisions in one hour (UTC)."""

    hour = fields.DateTime()
    count = fields.Int()


class ModeratorActivitySchema(ma.Schema):
    """What one moderator did in the period."""

    id = fields.Int(allow_none=True)
    name = fields.Str()
    decisions = fields.Int()
    approve = fields.Int()
    reject = fields.Int()
    spam = fields.Int()
    author_actions = fields.Int()


class ActivitySchema(ma.Schema):
    """Moderator activity over a period."""

    sites = fields.List(fields.Str())
    since = fields.DateTime()
    until = fields.DateTime()
    per_hour = fields.List(fields.Nested(ActivityHourSchema))
    moderators = fields.List(fields.Nested(ModeratorActivitySchema))
    decided_comments = fields.Int(
        metadata={"description": "Comments whose first human decision fell in the period."}
    )
    median_minutes = fields.Float(
        allow_none=True, metadata={"description": "Median minutes from post to first decision."}
    )
    p90_minutes = fields.Float(allow_none=True)


# --- shaping ----------------------------------------------------------------------------------


def _report_json(report: Report, settings: SiteSettings, now: datetime) -> dict[str, Any]:
    reporter = report.reporter
    age = (now - reporter.created_at).total_seconds() / 86400
    return {
        "id": report.id,
        "reason": str(report.reason),
        "note": report.note,
        "weight": report.weight,
        "created_at": report.created_at,
        "reporter": {
            "id": reporter.id,
            "name": reporter.display_name,
            "account_created_at": reporter.created_at,
            "account_age_days": round(age, 1),
            "new_account": age < settings.new_account_days,
        },
    }


def _totals_json(comment: Comment) -> dict[str, Any]:
    return {
        "id": comment.id,
        "status": str(comment.status),
        "report_count": comment.report_count,
        "report_weight": comment.report_weight,
        "needs_review": comment.needs_review,
    }


def _filters(query: dict[str, Any]) -> audit.AuditFilter:
    return audit.AuditFilter(
        sites=tuple(query["site"]),
        comment_id=query["comment"],
        moderator_id=query["moderator"],
        actor_type=query["actor_type"],
        action=query["action"],
        since=audit.parse_moment("since", query["since"]),
        until=audit.parse_moment("until", query["until"], end_of_day=True),
    )


# --- reports ----------------------------------------------------------------------------------


@bp.route("/comments/<int:comment_id>/reports", methods=["POST"])
@bp.arguments(ReportCreateSchema)
@bp.response(201, ReportCreatedEnvelopeSchema, description="Reported.")
@bp.alt_response(401, response="UNAUTHORIZED")
@bp.alt_response(404, response="NOT_FOUND")
@bp.alt_response(409, response="CONFLICT")
@bp.alt_response(429, response="TOO_MANY_REQUESTS")
@bp.doc(security=core.BEARER)
def create_report(data: dict[str, Any], comment_id: int) -> tuple[dict[str, Any], int]:
    """Report a published comment (once per reader); 409 for a second report or your own."""
    outcome = reports.report_comment(
        reports.NewReport(
            comment_id=comment_id,
            reporter=core._signed_in(),
            reason=data["reason"],
            note=data.get("note"),
        )
    )
    report, comment = outcome.report, outcome.comment
    return {
        "report": {"id": report.id, "reason": str(report.reason), "created_at": report.created_at},
        "comment": {
            "id": comment.id,
            "status": str(comment.status),
            "report_count": comment.report_count,
        },
    }, 201


@bp.route("/moderation/comments/<int:comment_id>/reports", methods=["GET"])
@bp.arguments(ReportListQuerySchema, location="query")
@bp.response(200, CommentReportsSchema)
@bp.alt_response(401, response="UNAUTHORIZED")
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
@bp.doc(security=core.BEARER)
def comment_reports(query: dict[str, Any], comment_id: int) -> dict[str, Any]:
    """A comment's reader reports with reasons, notes and reporters (its site's moderators)."""
    comment, settings, found = reports.comment_reports(
        comment_id, core._signed_in(), query["limit"]
    )
    now = utcnow()
    return {
        "comment": _totals_json(comment),
        "reports": [_report_json(report, settings, now) for report in found],
    }


# --- audit ------------------------------------------------------------------------------------


@bp.route("/moderation/audit", methods=["GET"])
@bp.arguments(AuditQuerySchema, location="query")
@bp.response(200, AuditLogSchema)
@bp.alt_response(401, response="UNAUTHORIZED")
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
@bp.doc(security=core.BEARER)
def audit_log(query: dict[str, Any]) -> dict[str, Any]:
    """Every decision and author action on the sites you moderate, newest first."""
    page = audit.audit_log(_filters(query), core._signed_in(), query["cursor"], query["limit"])
    return {"entries": [entry.to_dict() for entry in page.entries], "next_cursor": page.next_cursor}


@bp.route("/moderation/audit.csv", methods=["GET"])
@bp.arguments(AuditFilterQuerySchema, location="query")
@bp.response(
    200,
    {"type": "string", "format": "binary"},
    content_type="text/csv",
    description="The filtered log as CSV.",
)
@bp.alt_response(401, response="UNAUTHORIZED")
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
@bp.doc(security=core.BEARER)
def audit_csv(query: dict[str, Any]) -> Response:
    """The audit log with the same filters, as a CSV download (all pages)."""
    filters = _filters(query)
    chunks = audit.audit_csv(filters, core._signed_in())
    label = _SAFE_FILENAME.sub("", "_".join(filters.sites)) or "all-sites"
    name = f"audit-{label[:60]}-{utcnow():%Y%m%d-%H%M}.csv"
    response = Response(stream_with_context(chunks), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/moderation/activity", methods=["GET"])
@bp.arguments(ActivityQuerySchema, location="query")
@bp.response(200, ActivitySchema)
@bp.alt_response(401, response="UNAUTHORIZED")
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
@bp.doc(security=core.BEARER)
def activity(query: dict[str, Any]) -> dict[str, Any]:
    """Human decisions per hour and per moderator, and time from post to first decision."""
    result = audit.moderator_activity(query["site"], core._signed_in(), query["days"])
    return {
        "sites": [site.key for site in result.sites],
        "since": result.since,
        "until": result.until,
        "per_hour": [{"hour": hour, "count": count} for hour, count in result.per_hour],
        "moderators": result.moderators,
        "decided_comments": result.decided,
        "median_minutes": result.median_minutes,
        "p90_minutes": result.p90_minutes,
    }
