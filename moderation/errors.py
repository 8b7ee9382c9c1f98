"""Error responses in one place: JSON for the API and JSON clients, HTML pages for people."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Mapping
from html import escape
from typing import Any

import sqlalchemy as sa
from flask import Flask, Response, jsonify, render_template, request
from flask_limiter.errors import RateLimitExceeded
from jinja2 import TemplateNotFound
from werkzeug.exceptions import HTTPException, InternalServerError, TooManyRequests

from moderation.extensions import db, limiter

__all__ = [
    "DATABASE_ERRORS",
    "DATABASE_RETRY_AFTER",
    "ApiError",
    "register_error_handlers",
    "wants_json",
]

log = logging.getLogger(__name__)

# The database is down, restarting or out of connections: the request may well succeed in a
# moment, so clients hear 503 with Retry-After rather than a 500 (a bug of ours).
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    sa.exc.OperationalError,  # connection refused or lost, server shutting down, locked
    sa.exc.InterfaceError,  # a connection the driver already considers closed
    sa.exc.TimeoutError,  # no pooled connection free within DATABASE_POOL_TIMEOUT
)
DATABASE_RETRY_AFTER = 5  # seconds

# Short sentences for werkzeug's stock descriptions, which are long and written for developers.
MESSAGES = {
    400: "The request could not be understood.",
    401: "You need to sign in first.",
    403: "You are not allowed to do that.",
    404: "There is nothing at this address.",
    405: "This address does not accept that method.",
    409: "That conflicts with a change someone else made.",
    413: "The request is too large.",
    415: "The request body must be JSON.",
    422: "The request could not be processed.",
    429: "Too many requests; please slow down and try again shortly.",
    500: "Something went wrong on our side.",
    503: "The service is unavailable for a moment; please try again.",
}
TITLES = {
    400: "Bad request",
    401: "Sign in required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    429: "Too many requests",
    500: "Server error",
    503: "Unavailable",
}


class ApiError(Exception):
    """An error the JSON API answers with ``{"error": message, **extra}`` and ``status``."""

    def __init__(self, status: int, message: str, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = dict(extra or {})


def wants_json() -> bool:
    """Whether the current request should get errors as JSON rather than an HTML page."""
    # A client that sends JSON (POST /auth/sso, from a site's own script) reads JSON, even its
    # 429 from the rate limiter, whatever its fetch() put in Accept.
    if request.path.startswith("/api/") or request.is_json:
        return True
    # Browsers send */* too; HTML is listed first so that only a real preference picks JSON.
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def register_error_handlers(app: Flask) -> None:
    """Answer every HTTP error, and ApiError, in the format the client wants."""
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    for error in DATABASE_ERRORS:
        app.register_error_handler(error, _handle_database_error)


def _handle_api_error(error: ApiError) -> tuple[Response, int]:
    return jsonify({**error.extra, "error": error.message}), error.status


def _handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    if isinstance(error, InternalServerError) or status >= 500:
        # Never show an exception's text (which may hold internals) to the client.
        message = MESSAGES.get(status, MESSAGES[500])
    elif isinstance(error, TooManyRequests):
        # Flask-Limiter's description is the limit itself ("10 per 1 minute"), not a sentence.
        message = MESSAGES[429]
        if error.description and error.description != TooManyRequests.description:
            message += f" The limit is {error.description}."
    elif error.description and error.description != type(error).description:
        message = error.description  # a sentence passed to abort(); meant for the client
    else:
        message = MESSAGES.get(status, error.name + ".")

    if wants_json():
        response = jsonify({"error": message})
    else:
        response = Response(_render_page(status, error.name, message), mimetype="text/html")
    response.status_code = status
    # Keep what the exception says about the protocol, such as Allow on 405 or Retry-After.
    for name, value in error.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    if isinstance(error, RateLimitExceeded) and "Retry-After" not in response.headers:
        # Flask-Limiter's own headers are off (they put a Retry-After on every response of a
        # limited route, 201s included, overriding the flood limit's): say it on its 429s only.
        reset_at = error.limit.limit.get_expiry() if error.limit is not None else 60
        current = limiter.current_limit
        if current is not None:
            reset_at = current.reset_at - time.time()
        response.headers["Retry-After"] = str(max(1, math.ceil(reset_at)))
    return response


def _handle_database_error(error: Exception) -> Response:
    """503 with Retry-After when the database cannot be reached; the session is rolled back."""
    log.warning("Database unavailable, answered 503: %s", type(error).__name__, exc_info=error)
    # The transaction is lost either way; a dead connection goes back to the pool invalidated.
    with contextlib.suppress(Exception):
        db.session.rollback()
    message = MESSAGES[503]
    if wants_json():
        response = jsonify({"error": message})
    else:
        try:
            page = _render_page(503, TITLES[503], message)
        except sa.exc.SQLAlchemyError:
            # The layout asks who is signed in, which may need the database too.
            with contextlib.suppress(Exception):
                db.session.rollback()
            page = (
                f"<!doctype html><title>{TITLES[503]}</title><h1>{TITLES[503]}</h1>"
                f"<p>{escape(message)}</p>"
            )
        response = Response(page, mimetype="text/html")
    response.status_code = 503
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER)
    return response


def _render_page(status: int, name: str, message: str) -> str:
    context = {"status": status, "title": TITLES.get(status, name), "message": message}
    try:
        return render_template(f"errors/{status}.html", **context)
    except TemplateNotFound:
        return render_template("errors/layout.html", **context)
