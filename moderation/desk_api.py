"""The review desk's JSON endpoints under ``/api/v1/moderation`` (docs/_parts/desk-api-contract.md).

The queue and the single decision live in ``moderation.api`` (they came first); this blueprint
adds counts, cards, bulk decisions, undo and the author drawer. Authentication, error shapes and
the comment object are ``moderation.api``'s, so both answer alike.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import sqlalchemy as sa

from auth.models import Role, User
from moderation import desk, learning, scoring, service
from moderation.api import (
    _current_card,
    _moderated_json,
    _signed_in,
    documented_errors,
    guarded_blueprint,
)
from moderation.desk_schemas import (
    AuthorActionSchema,
    AuthorEnvelopeSchema,
    AuthorProfileSchema,
    AuthorQuerySchema,
    BulkDecisionSchema,
    BulkResultsSchema,
    CardQuerySchema,
    CountsEnvelopeSchema,
    DeskCommentEnvelopeSchema,
    DeskCountsQuerySchema,
    GuestQuerySchema,
    ModelVersionChangeSchema,
    ModelVersionsSchema,
    NoteCreateSchema,
    NoteEnvelopeSchema,
)
from moderation.extensions import db
from moderation.models import AuthorEvent, AuthorNote, ModelVersion
from moderation.status import Action

__all__ = ["bp"]

bp = guarded_blueprint(
    "desk_api",
    __name__,
    "/api/v1/moderation",
    "The moderators' review desk: counts, cards, bulk decisions, undo, authors.",
)


# --- shaping answers ------------------------------------------------------------------------------


def _summary_json(summary: desk.AuthorSummary) -> dict[str, Any]:
    return asdict(summary)


def _note_json(note: AuthorNote) -> dict[str, Any]:
    return {
        "id": note.id,
        "body": note.body,
        "moderator": service._display(note.moderator),
        "created_at": note.created_at,
    }


def _event_json(event: AuthorEvent) -> dict[str, Any]:
    return {
        "action": event.action,
        "actor": service._display(event.actor),
        "message": event.message,
        "until": event.until,
        "created_at": event.created_at,
    }


def _profile_json(profile: desk.AuthorProfile) -> dict[str, Any]:
    # No highlights in the drawer: explaining 50 comments would make it slow to open.
    cards = desk.cards(profile.comments, with_highlights=False)
    return {
        "author": _summary_json(profile.summary),
        "comments": [_moderated_json(card.comment, profile.site.key, card) for card in cards],
        "notes": [_note_json(note) for note in profile.notes],
        "events": [_event_json(event) for event in profile.events],
    }


def _errors() -> Any:
    """The error answers every desk endpoint may give."""
    return documented_errors(bp)


# --- queues and cards -----------------------------------------------------------------------------


@bp.route("/counts", methods=["GET"])
@bp.arguments(DeskCountsQuerySchema, location="query")
@bp.response(200, CountsEnvelopeSchema)
@_errors()
def counts(query: dict[str, Any]) -> dict[str, Any]:
    """Comments per queue on the sites you moderate (all by default), cached a few seconds."""
    return {"counts": desk.site_counts(_signed_in(), query["site"])}


@bp.route("/comments/<int:comment_id>", methods=["GET"])
@bp.arguments(CardQuerySchema, location="query")
@bp.response(200, DeskCommentEnvelopeSchema)
@_errors()
def card(query: dict[str, Any], comment_id: int) -> dict[str, Any]:
    """One comment card; ``?expand=author`` adds the author's record on the site."""
    comment = desk.find_comment(_signed_in(), comment_id)
    data = _moderated_json(comment, comment.site.key)
    if query["expand"] == "author":
        summary = desk.comment_author_summary(comment)
        data["author_summary"] = _summary_json(summary) if summary is not None else None
    return {"comment": data}


# --- decisions ------------------------------------------------------------------------------------


@bp.route("/decisions", methods=["POST"])
@bp.arguments(BulkDecisionSchema)
@bp.response(200, BulkResultsSchema)
@_errors()
def decide_many(data: dict[str, Any]) -> dict[str, Any]:
    """One decision on many comments; each is its own transaction, with its own result."""
    results = desk.decide_many(
        _signed_in(),
        Action(data["action"]),
        [(item["id"], item.get("version")) for item in data["comments"]],
        reason=data.get("reason"),
        notify=data.get("notify"),
    )
    answers = []
    for result in results:
        if result.comment is not None:
            comment = _moderated_json(result.comment, result.comment.site.key)
            answers.append({"id": result.id, "ok": True, "comment": comment})
        else:
            answers.append(
                {
                    **result.extra,
                    "id": result.id,
                    "ok": False,
                    "status": result.status,
                    "error": result.error,
                }
            )
    return {"results": answers}


@bp.route("/comments/<int:comment_id>/undo", methods=["POST"])
@bp.response(200, DeskCommentEnvelopeSchema)
@bp.alt_response(409, response="CONFLICT")
@_errors()
def undo(comment_id: int) -> dict[str, Any]:
    """Take back your own last decision on a comment, at most 10 seconds old, if still last."""
    actor = _signed_in()
    try:
        comment = desk.undo_decision(actor, comment_id)
    except service.Conflict as conflict:
        conflict.extra["comment"] = _current_card(actor, comment_id)
        raise
    return {"comment": _moderated_json(comment, comment.site.key)}


# --- authors --------------------------------------------------------------------------------------


def _user_key(user_id: int) -> desk.AuthorKey:
    return desk.AuthorKey(user_id=user_id)


@bp.route("/authors/<int:user_id>", methods=["GET"])
@bp.arguments(AuthorQuerySchema, location="query")
@bp.response(200, AuthorProfileSchema)
@_errors()
def author(query: dict[str, Any], user_id: int) -> dict[str, Any]:
    """An author's record on a site, recent comments, notes and the actions taken on them."""
    return _profile_json(desk.author_profile(_signed_in(), query["site"], _user_key(user_id)))


@bp.route("/guests", methods=["GET"])
@bp.arguments(GuestQuerySchema, location="query")
@bp.response(200, AuthorProfileSchema)
@_errors()
def guest(query: dict[str, Any]) -> dict[str, Any]:
    """The same for a guest, known by e-mail address."""
    key = desk.AuthorKey(guest_email=query["email"])
    return _profile_json(desk.author_profile(_signed_in(), query["site"], key))


@bp.route("/authors/<int:user_id>/notes", methods=["POST"])
@bp.arguments(AuthorQuerySchema, location="query")
@bp.arguments(NoteCreateSchema)
@bp.response(201, NoteEnvelopeSchema)
@_errors()
def add_note(query: dict[str, Any], data: dict[str, Any], user_id: int) -> dict[str, Any]:
    """Add a note about an author, shown to the site's moderators on their cards."""
    note = desk.add_note(_signed_in(), query["site"], _user_key(user_id), data["body"])
    return {"note": _note_json(note)}


@bp.route("/authors/<int:user_id>/actions", methods=["POST"])
@bp.arguments(AuthorQuerySchema, location="query")
@bp.arguments(AuthorActionSchema)
@bp.response(200, AuthorEnvelopeSchema)
@_errors()
def act(query: dict[str, Any], data: dict[str, Any], user_id: int) -> dict[str, Any]:
    """Ban, suspend, pre-moderate, trust or shadow-ban an author on a site, or undo that."""
    user: User = _signed_in()
    summary = desk.act_on_author(
        user,
        query["site"],
        _user_key(user_id),
        data["action"],
        message=data.get("message"),
        hours=data.get("hours"),
    )
    return {"author": _summary_json(summary)}


@bp.route("/guests/notes", methods=["POST"])
@bp.arguments(GuestQuerySchema, location="query")
@bp.arguments(NoteCreateSchema)
@bp.response(201, NoteEnvelopeSchema)
@_errors()
def add_guest_note(query: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Add a note about a guest (by e-mail address)."""
    key = desk.AuthorKey(guest_email=query["email"])
    return {"note": _note_json(desk.add_note(_signed_in(), query["site"], key, data["body"]))}


@bp.route("/guests/actions", methods=["POST"])
@bp.arguments(GuestQuerySchema, location="query")
@bp.arguments(AuthorActionSchema)
@bp.response(200, AuthorEnvelopeSchema)
@_errors()
def act_on_guest(query: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Act on a guest (by e-mail address) as on an author."""
    summary = desk.act_on_author(
        _signed_in(),
        query["site"],
        desk.AuthorKey(guest_email=query["email"]),
        data["action"],
        message=data.get("message"),
        hours=data.get("hours"),
    )
    return {"author": _summary_json(summary)}


# --- classifier model versions (retraining itself is `flask classifier retrain`) --------------


def _admin() -> User:
    user = _signed_in()
    if user.role != Role.ADMIN:
        # One model scores every site of the installation: changing it is an admin's call.
        raise service.Forbidden("Only an administrator of the installation can change the model.")
    return user


def _learning_call(work: Any) -> Any:
    try:
        return work()
    except learning.LearningError as exc:
        if str(exc).startswith("There is no model version"):
            raise service.NotFound(str(exc)) from None
        raise service.Conflict(str(exc)) from None


@bp.route("/model-versions", methods=["GET"])
@bp.response(200, ModelVersionsSchema)
@_errors()
def model_versions() -> dict[str, Any]:
    """The classifier's versions with their metrics; the queue shows which one scored a comment."""
    desk.moderated_sites(_signed_in())  # staff only (403 for readers)
    active = learning.ensure_active_version()
    rows = db.session.scalars(sa.select(ModelVersion).order_by(ModelVersion.id.desc())).all()
    return {"versions": [learning.version_json(r) for r in rows], "active": active.version}


@bp.route("/model-versions/<version>/activate", methods=["POST"])
@bp.response(200, ModelVersionChangeSchema)
@bp.alt_response(409, response="CONFLICT")
@_errors()
def activate_model_version(version: str) -> dict[str, Any]:
    """Make a recorded version the active model (admins); it scores new comments within 30 s."""
    _admin()
    row, replaced = _learning_call(lambda: learning.activate_version(version))
    scoring.forget_active()
    return {
        "active": learning.version_json(row),
        "replaced": learning.version_json(replaced) if replaced is not None else None,
    }


@bp.route("/model-versions/rollback", methods=["POST"])
@bp.response(200, ModelVersionChangeSchema)
@bp.alt_response(409, response="CONFLICT")
@_errors()
def rollback_model_version() -> dict[str, Any]:
    """Return to the version that was active before the current one (admins)."""
    _admin()
    row, retired = _learning_call(learning.rollback)
    scoring.forget_active()
    return {"active": learning.version_json(row), "replaced": learning.version_json(retired)}
