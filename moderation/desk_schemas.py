"""Request and response shapes of the review desk API (docs/_parts/desk-api-contract.md)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from moderation import schemas
from moderation.desk import (
    AUTHOR_ACTIONS,
    MAX_BULK,
    MAX_MESSAGE,
    MAX_NOTE,
    MAX_SUSPEND_HOURS,
    QUEUES,
    SORTS,
    STATUS_QUEUES,
)
from moderation.service import MAX_PAGE, MAX_REASON, MAX_URL

__all__ = [
    "AuthorActionSchema",
    "AuthorEnvelopeSchema",
    "AuthorProfileSchema",
    "AuthorQuerySchema",
    "BulkDecisionSchema",
    "BulkResultsSchema",
    "CardQuerySchema",
    "CountsEnvelopeSchema",
    "DecisionSchema",
    "DeskCommentEnvelopeSchema",
    "DeskCountsQuerySchema",
    "DeskQueueQuerySchema",
    "DeskQueueSchema",
    "GuestQuerySchema",
    "ModeratedCommentSchema",
    "NoteCreateSchema",
    "NoteEnvelopeSchema",
]

_SCORE = validate.Range(min=0, max=1)


class _Query(ma.Schema):
    class Meta:
        unknown = ma.EXCLUDE  # caches and analytics add parameters of their own


# --- requests -----------------------------------------------------------------------------------


class DeskQueueQuerySchema(_Query):
    """Which queue, on which sites, filtered and sorted how, and where to continue."""

    site = fields.List(
        fields.Str(),
        load_default=list,
        metadata={"description": "Site keys (repeat it); none: every site you moderate."},
    )
    queue = fields.Str(
        load_default=None,
        validate=validate.OneOf(QUEUES),
        metadata={"description": "pending (default), reported, spam, approved or rejected."},
    )
    status = fields.Str(
        load_default=None,
        validate=validate.OneOf(tuple(STATUS_QUEUES)),
        metadata={"description": "The former name of ``queue`` (pending, spam, rejected)."},
    )
    article = fields.Str(
        load_default=None,
        validate=validate.Length(min=1, max=MAX_URL),
        metadata={"description": "Only comments on this article (its URL)."},
    )
    reason = fields.Str(
        load_default=None, metadata={"description": "Only comments with this reason code."}
    )
    author = fields.Int(
        load_default=None,
        validate=schemas.ID_RANGE,
        metadata={"description": "Only this user's comments."},
    )
    author_email = fields.Str(
        load_default=None, metadata={"description": "Only this guest's comments."}
    )
    min_abuse = fields.Float(load_default=None, validate=_SCORE)
    max_abuse = fields.Float(load_default=None, validate=_SCORE)
    min_spam = fields.Float(load_default=None, validate=_SCORE)
    max_spam = fields.Float(load_default=None, validate=_SCORE)
    sort = fields.Str(
        load_default="oldest",
        validate=validate.OneOf(SORTS),
        metadata={"description": "oldest (default), newest, abuse, spam or reports (most first)."},
    )
    cursor = fields.Str(
        load_default=None, metadata={"description": "``next_cursor`` of the previous page."}
    )
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=MAX_PAGE))
    highlights = fields.Bool(
        load_default=True,
        metadata={"description": "false leaves ``highlights`` empty (a faster page)."},
    )
    expand = fields.Str(
        load_default=None,
        validate=validate.OneOf(("author",)),
        metadata={"description": "``author``: add each comment's ``author_summary``."},
    )


class DeskCountsQuerySchema(_Query):
    """The sites to count."""

    site = fields.List(
        fields.Str(),
        load_default=list,
        metadata={"description": "Site keys (repeat it); none: every site you moderate."},
    )


class CardQuerySchema(_Query):
    """What to add to a comment card."""

    expand = fields.Str(
        load_default=None,
        validate=validate.OneOf(("author",)),
        metadata={"description": "``author``: add ``author_summary``."},
    )


class DecisionSchema(schemas.DecisionCreateSchema):
    """A moderator's decision."""

    notify = fields.Bool(
        allow_none=True,
        metadata={"description": "Tell the author (true) or not (false); default: site option."},
    )


class BulkItemSchema(ma.Schema):
    """One comment of a bulk decision."""

    id = fields.Int(required=True, strict=True, validate=schemas.ID_RANGE)
    version = fields.Int(
        allow_none=True,
        strict=True,
        metadata={"description": "The version as loaded; that comment answers 409 if it changed."},
    )


class BulkDecisionSchema(ma.Schema):
    """The same decision on many comments; each is its own transaction."""

    action = fields.Str(required=True, validate=validate.OneOf(("approve", "reject", "spam")))
    comments = fields.List(
        fields.Nested(BulkItemSchema), required=True, validate=validate.Length(min=1, max=MAX_BULK)
    )
    reason = fields.Str(allow_none=True, validate=validate.Length(max=MAX_REASON))
    notify = fields.Bool(allow_none=True)


class AuthorQuerySchema(_Query):
    """The site whose record of the author to show."""

    site = fields.Str(required=True)


class GuestQuerySchema(AuthorQuerySchema):
    """A guest, by e-mail address, on a site."""

    email = fields.Str(required=True, validate=validate.Length(min=3, max=254))


class NoteCreateSchema(ma.Schema):
    """A note about an author."""

    body = fields.Str(required=True, validate=validate.Length(min=1, max=MAX_NOTE))


class AuthorActionSchema(ma.Schema):
    """An action on an author."""

    action = fields.Str(required=True, validate=validate.OneOf(AUTHOR_ACTIONS))
    message = fields.Str(
        allow_none=True,
        validate=validate.Length(max=MAX_MESSAGE),
        metadata={"description": "For ban and suspend: the message e-mailed to the author."},
    )
    hours = fields.Int(
        allow_none=True,
        strict=True,
        validate=validate.Range(min=1, max=MAX_SUSPEND_HOURS),
        metadata={"description": "For suspend: how long."},
    )

    @ma.validates_schema
    def _hours_for_suspend(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("action") == "suspend" and data.get("hours") is None:
            raise ma.ValidationError("Required to suspend.", "hours")


# --- responses ----------------------------------------------------------------------------------


class HighlightSchema(ma.Schema):
    """A stretch of the body to highlight (character offsets, end exclusive)."""

    start = fields.Int()
    end = fields.Int()
    source = fields.Str(metadata={"description": "abuse, spam, banned_word or suspect_word."})
    label = fields.Str()


class ParentAuthorSchema(ma.Schema):
    """Who wrote the parent comment."""

    name = fields.Str()


class ParentSchema(ma.Schema):
    """The comment a reply answers."""

    id = fields.Int()
    author = fields.Nested(ParentAuthorSchema)
    body = fields.Str()
    status = fields.Str()


class LastDecisionSchema(ma.Schema):
    """The last human decision on the comment."""

    actor = fields.Str()
    action = fields.Str(allow_none=True, metadata={"description": "None: an undo."})
    at = fields.DateTime()
    from_status = fields.Str(allow_none=True)
    to_status = fields.Str()


class AuthorStateSchema(ma.Schema):
    """What the site's moderators decided about the author."""

    banned = fields.Bool()
    ban_message = fields.Str()
    suspended_until = fields.DateTime(allow_none=True)
    suspend_message = fields.Str()
    premoderate = fields.Bool()
    trusted = fields.Bool()
    shadow_banned = fields.Bool()
    account_banned = fields.Bool(metadata={"description": "Banned from the whole installation."})
    account_suspended_until = fields.DateTime(allow_none=True)


class AuthorSummarySchema(ma.Schema):
    """An author's record on one site."""

    id = fields.Int(allow_none=True)
    guest_email = fields.Str(allow_none=True)
    name = fields.Str()
    login_methods = fields.List(fields.Str())
    account_created_at = fields.DateTime(allow_none=True)
    approved = fields.Int()
    rejected = fields.Int()
    pending = fields.Int()
    spam = fields.Int()
    reports_made = fields.Int()
    reports_received = fields.Int()
    notes_count = fields.Int()
    state = fields.Nested(AuthorStateSchema)


class ModeratedCommentSchema(schemas.ModeratedCommentSchema):
    """A comment with what moderators need to decide on it."""

    report_count = fields.Int()
    report_weight = fields.Float()
    needs_review = fields.Bool(metadata={"description": "In the Reported queue."})
    shadow = fields.Bool(metadata={"description": "Shadow-banned: visible to its author only."})
    nudged = fields.Bool()
    highlights = fields.List(fields.Nested(HighlightSchema))
    parent = fields.Nested(ParentSchema, allow_none=True)
    last_decision = fields.Nested(LastDecisionSchema, allow_none=True)
    author_summary = fields.Nested(AuthorSummarySchema, allow_none=True)


class DeskCommentEnvelopeSchema(ma.Schema):
    """One comment, as moderators see it."""

    comment = fields.Nested(ModeratedCommentSchema)


class QueueCountsSchema(ma.Schema):
    """Comments per queue."""

    pending = fields.Int()
    reported = fields.Int()
    spam = fields.Int()
    approved = fields.Int()
    rejected = fields.Int()


class DeskQueueSchema(ma.Schema):
    """A page of a queue, with every queue's count."""

    comments = fields.List(fields.Nested(ModeratedCommentSchema))
    next_cursor = fields.Str(allow_none=True)
    counts = fields.Nested(QueueCountsSchema)


class CountsEnvelopeSchema(ma.Schema):
    """Comments per queue (cached a few seconds)."""

    counts = fields.Nested(QueueCountsSchema)


class BulkResultSchema(ma.Schema):
    """What happened to one comment."""

    id = fields.Int()
    ok = fields.Bool()
    comment = fields.Nested(ModeratedCommentSchema)
    status = fields.Int(metadata={"description": "409 or 404 when not ok."})
    error = fields.Str()
    decided_by = fields.Str()
    decided_at = fields.Str()
    version = fields.Int()


class BulkResultsSchema(ma.Schema):
    """One result per comment, in the order asked."""

    results = fields.List(fields.Nested(BulkResultSchema))


class NoteSchema(ma.Schema):
    """A moderator's note about an author."""

    id = fields.Int()
    body = fields.Str()
    moderator = fields.Str()
    created_at = fields.DateTime()


class NoteEnvelopeSchema(ma.Schema):
    """One note."""

    note = fields.Nested(NoteSchema)


class AuthorEventSchema(ma.Schema):
    """An audited action on an author."""

    action = fields.Str()
    actor = fields.Str()
    message = fields.Str()
    until = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()


class AuthorProfileSchema(ma.Schema):
    """The author drawer."""

    author = fields.Nested(AuthorSummarySchema)
    comments = fields.List(fields.Nested(ModeratedCommentSchema))
    notes = fields.List(fields.Nested(NoteSchema))
    events = fields.List(fields.Nested(AuthorEventSchema))


class AuthorEnvelopeSchema(ma.Schema):
    """An author's record after an action."""

    author = fields.Nested(AuthorSummarySchema)


class ModelVersionSchema(ma.Schema):
    """A classifier model version: its state, when it was promoted, what it scored."""

    version = fields.Str()
    state = fields.Str(metadata={"description": "active, retired, candidate or refused"})
    path = fields.Str()
    created_at = fields.Str()
    promoted_at = fields.Str(allow_none=True)
    metrics = fields.Dict()
    training = fields.Dict()


class ModelVersionsSchema(ma.Schema):
    """Every recorded model version, newest first, and the active one."""

    versions = fields.List(fields.Nested(ModelVersionSchema))
    active = fields.Str(allow_none=True)


class ModelVersionChangeSchema(ma.Schema):
    """The version now active and the one it replaced."""

    active = fields.Nested(ModelVersionSchema)
    replaced = fields.Nested(ModelVersionSchema, allow_none=True)
