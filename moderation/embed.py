"""The embeddable widget: ``/embed.js``, the thread page inside its iframe, and its login hand-off.

A customer's page loads ``/embed.js`` from this service; it frames ``/embed/thread`` (served
from here, so its scripts talk to the API same-origin). The iframe cannot rely on cookies: a
third-party frame does not get the service's first-party session (Lax on HTTP, partitioned on
HTTPS). A login therefore runs in a first-party popup that ends on ``/embed/login-done``, which
hands the frame a signed, expiring *embed token*; the frame sends it as ``X-Embed-Token``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    make_response,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

from auth.models import User
from moderation import service
from moderation.extensions import db, limiter
from moderation.models import Comment, Site, Thread, normalise_origin
from moderation.render import MAX_BODY
from moderation.status import Status

__all__ = [
    "EMBED_TOKEN_HEADER",
    "MAX_DEPTH",
    "bp",
    "embed_token_for",
    "frame_ancestors",
    "thread_tree",
    "user_for_embed_token",
]

bp = Blueprint("embed", __name__)

EMBED_TOKEN_HEADER = "X-Embed-Token"
# On HTTPS the token is also kept in a partitioned cookie (CHIPS): it survives reloads where
# browsers block third-party storage, and only ever goes to this service under that newspaper.
EMBED_COOKIE = "embed_token"
EMBED_TOKEN_MAX_AGE = 30 * 24 * 3600  # seconds; logging out everywhere voids it sooner
MAX_DEPTH = 3  # replies nest three levels deep, then continue flat at the third
PAGE_SIZE = 50
HELD_SHOWN = 20  # a reader's own held comments shown back to them on one article
THEMES = ("light", "dark", "auto")


# --- embed tokens -------------------------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="embed-login")


def embed_token_for(user: User) -> str:
    """A signed token naming ``user`` and their session version, for the comment iframe."""
    return _serializer().dumps({"u": user.id, "v": user.session_version})


def user_for_embed_token(token: str) -> User | None:
    """The user of a valid, unexpired embed token whose sessions were not voided since."""
    try:
        data = _serializer().loads(token, max_age=EMBED_TOKEN_MAX_AGE)
    except BadSignature:  # SignatureExpired is a BadSignature
        return None
    if not isinstance(data, dict):
        return None
    user = db.session.get(User, data.get("u")) if isinstance(data.get("u"), int) else None
    if user is None or user.session_version != data.get("v"):
        return None
    return user


@bp.app_template_filter("embed_iso")
def embed_iso(moment: datetime) -> str:
    """``moment`` as ISO 8601 in UTC with a ``Z`` (SQLite hands back naive UTC times)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the thread -------------------------------------------------------------------------------


@dataclass
class Node:
    """A comment and the replies shown under it."""

    comment: Comment
    depth: int
    replies: list[Node] = field(default_factory=list)


def thread_tree(comments: list[Comment]) -> list[Node]:
    """Nest ``comments`` (display order) up to ``MAX_DEPTH`` levels; deeper replies go flat."""
    nodes: dict[int, Node] = {}
    roots: list[Node] = []
    for comment in comments:
        parent = nodes.get(comment.parent_id) if comment.parent_id is not None else None
        if parent is None:
            # A reply whose parent is not shown (held, on another page) starts a new branch.
            node = Node(comment, 1)
            roots.append(node)
        else:
            # At the deepest level, replies join their parent's list: the thread goes flat.
            holder = parent if parent.depth < MAX_DEPTH else _holder_of(parent, nodes)
            node = Node(comment, min(parent.depth + 1, MAX_DEPTH))
            holder.replies.append(node)
        nodes[comment.id] = node
    return roots


def _holder_of(node: Node, nodes: dict[int, Node]) -> Node:
    """The node at depth MAX_DEPTH - 1 above ``node`` (whose replies list holds it)."""
    current = node
    while current.depth >= MAX_DEPTH and current.comment.parent_id in nodes:
        current = nodes[current.comment.parent_id]
    return current


def frame_ancestors(site: Site) -> str:
    """The CSP ``frame-ancestors`` source list: the site's origins, or none at all."""
    return " ".join(site.origins) if site.origins else "'none'"


def _csp(site: Site | None) -> str:
    ancestors = frame_ancestors(site) if site is not None else "'none'"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
        f"frame-ancestors {ancestors}"
    )


def _error_page(message: str, status: int, site: Site | None = None) -> Response:
    response = make_response(render_template("embed/error.html", message=message), status)
    response.headers["Content-Security-Policy"] = _csp(site)
    return response


def _parent_origin(site: Site, raw: str | None) -> str | None:
    """The embedding page's origin when it is one of the site's (postMessage goes only there)."""
    if not raw:
        return None
    try:
        origin = normalise_origin(raw)
    except ValueError:
        return None
    return origin if origin in site.origins else None


@bp.get("/embed.js")
@limiter.exempt
def embed_js() -> Response:
    """The loader script customers paste into their pages."""
    # Read whole (2-3 KB) rather than streamed: no open file outlives the request.
    path = Path(current_app.static_folder or "static") / "js" / "embed.js"
    response = Response(path.read_bytes(), mimetype="text/javascript")
    response.headers["Cache-Control"] = "public, max-age=300"
    response.add_etag()
    response.make_conditional(request)
    response.headers["Access-Control-Allow-Origin"] = "*"  # a public, credential-free script
    return response


@bp.get("/embed/thread")
def thread_page() -> Response:
    """The comments of one article, rendered for the widget's iframe."""
    key = request.args.get("site", "")
    url = request.args.get("url", "")
    site = db.session.scalar(sa.select(Site).where(Site.key == key)) if key else None
    if site is None:
        return _error_page("This comment section is not set up: unknown site.", 404)
    if not url:
        return _error_page("The article address is missing.", 400, site)
    try:
        canonical = service.canonical_url(url)
    except service.ServiceError as error:
        return _error_page(error.message, 400, site)
    if _origin_of(canonical) not in site.origins:
        return _error_page("This article is not on one of the site's addresses.", 400, site)
    theme = request.args.get("theme", "light")
    if theme not in THEMES:
        theme = "light"
    sort = request.args.get("sort", "oldest")
    if sort not in ("oldest", "newest", "liked"):
        sort = "oldest"
    page = service.list_comments(site.key, canonical, sort, None, PAGE_SIZE)
    settings = service._settings_of(site)
    from auth.oauth import enabled_providers  # the auth package builds the login buttons

    response = make_response(
        render_template(
            "embed/thread.html",
            site=site,
            url=canonical,
            title=request.args.get("title", "")[:500],
            thread=page.thread,
            tree=thread_tree(page.comments),
            next_cursor=page.next_cursor,
            total=page.thread.comment_count if page.thread is not None else 0,
            closed=bool(page.thread is not None and page.thread.closed),
            theme=theme,
            sort=sort,
            lang=_language(request.args.get("lang", "")),
            parent_origin=_parent_origin(site, request.args.get("origin")) or "",
            allow_guests=settings.allow_guests,
            edit_minutes=settings.edit_minutes,
            providers=enabled_providers(),
            max_body=MAX_BODY,
            login_done=url_for("embed.login_done"),
        )
    )
    response.headers["Content-Security-Policy"] = _csp(site)
    response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _language(value: str) -> str:
    """A BCP 47-looking language tag for the thread's ``<html lang>``; English otherwise."""
    return value if re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}", value) else "en"


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@bp.get("/embed/login-done")
def login_done() -> Response:
    """The end of a login in the widget's popup: hand the frame an embed token, then close."""
    token = embed_token_for(current_user) if current_user.is_authenticated else ""
    response = make_response(
        render_template(
            "embed/login_done.html",
            token=token,
            name=current_user.display_name if current_user.is_authenticated else "",
            target_origin=f"{request.scheme}://{request.host}",
        )
    )
    response.headers["Content-Security-Policy"] = _csp(None)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/embed/me")
def me() -> Response:
    """Who the embed token (or the same-origin session) belongs to; ``user`` null if nobody."""
    user = _embed_user()
    answer: dict[str, Any] = {"user": None}
    if user is not None:
        providers = sorted({identity.provider for identity in getattr(user, "identities", [])})
        answer["user"] = {"id": user.id, "name": user.display_name, "providers": providers}
        # Which of the comments on screen this reader liked (ids=1,2,3; at most a page's worth).
        ids = [int(part) for part in request.args.get("ids", "").split(",")[:200] if part.isdigit()]
        answer["liked"] = sorted(service.liked_by(user, ids))
        answer["held"] = [_held_json(c) for c in _own_held(user, request.args)]
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


def _own_held(user: User, args: Any) -> list[Comment]:
    """The reader's own comments on this article that wait for a moderator (theirs to see)."""
    site = db.session.scalar(sa.select(Site).where(Site.key == args.get("site", "")))
    if site is None or not args.get("url"):
        return []
    try:
        canonical = service.canonical_url(args["url"])
    except service.ServiceError:
        return []
    return list(
        db.session.scalars(
            sa.select(Comment)
            .join(Thread, Thread.id == Comment.thread_id)
            .where(
                Thread.site_id == site.id,
                Thread.url == canonical,
                Comment.author_id == user.id,
                Comment.status == Status.PENDING,
            )
            .order_by(Comment.created_at, Comment.id)
            .limit(HELD_SHOWN)
        )
    )


def _held_json(comment: Comment) -> dict[str, Any]:
    return {
        "id": comment.id,
        "parent_id": comment.parent_id,
        "author": {"name": comment.author_name},
        "html": comment.html,
        "created_at": embed_iso(comment.created_at),
        "edited_at": embed_iso(comment.edited_at) if comment.edited_at else None,
        "status": str(comment.status),
        "like_count": 0,
    }


def _embed_user() -> User | None:
    token = request.headers.get(EMBED_TOKEN_HEADER)
    if token:
        return user_for_embed_token(token)
    if request.headers.get("X-Requested-With") and current_user.is_authenticated:
        return current_user._get_current_object()
    return embed_cookie_user()


def embed_cookie_user() -> User | None:
    """The user of the partitioned embed cookie, for requests with ``X-Requested-With`` only.

    The custom header is what makes a cookie safe to honour: a cross-site form cannot send it,
    and a cross-origin fetch with it needs a CORS preflight that this service never grants.
    """
    token = request.cookies.get(EMBED_COOKIE)
    if not token or not request.headers.get("X-Requested-With"):
        return None
    return user_for_embed_token(token)


@bp.route("/embed/session", methods=["POST", "DELETE"])
def session_cookie() -> Response:
    """Keep (POST, with the token header) or drop (DELETE) the partitioned login cookie."""
    if not request.headers.get("X-Requested-With"):
        return jsonify({"error": "Send the X-Requested-With header."}), 400  # type: ignore[return-value]
    response = jsonify({"stored": False})
    if request.method == "DELETE":
        response.delete_cookie(
            EMBED_COOKIE,
            path="/",
            secure=request.is_secure,
            samesite="None" if request.is_secure else "Lax",
            partitioned=request.is_secure,
        )
        return response
    token = request.headers.get(EMBED_TOKEN_HEADER, "")
    if user_for_embed_token(token) is None:
        return jsonify({"error": "Your login has expired; log in again."}), 401  # type: ignore[return-value]
    if request.is_secure:  # SameSite=None and Partitioned need Secure, so HTTPS only
        response.set_cookie(
            EMBED_COOKIE,
            token,
            max_age=EMBED_TOKEN_MAX_AGE,
            path="/",
            secure=True,
            httponly=True,
            samesite="None",
            partitioned=True,
        )
        response.set_data(b'{"stored":true}\n')
    return response


@bp.get("/embed/counts")
def counts() -> Response:
    """Published comments per article URL, for the count helper on a customer's page (CORS)."""
    key = request.args.get("site", "")
    site = db.session.scalar(sa.select(Site).where(Site.key == key)) if key else None
    if site is None:
        return jsonify({"error": "Unknown site."}), 404  # type: ignore[return-value]
    urls = request.args.getlist("url")[:100]
    try:
        found = service.comment_counts(site.key, urls)
    except service.ServiceError as error:
        return jsonify({"error": error.message}), error.status  # type: ignore[return-value]
    response = jsonify({"counts": found})
    origin = _parent_origin(site, request.headers.get("Origin"))
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response
