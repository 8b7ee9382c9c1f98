"""The JSON API's request and response shapes (marshmallow), which also document it in OpenAPI."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from moderation.db import MAX_ID
from moderation.render import MAX_BODY
from moderation.service import MAX_COUNT_URLS, MAX_PAGE, MAX_REASON, MAX_TITLE, MAX_URL
from moderation.status import Status

__all__ = [
    "ID_RANGE",
    "CommentCreateSchema",
    "CommentEditSchema",
    "CommentEnvelopeSchema",
    "CommentListQuerySchema",
    "CommentListSchema",
    "CountsQuerySchema",
    "CountsSchema",
    "DecisionCreateSchema",
    "ErrorSchema",
    "LikeEnvelopeSchema",
    "MeSchema",
    "ModeratedCommentEnvelopeSchema",
    "QueueQuerySchema",
    "QueueSchema",
    "SiteEnvelopeSchema",
    "SitePatchSchema",
]

QUEUE_STATUSES = (Status.PENDING, Status.SPAM, Status.REJECTED)
# Ids in requests: a larger number cannot be a row, and SQLite would fail on it (a 500).
ID_RANGE = validate.Range(min=1, max=MAX_ID, error="Not a valid id.")


class _Query(ma.Schema):
    class Meta:
        # Caches and analytics add parameters of their own (?_=123); ignore them.
        unknown = ma.EXCLUDE


# --- requests ---------------------------------------------------------------------------------


class CommentCreateSchema(ma.Schema):
    """A new comment."""

    site = fields.Str(required=True, metadata={"description": "The site's public key."})
    url = fields.Str(
        required=True,
        validate=validate.Length(min=1, max=MAX_URL),
        metadata={"description": "The article's URL, on one of the site's origins."},
    )
    title = fields.Str(
        allow_none=True,
        validate=validate.Length(max=MAX_TITLE),
        metadata={"description": "The article's title (used when its thread is created)."},
    )
    # Its length is checked by the service, which says how long it is (MAX_CONTENT_LENGTH
    # bounds what arrives at all).
    body = fields.Str(
        required=True,
        metadata={"description": f"The comment (Markdown subset, at most {MAX_BODY} characters)."},
    )
    parent_id = fields.Int(
        allow_none=True,
        strict=True,
        validate=ID_RANGE,
        metadata={"description": "The comment this one replies to."},
    )
    name = fields.Str(allow_none=True, metadata={"description": "A guest's name."})
    email = fields.Str(allow_none=True, metadata={"description": "A guest's e-mail address."})
    nudge = fields.Bool(
        load_default=False,
        metadata={
            "description": "The client can ask the author to reconsider: a signed-in author's "
            "comment above the site's nudge threshold is then answered 200 with `nudge` and not "
            "stored."
        },
    )
    nudged = fields.Bool(
        load_default=False,
        metadata={
            "description": "This is the author's second submission after a nudge: it is "
            "routed normally and the nudge is recorded."
        },
    )


class CommentListQuerySchema(_Query):
    """Which thread, in which order, and where to continue."""

    site = fields.Str(required=True)
    url = fields.Str(required=True, validate=validate.Length(min=1, max=MAX_URL))
    sort = fields.Str(load_default="oldest", validate=validate.OneOf(("oldest", "newest", "liked")))
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=MAX_PAGE))
    cursor = fields.Str(
        load_default=None, metadata={"description": "``next_cursor`` of the previous page."}
    )


class CountsQuerySchema(_Query):
    """The articles to count published comments for."""

    site = fields.Str(required=True)
    url = fields.List(
        fields.Str(validate=validate.Length(min=1, max=MAX_URL)),
        required=True,
        validate=validate.Length(min=1, max=MAX_COUNT_URLS),
        metadata={"description": f"Article URLs (repeat the parameter; at most {MAX_COUNT_URLS})."},
    )


class QueueQuerySchema(_Query):
    """The queue of a site."""

    site = fields.Str(required=True)
    status = fields.Str(
        load_default=Status.PENDING.value,
        validate=validate.OneOf([status.value for status in QUEUE_STATUSES]),
    )
    limit = fields.Int(load_default=50, validate=validate.Range(min=1, max=MAX_PAGE))
    cursor = fields.Str(load_default=None)


class DecisionCreateSchema(ma.Schema):
    """A moderator's decision."""

    action = fields.Str(required=True, validate=validate.OneOf(("approve", "reject", "spam")))
    version = fields.Int(
        allow_none=True,
        strict=True,
        metadata={"description": "The comment's version as loaded; 409 if it changed since."},
    )
    reason = fields.Str(allow_none=True, validate=validate.Length(max=MAX_REASON))


class SitePatchSchema(ma.Schema):
    """Changes to a site; settings are merged into the current ones."""

    name = fields.Str(validate=validate.Length(min=1, max=200))
    origins = fields.List(fields.Str(), validate=validate.Length(min=1, max=50))
    settings = fields.Dict(keys=fields.Str())

    @ma.validates_schema
    def _something_to_change(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ma.ValidationError("Give name, origins or settings to change.")


# --- responses --------------------------------------------------------------------------------


class ErrorSchema(ma.Schema):
    """Every error: a sentence, and for invalid input the messages per field."""

    error = fields.Str(required=True)
    field_messages = fields.Dict(
        keys=fields.Str(), data_key="fields", metadata={"description": "Messages per field."}
    )
    retry_after = fields.Int(metadata={"description": "Seconds to wait (429)."})
    # What some refusals add for the client to act on (service.ServiceError.extra).
    suspended_until = fields.Str(metadata={"description": "The author's suspension ends (403)."})
    status = fields.Str(metadata={"description": "The comment's status now (409)."})
    version = fields.Int(metadata={"description": "The comment's version now (409)."})
    decided_by = fields.Str(metadata={"description": "Who decided the comment already (409)."})
    decided_at = fields.Str(metadata={"description": "When they decided it (409)."})
    comment = fields.Dict(
        metadata={"description": "The comment as moderators see it now (409 on a decision)."}
    )


class AuthorSchema(ma.Schema):
    """Who wrote a comment, as readers see it."""

    name = fields.Str()


class ReasonSchema(ma.Schema):
    """Why the policy (or a moderator) routed a comment as it did."""

    code = fields.Str()
    message = fields.Str()


class ThreadSchema(ma.Schema):
    """An article's thread."""

    url = fields.Str()
    title = fields.Str()
    comment_count = fields.Int(metadata={"description": "Published comments."})
    closed = fields.Bool()


class CommentSchema(ma.Schema):
    """A comment: the author's text as ``body`` and its sanitised rendering as ``html``."""

    id = fields.Int()
    parent_id = fields.Int(allow_none=True)
    url = fields.Str(metadata={"description": "The article's URL."})
    author = fields.Nested(AuthorSchema)
    body = fields.Str()
    html = fields.Str()
    created_at = fields.DateTime()
    status = fields.Str()
    edited_at = fields.DateTime(
        allow_none=True, metadata={"description": "When its author last edited it."}
    )
    like_count = fields.Int(metadata={"description": "Readers' likes."})
    reasons = fields.List(
        fields.Nested(ReasonSchema),
        metadata={"description": "Why it is held (only for the author's own held comment)."},
    )


class CommentEnvelopeSchema(ma.Schema):
    """One comment."""

    comment = fields.Nested(CommentSchema)


class NudgeSchema(ma.Schema):
    """A question to the author before their comment is routed."""

    message = fields.Str()
    reasons = fields.List(fields.Nested(ReasonSchema))


class NudgeEnvelopeSchema(ma.Schema):
    """The answer to a nudged submission: nothing was stored."""

    nudge = fields.Nested(NudgeSchema)


class CommentListSchema(ma.Schema):
    """A page of a thread's published comments."""

    comments = fields.List(fields.Nested(CommentSchema))
    next_cursor = fields.Str(allow_none=True)
    thread = fields.Nested(ThreadSchema, allow_none=True)


class CountsSchema(ma.Schema):
    """Published comments per article URL."""

    counts = fields.Dict(keys=fields.Str(), values=fields.Int())


class ScoresSchema(ma.Schema):
    """The classifier's probabilities."""

    spam = fields.Float(allow_none=True)
    abuse = fields.Float(allow_none=True)


class ModeratorAuthorSchema(ma.Schema):
    """Who wrote a comment, as moderators see it."""

    id = fields.Int(allow_none=True)
    name = fields.Str()
    guest = fields.Bool()


class ModeratedCommentSchema(ma.Schema):
    """A comment with what moderators need to decide on it."""

    id = fields.Int()
    parent_id = fields.Int(allow_none=True)
    site = fields.Str()
    thread = fields.Nested(ThreadSchema)
    author = fields.Nested(ModeratorAuthorSchema)
    body = fields.Str()
    html = fields.Str()
    created_at = fields.DateTime()
    status = fields.Str()
    version = fields.Int(metadata={"description": "Send it back with a decision."})
    scores = fields.Nested(ScoresSchema)
    model_version = fields.Str(allow_none=True)
    reasons = fields.List(fields.Nested(ReasonSchema))


class ModeratedCommentEnvelopeSchema(ma.Schema):
    """One comment, as moderators see it."""

    comment = fields.Nested(ModeratedCommentSchema)


class QueueSchema(ma.Schema):
    """A page of the moderation queue, oldest first."""

    comments = fields.List(fields.Nested(ModeratedCommentSchema))
    next_cursor = fields.Str(allow_none=True)


class SiteSchema(ma.Schema):
    """A site as its staff see it."""

    key = fields.Str()
    name = fields.Str()
    origins = fields.List(fields.Str())
    settings = fields.Dict(keys=fields.Str())
    role = fields.Str(metadata={"description": "Your role on the site."})


class SiteEnvelopeSchema(ma.Schema):
    """One site."""

    site = fields.Nested(SiteSchema)


class MembershipSchema(ma.Schema):
    """A site the user works on."""

    key = fields.Str()
    name = fields.Str()
    role = fields.Str()


class UserSchema(ma.Schema):
    """The signed-in user."""

    id = fields.Int()
    name = fields.Str()
    email = fields.Str(allow_none=True)
    role = fields.Str()
    sites = fields.List(fields.Nested(MembershipSchema))


class MeSchema(ma.Schema):
    """Who the request is signed in as."""

    user = fields.Nested(UserSchema)


class CommentEditSchema(ma.Schema):
    """The new text of one's own comment (within the site's edit window)."""

    body = fields.Str(
        required=True,
        metadata={"description": f"The comment (Markdown subset, at most {MAX_BODY} characters)."},
    )


class LikeSchema(ma.Schema):
    """A comment's likes after a reader liked or unliked it."""

    id = fields.Int()
    like_count = fields.Int()
    liked = fields.Bool()


class LikeEnvelopeSchema(ma.Schema):
    """The answer to a like or an unlike."""

    comment = fields.Nested(LikeSchema)
