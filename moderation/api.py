"""The JSON API v1 under ``/api/v1``, documented at ``/api/v1/openapi.json`` (ARCHITECTURE.md §4).

Views parse input (marshmallow schemas), call ``moderation.service`` and shape the answer.
Requests are signed with ``Authorization: Bearer <token>``, or by the browser session when they
also carry ``X-Requested-With`` (a header cross-site forms cannot send, so the blueprint can skip
CSRF tokens); a cookie-signed request that changes data must also come from this service's own
origin (``Origin``, else ``Sec-Fetch-Site`` or ``Referer``), or it is refused with 403. Every
error is ``{"error": "<sentence>", ...}`` with the fitting status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, jsonify, request
from flask_limiter.util import get_remote_address
from flask_login import current_user
from flask_smorest import Api, Blueprint
from werkzeug.exceptions import HTTPException

from auth.models import User
from auth.throttle import count_failure, seconds_to_wait
from moderation import cache, desk, service
from moderation.desk_schemas import (
    DecisionSchema,
    DeskCommentEnvelopeSchema,
    DeskQueueQuerySchema,
    DeskQueueSchema,
    ModeratedCommentSchema,
)
from moderation.embed import EMBED_TOKEN_HEADER, embed_cookie_user, user_for_embed_token
from moderation.extensions import csrf, limiter
from moderation.models import Comment, Site, Thread, normalise_origin
from moderation.policy import Verdict
from moderation.schemas import (
    CommentCreateSchema,
    CommentEditSchema,
    CommentEnvelopeSchema,
    CommentListQuerySchema,
    CommentListSchema,
    CountsQuerySchema,
    CountsSchema,
    ErrorSchema,
    LikeEnvelopeSchema,
    MeSchema,
    NudgeEnvelopeSchema,
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
            "the browser session plus the header `X-Requested-With` (changes only from this "
            "service's own origin)."
        },
    },
}
# Methods that change nothing: cookie-signed requests with them need no same-origin check.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
COMMENT_RATE_LIMIT = "30/minute"  # per address; MODERATION_COMMENT_RATE_LIMIT overrides it
BEARER = [{"bearerAuth": []}]
BEARER_OR_ANONYMOUS: list[dict[str, list[str]]] = [{"bearerAuth": []}, {}]

# Error answers any operation of the API can give, whatever its own: text holding NUL characters
# or unpaired surrogates, or a body that is not JSON (400, moderation/security.py and the
# parsers); too many refused tokens from one address (429, _authenticate); and, for a method
# with a body, a body over MAX_CONTENT_LENGTH (413).
COMMON_ERRORS = ((400, "BAD_REQUEST"), (429, "TOO_MANY_REQUESTS"))
BODY_ERRORS = ((413, "REQUEST_ENTITY_TOO_LARGE"),)
BODY_METHODS = frozenset({"post", "put", "patch"})


class ApiBlueprint(Blueprint):
    """flask-smorest's Blueprint, documenting the error answers every API operation can give."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # First: the response callback turns the collected answers into the document.
        self._prepare_doc_cbks.insert(0, self._prepare_common_errors)

    @staticmethod
    def _prepare_common_errors(
        doc: dict[str, Any], doc_info: dict[str, Any], *, method: str, **kwargs: Any
    ) -> dict[str, Any]:
        # doc_info is flask-smorest's deep copy for this registration: changing it is safe.
        responses = doc_info.setdefault("response", {}).setdefault("responses", {})
        errors = COMMON_ERRORS + (BODY_ERRORS if method in BODY_METHODS else ())
        for status, name in errors:
            responses.setdefault(status, [name])
        return doc


bp = ApiBlueprint(
    "api", __name__, url_prefix="/api/v1", description="Comments, moderation and sites."
)


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
    from moderation.desk_api import bp as desk_bp  # it builds on this module's helpers

    api.register_blueprint(desk_bp)
    csrf.exempt(desk_bp)  # the same authentication as bp
    from moderation.reports_api import bp as reports_bp  # reports, audit log, activity

    api.register_blueprint(reports_bp)
    csrf.exempt(reports_bp)  # the same authentication as bp
    from moderation.privacy import bp as privacy_bp  # admins' export and erasure

    api.register_blueprint(privacy_bp)
    csrf.exempt(privacy_bp)  # the same authentication as bp
    return api


# --- authentication and errors ------------------------------------------------------------------


# Refused bearer tokens one client address may send per minute (a token has 256 random bits:
# this stops hammering, and makes a leaked-token scan from one address slow and visible).
BAD_TOKEN_LIMIT = "20/minute"


@bp.before_request
def _authenticate() -> None:
    """Who signed the request (None: anonymous); a bad or revoked token is refused at once."""
    header = request.headers.get("Authorization")
    user: User | None = None
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise service.Unauthorized("Send the API token as “Authorization: Bearer <token>”.")
        # Guessing tokens from one address: after BAD_TOKEN_LIMIT refusals, 429 before looking.
        wait = seconds_to_wait("api-token", BAD_TOKEN_LIMIT)
        if wait is not None:
            raise service.TooManyRequests("Too many invalid API tokens; try again later.", wait)
        user = service.authenticate_token(token.strip())
        if user is None:
            count_failure("api-token", BAD_TOKEN_LIMIT)
            raise service.Unauthorized("The API token is not valid or has been revoked.")
    elif request.headers.get(EMBED_TOKEN_HEADER):
        # The comment iframe's login (moderation/embed.py): a custom header, so CSRF-safe too.
        user = user_for_embed_token(request.headers[EMBED_TOKEN_HEADER])
        if user is None:
            raise service.Unauthorized("Your login has expired; log in again.")
    elif request.headers.get("X-Requested-With") and current_user.is_authenticated:
        _require_same_origin()
        user = current_user._get_current_object()
    else:
        user = embed_cookie_user()  # the widget's partitioned login cookie (HTTPS)
        if user is not None:
            _require_same_origin()
    g.api_user = user


def _require_same_origin() -> None:
    """Refuse a cookie-signed request that changes data unless it comes from our own pages."""
    # The custom header already keeps cross-site forms out; checking where the browser says
    # the request comes from also holds if a CORS rule or a browser bug ever lets one through.
    if request.method in SAFE_METHODS or _sent_from_own_origin():
        return
    named = any(request.headers.get(name) for name in ("Origin", "Sec-Fetch-Site", "Referer"))
    raise service.Forbidden(
        "A request signed by a browser cookie may only change data from this service's own "
        "pages, and this one "
        + ("comes from another origin" if named else "names no origin (no Origin header)")
        + "; send an API token instead."
    )


def _sent_from_own_origin() -> bool:
    """Whether the browser names this service as the request's origin; naming none is a no."""
    # Origin first (sent on every state-changing fetch), then Sec-Fetch-Site, then Referer.
    origin = request.headers.get("Origin")
    if origin is not None:
        return _is_own_origin(origin)
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    referer = request.headers.get("Referer")
    return bool(referer) and _is_own_origin(referer)


def _is_own_origin(value: str) -> bool:
    """Whether ``value`` (an origin or a URL) is this service's origin."""
    parts = urlsplit(value.strip())
    try:
        theirs = normalise_origin(f"{parts.scheme}://{parts.netloc}")
        ours = normalise_origin(request.host_url)
    except ValueError:
        return False  # "null" (sandboxed frames, file: pages) or malformed
    # Behind a TLS proxy that does not tell us the scheme we see http, the browser https;
    # https with our host name is still us.
    return theirs in (ours, "https://" + ours.partition("://")[2])


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


def documented_errors(blueprint: Blueprint) -> Callable[[Any], Any]:
    """A decorator listing the error answers a guarded endpoint may give in the OpenAPI doc."""

    def decorate(view: Any) -> Any:
        for status, name in (
            (401, "UNAUTHORIZED"),
            (403, "FORBIDDEN"),
            (404, "NOT_FOUND"),
            (422, "UNPROCESSABLE_ENTITY"),
        ):
            view = blueprint.alt_response(status, response=name)(view)
        return blueprint.doc(security=BEARER)(view)

    return decorate


def guarded_blueprint(name: str, import_name: str, url_prefix: str, description: str) -> Blueprint:
    """A blueprint of the JSON API with its gate (token or session) and its error answers."""
    blueprint = ApiBlueprint(name, import_name, url_prefix=url_prefix, description=description)
    blueprint.before_request(_authenticate)
    blueprint.register_error_handler(service.ServiceError, _service_error)
    blueprint.register_error_handler(400, _invalid_input)
    blueprint.register_error_handler(422, _invalid_input)
    return blueprint


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
        "edited_at": comment.edited_at,
        "like_count": comment.like_count or 0,
    }
    if with_reasons:
        data["reasons"] = list(comment.reasons or [])
    return data


def _public_comment_json(
    comment: Comment, url: str, *, with_reasons: bool = False
) -> dict[str, Any]:
    """``_comment_json`` ready for ``jsonify``, for the two busiest endpoints (see its tests)."""
    data: dict[str, Any] = {
        "id": comment.id,
        "parent_id": comment.parent_id,
        "url": url,
        "author": {"name": comment.author_name},
        "body": comment.body,
        "html": comment.html,
        "created_at": comment.created_at.isoformat(),
        # A shadow-banned author's comment is shown to them (and only them) as published.
        "status": Status.PUBLISHED.value if comment.shadow else str(comment.status),
        "edited_at": comment.edited_at.isoformat() if comment.edited_at is not None else None,
        "like_count": comment.like_count or 0,
    }
    if with_reasons:
        data["reasons"] = [
            {"code": reason.get("code"), "message": reason.get("message")}
            for reason in comment.reasons or []
        ]
    return data


def _thread_json(thread: Thread) -> dict[str, Any]:
    return {
        "url": thread.url,
        "title": thread.title,
        "comment_count": thread.comment_count,
        # Closed by hand or by the site's close_after_days.
        "closed": service.thread_closed(thread),
    }


def _moderated_json(
    comment: Comment, site_key: str, card: desk.Card | None = None
) -> dict[str, Any]:
    """The comment as moderators see it (docs/_parts/desk-api-contract.md); ``card`` from
    ``desk.cards`` (loaded in bulk for a page), else loaded for this comment alone."""
    card = card if card is not None else desk.cards([comment])[0]
    parent, last = card.parent, card.last_decision
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
        "report_count": comment.report_count,
        "report_weight": comment.report_weight,
        "needs_review": comment.needs_review,
        "shadow": comment.shadow,
        "nudged": comment.nudged,
        "highlights": [highlight.to_dict() for highlight in card.highlights],
        "parent": None
        if parent is None
        else {
            "id": parent.id,
            "author": {"name": parent.author_name},
            "body": parent.body,
            "status": str(parent.status),
        },
        "last_decision": None
        if last is None
        else {
            "actor": service._display(last.actor),
            "action": str(last.action) if last.action is not None else None,
            "at": last.created_at,
            "from_status": str(last.from_status) if last.from_status is not None else None,
            "to_status": str(last.to_status),
        },
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
@bp.arguments(CommentCreateSchema())  # an instance: a class is instantiated per request
@bp.response(201, CommentEnvelopeSchema, description="Published.")
@bp.alt_response(
    202, schema=CommentEnvelopeSchema, description="Held for review (or refused).", success=True
)
@bp.alt_response(
    200,
    schema=NudgeEnvelopeSchema,
    description="Not stored: the author is asked to reconsider (only with `nudge: true`).",
    success=True,
)
@bp.alt_response(401, response="UNAUTHORIZED")
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
@bp.alt_response(409, response="CONFLICT")
@bp.alt_response(429, response="TOO_MANY_REQUESTS")
@bp.doc(security=BEARER_OR_ANONYMOUS)
def create_comment(data: dict[str, Any]) -> tuple[Response, int]:
    """Post a comment: 201 when it is published, 202 when held (with the reasons), 200: nudge."""
    try:
        comment, verdict = _submit(data)
    except service.Nudge as nudge:
        # Asked with "nudge": true; nothing stored. Sent again with "nudged": true, the
        # comment is routed normally and the nudge is recorded with it.
        return jsonify({"nudge": {"message": nudge.message, **nudge.extra}}), 200
    published = verdict.status == Status.PUBLISHED
    # Shaped here rather than by the response schema: the hot path of the service (the same
    # JSON, half the time; tests compare it with the schema's).
    answer = _public_comment_json(comment, comment.thread.url, with_reasons=not published)
    return jsonify({"comment": answer}), 201 if published else 202


def _submit(data: dict[str, Any]) -> tuple[Comment, Verdict]:
    return service.submit_comment(
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
            nudge=data["nudge"],
            nudged=data["nudged"],
        )
    )


@bp.route("/comments", methods=["GET"])
@bp.arguments(CommentListQuerySchema(), location="query")  # the same
@bp.response(200, CommentListSchema)
@bp.alt_response(404, response="NOT_FOUND")
def list_comments(query: dict[str, Any]) -> dict[str, Any]:
    """The published comments of an article, a page at a time (``next_cursor`` continues)."""
    if g.api_user is not None:  # sees their own shadow-banned comments: not shared
        return jsonify(_comment_list(query, g.api_user))
    try:
        canonical = service.canonical_url(query["url"])
    except service.ServiceError:
        return jsonify(_comment_list(query, None))  # raises the service's error
    variant = [query["sort"], query["cursor"], query["limit"]]
    # The answer's bytes are cached and served as they are: no parsing and serialising again.
    body = cache.cached_bytes(
        "api-comments",
        query["site"],
        [canonical],
        variant,
        lambda: jsonify(_comment_list(query, None)).get_data(),
    )
    return Response(body, mimetype=current_app.json.mimetype)  # type: ignore[attr-defined]


def _comment_list(query: dict[str, Any], viewer: User | None) -> dict[str, Any]:
    """The answer of ``list_comments`` as plain values (cached for anonymous readers)."""
    page = service.list_comments(
        query["site"], query["url"], query["sort"], query["cursor"], query["limit"], viewer=viewer
    )
    thread = page.thread
    return {
        "comments": [_public_comment_json(c, thread.url) for c in page.comments] if thread else [],
        "next_cursor": page.next_cursor,
        "thread": None
        if thread is None
        else {
            "url": thread.url,
            "title": thread.title,
            "comment_count": thread.comment_count,
            "closed": page.closed,  # by hand or by the site's close_after_days
        },
    }


@bp.route("/comments/<int:comment_id>", methods=["PATCH"])
@bp.arguments(CommentEditSchema)
@bp.response(200, CommentEnvelopeSchema, description="Edited (and still published).")
@bp.alt_response(202, schema=CommentEnvelopeSchema, description="Edited and held.", success=True)
@bp.alt_response(401, response="UNAUTHORIZED")
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
@bp.alt_response(422, response="UNPROCESSABLE_ENTITY")
@bp.doc(security=BEARER)
def edit_comment(data: dict[str, Any], comment_id: int) -> tuple[Response, int]:
    """Edit your own comment within the site's edit window; the new text is routed again."""
    comment, verdict = service.edit_comment(comment_id, _signed_in(), data["body"])
    published = verdict.status == Status.PUBLISHED
    answer = _public_comment_json(comment, comment.thread.url, with_reasons=not published)
    return jsonify({"comment": answer}), 200 if published else 202


@bp.route("/comments/<int:comment_id>", methods=["DELETE"])
@bp.response(204, description="Deleted.")
@bp.alt_response(401, response="UNAUTHORIZED")
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
@bp.doc(security=BEARER)
def delete_comment(comment_id: int) -> tuple[str, int]:
    """Delete your own comment within the site's edit window."""
    service.delete_own_comment(comment_id, _signed_in())
    return "", 204


@bp.route("/comments/<int:comment_id>/like", methods=["POST", "DELETE"])
@bp.response(200, LikeEnvelopeSchema)
@bp.alt_response(401, response="UNAUTHORIZED")
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
@bp.doc(security=BEARER)
def like_comment(comment_id: int) -> dict[str, Any]:
    """Like (POST) or unlike (DELETE) a published comment, once per reader."""
    liked = request.method == "POST"
    comment = service.like_comment(comment_id, _signed_in(), liked)
    return {"comment": {"id": comment.id, "like_count": comment.like_count, "liked": liked}}


@bp.route("/counts", methods=["GET"])
@bp.arguments(CountsQuerySchema, location="query")
@bp.response(200, CountsSchema)
@bp.alt_response(404, response="NOT_FOUND")
def counts(query: dict[str, Any]) -> dict[str, Any]:
    """Published comments per article URL; unknown articles count 0."""
    urls = query["url"]
    canonical = []
    for url in urls:
        try:
            canonical.append(service.canonical_url(url))
        except service.ServiceError:
            continue  # counts 0 whatever happens to the thread
    return cache.cached(
        "api-counts",
        query["site"],
        canonical,
        [urls],
        lambda: {"counts": service.comment_counts(query["site"], urls)},
    )


# --- moderation -----------------------------------------------------------------------------------


@bp.route("/moderation/queue", methods=["GET"])
@bp.arguments(DeskQueueQuerySchema, location="query")
@bp.response(200, DeskQueueSchema)
@bp.alt_response(401, response="UNAUTHORIZED")
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
@bp.alt_response(422, response="UNPROCESSABLE_ENTITY")
@bp.doc(security=BEARER)
def moderation_queue(query: dict[str, Any]) -> dict[str, Any]:
    """A queue of the sites you moderate (all by default), filtered, sorted, with every count."""
    what = desk.QueueFilter(
        queue=query["queue"] or desk.STATUS_QUEUES.get(query["status"] or "", "pending"),
        sort=query["sort"],
        article=query["article"],
        reason=query["reason"],
        author_id=query["author"],
        author_email=query["author_email"],
        min_abuse=query["min_abuse"],
        max_abuse=query["max_abuse"],
        min_spam=query["min_spam"],
        max_spam=query["max_spam"],
    )
    page = desk.queue(_signed_in(), query["site"], what, query["cursor"], query["limit"])
    keys = {site.id: site.key for site in page.sites}
    cards = desk.cards(page.comments, with_highlights=query["highlights"])
    comments = [_moderated_json(c.comment, keys[c.comment.site_id], c) for c in cards]
    if query["expand"] == "author":
        summaries = desk.comment_author_summaries(page.comments)
        for data in comments:
            summary = summaries.get(data["id"])
            data["author_summary"] = asdict(summary) if summary is not None else None
    return {"comments": comments, "next_cursor": page.next_cursor, "counts": page.counts}


@bp.route("/moderation/comments/<int:comment_id>/decision", methods=["POST"])
@bp.arguments(DecisionSchema)
@bp.response(200, DeskCommentEnvelopeSchema)
@bp.alt_response(401, response="UNAUTHORIZED")
@bp.alt_response(403, response="FORBIDDEN")
@bp.alt_response(404, response="NOT_FOUND")
@bp.alt_response(409, response="CONFLICT")
@bp.doc(security=BEARER)
def decide(data: dict[str, Any], comment_id: int) -> dict[str, Any]:
    """Approve, reject or mark as spam; 409 if someone already decided (or it changed)."""
    actor = _signed_in()
    try:
        comment = service.decide_comment(
            comment_id,
            Action(data["action"]),
            actor,
            expected_version=data.get("version"),
            reason=data.get("reason"),
            notify=data.get("notify"),
        )
    except service.Conflict as conflict:
        conflict.extra["comment"] = _current_card(actor, comment_id)
        raise
    return {"comment": _moderated_json(comment, comment.site.key)}


def _current_card(actor: User, comment_id: int) -> dict[str, Any]:
    """The comment as it is now, for a 409 answer (shaped by the schema: ISO dates)."""
    current = desk.find_comment(actor, comment_id)
    return dict(ModeratedCommentSchema().dump(_moderated_json(current, current.site.key)))


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
