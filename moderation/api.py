"""The JSON API v1 under ``/api/v1``, documented at ``/api/v1/openapi.json`` (ARCHITECTURE.md §4).

Views parse input (marshmallow schemas), call ``moderation.service`` and shape the answer.
Requests are signed with ``Authorization: Bearer <token>``, or by the browser session when they
also carry ``X-Requested-With`` (a header cross-site forms cannot send, so the blueprint can skip
CSRF tokens). Every error is ``{"error": "<sentence>", ...}`` with the fitting status.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, g, jsonify, request
from flask_limiter.util import get_remote_address
from flask_login import current_user
from flask_smorest import Api, Blueprint
from werkzeug.exceptions import HTTPException

from auth.models import User
from moderation import service
from moderation.extensions import csrf, limiter
from moderation.models import Comment, Site, Thread, normalise_origin
from moderation.schemas import (
    CommentCreateSchema,
    CommentEnvelopeSchema,
    CommentListQuerySchema,
    CommentListSchema,
    CountsQuerySchema,
    CountsSchema,
    DecisionCreateSchema,
    ErrorSchema,
    MeSchema,
    ModeratedCommentEnvelopeSchema,
    QueueQuerySchema,
    QueueSchema,
    SiteEnvelopeSchema,
    SitePatchSchema,
)
from moderation.status import Action, Status

__all__ = ["API_CONFIG", "bp", "init_app"]

API_CONFIG: dict[str, Any] = {
    "API_TITLE": "Newsroom comments API",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
    # No Swagger UI, ReDoc or RapiDoc: they load scripts from CDNs.
    "API_SPEC_OPTIONS": {
        "info": {
            "description": "Post, list and moderate comments. Authenticate with "
            "`Authorization: Bearer <token>` (tokens from `flask users create --token`), or with "
            "the browser session plus the header `X-Requested-With`."
        },
    },
}
COMMENT_RATE_LIMIT = "30/minute"  # per address; MODERATION_COMMENT_RATE_LIMIT overrides it
BEARER = [{"bearerAuth": []}]
BEARER_OR_ANONYMOUS: list[dict[str, list[str]]] = [{"bearerAuth": []}, {}]

bp = Blueprint("api", __name__, url_prefix="/api/v1", description="Comments, moderation and sites.")


class ModerationApi(Api):
    """flask-smorest's Api, documenting our error shape and leaving error handling to the app."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:
        # Its handler would answer every HTTP error of the whole app (HTML pages included) in
        # its own JSON shape; moderation.errors already answers /api/ paths in ours.
        pass


def init_app(app: Flask) -> ModerationApi:
    """Register the API blueprint and its OpenAPI document on ``app``."""
    for key, value in API_CONFIG.items():
        app.config.setdefault(key, value)
    api = ModerationApi(app)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "An API token."}
    )
    api.register_blueprint(bp)
    csrf.exempt(bp)  # authenticated by token or by a header forms cannot send; see above
    return api


# --- authentication and errors ------------------------------------------------------------------


@bp.before_request
def _authenticate() -> None:
    """Who signed the request (None: anonymous); a bad or revoked token is refused at once."""
    header = request.headers.get("Authorization")
    user: User | None = None
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise service.Unauthorized("Send the API token as “Authorization: Bearer <token>”.")
        user = service.authenticate_token(token.strip())
        if user is None:
            raise service.Unauthorized("The API token is not valid or has been revoked.")
    elif request.headers.get("X-Requested-With") and current_user.is_authenticated:
        user = current_user._get_current_object()
    g.api_user = user


def _signed_in() -> User:
    user: User | None = g.get("api_user")
    if user is None:
        raise service.Unauthorized(
            "Sign in, or send an API token as “Authorization: Bearer <token>”."
        )
    return user


@bp.errorhandler(service.ServiceError)
def _service_error(error: service.ServiceError) -> tuple[Response, int]:
    response = jsonify({**error.extra, "error": error.message})
    if isinstance(error, service.TooManyRequests):
        response.headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, service.Unauthorized):
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response, error.status


@bp.errorhandler(400)
@bp.errorhandler(422)
def _invalid_input(error: HTTPException) -> tuple[Response, int]:
    """Parsing errors from webargs, as one sentence and the messages per field."""
    status = error.code or 400
    messages = (getattr(error, "data", None) or {}).get("messages")
    if not messages:
        description = error.description
        if description == type(error).description:
            description = "The request could not be processed."
        return jsonify({"error": description}), status
    if status == 400:
        return jsonify({"error": "The request body is not valid JSON."}), 400
    fields: dict[str, Any] = {}
    for location_messages in messages.values():  # {"json": {...}} or {"query": {...}}
        if isinstance(location_messages, dict):
            fields.update(location_messages)
        else:
            fields.setdefault("_schema", []).extend(location_messages)
    names = [name for name in fields if name != "_schema"]
    if names:
        sentence = f"Some fields are missing or invalid: {', '.join(sorted(names))}."
    else:
        sentence = " ".join(str(message) for message in fields["_schema"])
    return jsonify({"error": sentence, "fields": fields}), 422


# --- shaping answers ------------------------------------------------------------------------------


def _comment_json(comment: Comment, *, with_reasons: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": comment.id,
        "parent_id": comment.parent_id,
        "url": comment.thread.url,
        "author": {"name": comment.author_name},
        "body": comment.body,
        "html": comment.html,
        "created_at": comment.created_at,
        "status": str(comment.status),
    }
    if with_reasons:
        data["reasons"] = list(comment.reasons or [])
    return data


def _thread_json(thread: Thread) -> dict[str, Any]:
    return {
        "url": thread.url,
        "title": thread.title,
        "comment_count": thread.comment_count,
        "closed": thread.closed,
    }


def _moderated_json(comment: Comment, site_key: str) -> dict[str, Any]:
    return {
        "id": comment.id,
        "parent_id": comment.parent_id,
        "site": site_key,
        "thread": _thread_json(comment.thread),
        "author": {
            "id": comment.author_id,
            "name": comment.author_name,
            "guest": comment.guest_email is not None,
        },
        "body": comment.body,
        "html": comment.html,
        "created_at": comment.created_at,
        "status": str(comment.status),
        "version": comment.version,
        "scores": {"spam": comment.spam_score, "abuse": comment.abuse_score},
        "model_version": comment.model_version,
        "reasons": list(comment.reasons or []),
    }


def _site_json(site: Site, role: str) -> dict[str, Any]:
    return {
        "key": site.key,
        "name": site.name,
        "origins": list(site.origins),
        "settings": dict(site.settings or {}),
        "role": role,
    }


def _cross_origin() -> str | None:
    """The request's Origin, unless it is this service's own (the comment iframe posting)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    try:
        if normalise_origin(origin) == normalise_origin(request.host_url):
            return None
    except ValueError:
        pass  # a malformed or "null" origin is refused by the service
    return origin


def _comment_rate_limit() -> str:
    return str(current_app.config.get("MODERATION_COMMENT_RATE_LIMIT", COMMENT_RATE_LIMIT))


# --- comments -------------------------------------------------------------------------------------


@bp.route("/comments", methods=["POST"])
@limiter.limit(_comment_rate_limit, key_func=get_remote_address)
@bp.arguments(CommentCreateSchema)
@bp.response(201, CommentEnvelopeSchema, description="Published.")
@bp.alt_response(
    202, schema=CommentEnvelopeSchema, description="Held for review (or refused).", success=True
)
@bp.alt_response(401, response="UNAUTHORIZED")
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
@bp.alt_response(409, response="CONFLICT")
@bp.alt_response(429, response="TOO_MANY_REQUESTS")
@bp.doc(security=BEARER_OR_ANONYMOUS)
def create_comment(data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Post a comment: 201 when it is published, 202 when it is held (with the reasons)."""
    comment, verdict = service.submit_comment(
        service.NewComment(
            site_key=data["site"],
            url=data["url"],
            body=data["body"],
            title=data.get("title"),
            parent_id=data.get("parent_id"),
            author=g.api_user,
            guest_name=data.get("name"),
            guest_email=data.get("email"),
            origin=_cross_origin(),
            ip=request.remote_addr,
            user_agent=request.user_agent.string or None,
        )
    )
    published = verdict.status == Status.PUBLISHED
    body = {"comment": _comment_json(comment, with_reasons=not published)}
    return body, 201 if published else 202


@bp.route("/comments", methods=["GET"])
@bp.arguments(CommentListQuerySchema, location="query")
@bp.response(200, CommentListSchema)
@bp.alt_response(404, response="NOT_FOUND")
def list_comments(query: dict[str, Any]) -> dict[str, Any]:
    """The published comments of an article, a page at a time (``next_cursor`` continues)."""
    page = service.list_comments(
        query["site"], query["url"], query["sort"], query["cursor"], query["limit"]
    )
    return {
        "comments": [_comment_json(comment) for comment in page.comments],
        "next_cursor": page.next_cursor,
        "thread": _thread_json(page.thread) if page.thread is not None else None,
    }


@bp.route("/counts", methods=["GET"])
@bp.arguments(CountsQuerySchema, location="query")
@bp.response(200, CountsSchema)
@bp.alt_response(404, response="NOT_FOUND")
def counts(query: dict[str, Any]) -> dict[str, Any]:
    """Published comments per article URL; unknown articles count 0."""
    return {"counts": service.comment_counts(query["site"], query["url"])}


# --- moderation -----------------------------------------------------------------------------------


@bp.route("/moderation/queue", methods=["GET"])
@bp.arguments(QueueQuerySchema, location="query")
@bp.response(200, QueueSchema)
@bp.alt_response(401, response="UNAUTHORIZED")
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
@bp.doc(security=BEARER)
def moderation_queue(query: dict[str, Any]) -> dict[str, Any]:
    """A site's held comments, oldest first, with scores, reasons and model version."""
    page = service.moderation_queue(
        query["site"],
        actor=_signed_in(),
        status=Status(query["status"]),
        limit=query["limit"],
        cursor=query["cursor"],
    )
    keys = {site.id: site.key for site in page.sites}
    return {
        "comments": [_moderated_json(c, keys[c.site_id]) for c in page.comments],
        "next_cursor": page.next_cursor,
    }


@bp.route("/moderation/comments/<int:comment_id>/decision", methods=["POST"])
@bp.arguments(DecisionCreateSchema)
@bp.response(200, ModeratedCommentEnvelopeSchema)
@bp.alt_response(401, response="UNAUTHORIZED")
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
@bp.alt_response(409, response="CONFLICT")
@bp.doc(security=BEARER)
def decide(data: dict[str, Any], comment_id: int) -> dict[str, Any]:
    """Approve, reject or mark as spam; 409 if someone already decided (or it changed)."""
    comment = service.decide_comment(
        comment_id,
        Action(data["action"]),
        _signed_in(),
        expected_version=data.get("version"),
        reason=data.get("reason"),
    )
    return {"comment": _moderated_json(comment, comment.site.key)}


# --- sites and users ------------------------------------------------------------------------------


@bp.route("/sites/<key>", methods=["GET"])
@bp.response(200, SiteEnvelopeSchema)
@bp.alt_response(401, response="UNAUTHORIZED")
@bp.alt_response(404, response="NOT_FOUND")
@bp.doc(security=BEARER)
def get_site(key: str) -> dict[str, Any]:
    """A site's name, origins and moderation settings (its staff only)."""
    site, role = service.get_site(key, _signed_in())
    return {"site": _site_json(site, role)}


@bp.route("/sites/<key>", methods=["PATCH"])
@bp.arguments(SitePatchSchema)
@bp.response(200, SiteEnvelopeSchema)
@bp.alt_response(401, response="UNAUTHORIZED")
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
@bp.doc(security=BEARER)
def update_site(data: dict[str, Any], key: str) -> dict[str, Any]:
    """Change a site's name, origins or some of its settings (owners and admins)."""
    site, role = service.update_site(
        key,
        _signed_in(),
        name=data.get("name"),
        origins=data.get("origins"),
        settings=data.get("settings"),
    )
    return {"site": _site_json(site, role)}


@bp.route("/me", methods=["GET"])
@bp.response(200, MeSchema)
@bp.alt_response(401, response="UNAUTHORIZED")
@bp.doc(security=BEARER)
def me() -> dict[str, Any]:
    """The signed-in user and the sites they work on."""
    user = _signed_in()
    return {
        "user": {
            "id": user.id,
            "name": user.display_name,
            "email": user.email,
            "role": str(user.role),
            "sites": [
                {"key": site.key, "name": site.name, "role": role}
                for site, role in service.memberships(user)
            ],
        }
    }
