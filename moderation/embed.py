"""The embeddable widget: ``/embed.js``, the thread page inside its iframe, and its login hand-off.

A customer's page loads ``/embed.js`` from this service; it frames ``/embed/thread`` (served
from here, so its scripts talk to the API same-origin). The iframe cannot rely on cookies: a
third-party frame does not get the service's first-party session (Lax on HTTP, partitioned on
HTTPS). A login therefore runs in a first-party popup that ends on ``/embed/login-done``, which
hands the frame a signed, expiring *embed token*; the frame sends it as ``X-Embed-Token``.
"""

from __future__ import annotations

import functools
import hashlib
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
from moderation import cache, security, service
from moderation.extensions import csrf, db, limiter
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


# --- the frame's own assets -------------------------------------------------------------------


@bp.app_template_global("embed_static")
def embed_static(filename: str) -> str:
    """The URL of a widget asset named by its content's digest, so browsers keep it a year."""
    return url_for("static", filename=filename, v=_asset_digest(filename))


def _asset_digest(filename: str) -> str:
    path = Path(current_app.static_folder or "static") / filename
    stat = path.stat()
    return _digest_of(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _digest_of(path: str, mtime_ns: int, size: int) -> str:
    """The first 12 hex digits of the file's SHA-256 (cached while its mtime and size hold)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


@bp.after_app_request
def cache_fingerprinted_assets(response: Response) -> Response:
    """A static file asked for under its current digest never changes: cache it for a year."""
    version = request.args.get("v") if request.endpoint == "static" else None
    if version and response.status_code in (200, 304):
        filename = (request.view_args or {}).get("filename", "")
        try:
            current = _asset_digest(filename)
        except OSError:
            return response
        if version == current:  # an old digest gets the default revalidation
            response.cache_control.no_cache = None
            response.cache_control.public = True
            response.cache_control.max_age = 365 * 24 * 3600
            response.cache_control.immutable = True
    return response


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
    """The CSP ``frame-ancestors`` source list: the site's origins and this service, or none."""
    # 'self' lets the console show a live preview of the widget (docs/console.md). Only this
    # service's own pages live on its origin, so it adds no page that could clickjack readers.
    return " ".join([*site.origins, "'self'"]) if site.origins else "'none'"


def _csp(site: Site | None) -> str:
    ancestors = frame_ancestors(site) if site is not None else "'none'"
    return security.content_security_policy(security.csp_nonce(), frame_ancestors=ancestors)


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
    """The comments of one article, rendered for the widget's iframe (cached: moderation.cache)."""
    args = request.args
    try:
        canonical = service.canonical_url(args["url"]) if args.get("site") else None
    except (KeyError, service.ServiceError):
        canonical = None
    if canonical is None:
        return _thread_page()  # an error page, not worth caching
    # The page is the same for every reader (who they are is asked for by its script), so it
    # varies only with the request's parameters.
    variant = [args.get(name, "")[:500] for name in ("sort", "theme", "lang", "origin", "title")]
    stored = cache.cached(
        "embed-thread",
        args["site"],
        [canonical],
        variant,
        lambda: _stored_response(_thread_page()),
        keep=lambda answer: answer["status"] == 200,
    )
    return security.renew_nonce(
        Response(stored["body"], status=stored["status"], headers=stored["headers"])
    )


def _stored_response(response: Response) -> dict[str, Any]:
    """``response`` as plain values for the cache."""
    return {
        "status": response.status_code,
        "headers": [[name, value] for name, value in response.headers.items()],
        "body": response.get_data(as_text=True),
    }


def _thread_page() -> Response:
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
            closed=bool(page.thread is not None and service.thread_closed(page.thread, settings)),
            theme=theme,
            sort=sort,
            lang=_language(request.args.get("lang", "")),
            parent_origin=_parent_origin(site, request.args.get("origin")) or "",
            allow_guests=settings.allow_guests,
            edit_minutes=settings.edit_minutes,
            # The site's own choice among the providers this server offers (settings).
            email_login=settings.allows_login("email"),
            providers=[p for p in enabled_providers() if settings.allows_login(p.name)],
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
        # Which of them are the reader's own (Edit/Delete): the cached page names no authors.
        answer["mine"] = sorted(_own_ids(user, ids))
        answer["held"] = [_held_json(c) for c in _own_held(user, request.args)]
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


def _own_ids(user: User, ids: list[int]) -> set[int]:
    """Which of the comments ``ids`` ``user`` wrote."""
    if not ids:
        return set()
    return set(
        db.session.scalars(
            sa.select(Comment.id).where(Comment.id.in_(ids), Comment.author_id == user.id)
        )
    )


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


def _partitioned_cookie_allowed() -> bool:
    """Whether browsers take a Secure cookie here: on HTTPS, and on loopback (a trustworthy origin).

    SameSite=None and Partitioned need Secure. Browsers accept Secure cookies from
    ``http://localhost`` and ``http://127.0.0.1`` too, so the demo and the browser tests use the
    same path as production instead of a weaker one.
    """
    if request.is_secure:
        return True
    host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
    return host in ("localhost", "127.0.0.1", "[::1]")


@bp.route("/embed/session", methods=["POST", "DELETE"])
@csrf.exempt  # needs X-Requested-With, which a cross-site form cannot send (CSRF said 400)
def session_cookie() -> Response:
    """Keep (POST, with the token header) or drop (DELETE) the partitioned login cookie."""
    if not request.headers.get("X-Requested-With"):
        return jsonify({"error": "Send the X-Requested-With header."}), 400  # type: ignore[return-value]
    response = jsonify({"stored": False})
    if request.method == "DELETE":
        secure = _partitioned_cookie_allowed()
        response.delete_cookie(
            EMBED_COOKIE,
            path="/",
            secure=secure,
            samesite="None" if secure else "Lax",
            partitioned=secure,
        )
        return response
    token = request.headers.get(EMBED_TOKEN_HEADER, "")
    if user_for_embed_token(token) is None:
        return jsonify({"error": "Your login has expired; log in again."}), 401  # type: ignore[return-value]
    if _partitioned_cookie_allowed():
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
    urls = request.args.getlist("url")[:100]
    answer = cache.cached(
        "embed-counts",
        key,
        _canonical_urls(urls),
        [urls, request.headers.get("Origin", "")],
        lambda: _counts_answer(key, urls),
        keep=lambda answer: answer["status"] == 200,
    )
    if answer["status"] != 200:
        return jsonify({"error": answer["error"]}), answer["status"]  # type: ignore[return-value]
    response = jsonify({"counts": answer["counts"]})
    origin = answer["origin"]
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response


def _canonical_urls(urls: list[str]) -> list[str]:
    """The canonical forms of the valid ``urls`` (the articles a count answer depends on)."""
    found = []
    for url in urls:
        try:
            found.append(service.canonical_url(url))
        except service.ServiceError:
            continue
    return found


def _counts_answer(key: str, urls: list[str]) -> dict[str, Any]:
    """The count helper's answer as plain values: status, counts or error, allowed origin."""
    site = db.session.scalar(sa.select(Site).where(Site.key == key)) if key else None
    if site is None:
        return {"status": 404, "error": "Unknown site."}
    try:
        found = service.comment_counts(site.key, urls)
    except service.ServiceError as error:
        return {"status": error.status, "error": error.message}
    origin = _parent_origin(site, request.headers.get("Origin"))
    return {"status": 200, "counts": found, "origin": origin}
