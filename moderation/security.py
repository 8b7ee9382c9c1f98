"""Browser-facing hardening: security headers, per-request CSP nonces and request input guards.

Every HTML page gets a strict Content-Security-Policy whose ``script-src``/``style-src`` name a
fresh nonce (templates call ``csp_nonce()``); a view that sets its own policy (the embedded
thread, which frames on the site's origins) keeps it. Every response gets ``nosniff``, a referrer
policy and a permissions policy; HSTS only on HTTPS. JSON bodies are refused before any parser
sees them when they are nested too deeply, and text holding NUL characters or unpaired
surrogates (which no database can store) is refused wherever it arrives.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, abort, json, request, session
from werkzeug.datastructures import MultiDict

__all__ = [
    "MAX_JSON_DEPTH",
    "PERMISSIONS_POLICY",
    "allow_sources",
    "clean_name",
    "content_security_policy",
    "csp_nonce",
    "init_app",
    "json_depth",
    "renew_nonce",
]

MAX_JSON_DEPTH = 32  # our deepest request body is 3 levels; 32 is generous and parser-safe
MAX_COMBINING_MARKS = 4  # per letter: enough for any script, too few for "Zalgo" text
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "browsing-topics",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "hid",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "serial",
        "usb",
    )
)
EVERY_RESPONSE = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Permissions-Policy", PERMISSIONS_POLICY),
)
NONCE_KEY = "moderation.csp_nonce"  # in the WSGI environ of the request
SOURCES_KEY = "moderation.csp_sources"
HSTS = "max-age=31536000; includeSubDomains"
# Pages that take part in the login popup (opened by the cross-origin comment frame) and the
# pages a newspaper frames or opens: a Cross-Origin-Opener-Policy there would cut the popup off
# from its opener (window.opener becomes null), so only the staff's own pages send one.
NO_OPENER_POLICY_BLUEPRINTS = frozenset(
    {"auth_email_login", "auth_oauth", "auth_sso", "embed", "site"}
)
# Pages of signed-in users are not stored anywhere; the widget's pages keep their own caching.
OWN_CACHE_BLUEPRINTS = frozenset({"embed"})
FORM_MIMETYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})

_SOURCE = re.compile(r"(?:https?://[A-Za-z0-9.-]+(?::\d{1,5})?|https:|data:)")
# A JSON string (DOTALL: an escaped line break is invalid JSON, which the parser refuses).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_OPENERS = frozenset(b"[{")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_COMBINING = frozenset({"Mn", "Me"})
_NONCE_SOURCE = re.compile(r"'nonce-([A-Za-z0-9_-]+)'")


def init_app(app: Flask) -> None:
    """Install the nonce, the header hook and the request guards on ``app``."""
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.before_request(_refuse_unsafe_input)
    app.after_request(_add_security_headers)


# --- nonces and the policy ------------------------------------------------------------------------


def csp_nonce() -> str:
    """This request's CSP nonce, made on first use (a fresh one for every request)."""
    # Kept on the request, not in g: an app context (and g) can outlive several requests.
    nonce = request.environ.get(NONCE_KEY)
    if nonce is None:
        nonce = request.environ[NONCE_KEY] = secrets.token_urlsafe(16)
    return str(nonce)


def allow_sources(directive: str, *sources: str) -> None:
    """Let this response's default policy load ``sources`` under ``directive`` too."""
    extra: dict[str, list[str]] = request.environ.setdefault(SOURCES_KEY, {})
    for source in sources:
        # A source is spliced into a header: anything but a plain origin or scheme is dropped.
        if _SOURCE.fullmatch(source) and source not in extra.setdefault(directive, []):
            extra[directive].append(source)


def content_security_policy(
    nonce: str, *, frame_ancestors: str = "'none'", extra: dict[str, list[str]] | None = None
) -> str:
    """The strict policy: own files and ``nonce`` only; no inline code, no eval, no framing."""
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", f"'nonce-{nonce}'"],
        "style-src": ["'self'", f"'nonce-{nonce}'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-src": ["'self'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "object-src": ["'none'"],
        "frame-ancestors": [frame_ancestors],
    }
    for directive, sources in (extra or {}).items():
        directives.setdefault(directive, ["'self'"]).extend(sources)
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


def _add_security_headers(response: Response) -> Response:
    headers = response.headers
    for name, value in EVERY_RESPONSE:
        headers.setdefault(name, value)
    if request.environ.get("wsgi.url_scheme") == "https":  # request.is_secure, as ProxyFix sets
        # Only over HTTPS: on plain HTTP the header means nothing and would pin a dev host.
        headers.setdefault("Strict-Transport-Security", HSTS)
    if not (headers.get("Content-Type") or "").startswith("text/html"):
        return response
    if "Content-Security-Policy" not in headers:
        headers["Content-Security-Policy"] = content_security_policy(
            csp_nonce(), extra=request.environ.get(SOURCES_KEY)
        )
    if "frame-ancestors 'none'" in headers["Content-Security-Policy"]:
        # The same refusal for browsers that predate frame-ancestors; framable pages (the
        # comment frame) rely on their CSP alone, since DENY would override its allow-list.
        headers.setdefault("X-Frame-Options", "DENY")
    blueprint = request.blueprint or ""
    if blueprint not in NO_OPENER_POLICY_BLUEPRINTS:
        # Allow-popups: the desk and console open articles and previews in new windows.
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin-allow-popups")
    if blueprint not in OWN_CACHE_BLUEPRINTS and "Cache-Control" not in headers and _signed_in():
        # A shared computer's back button or a proxy must not keep a signed-in page.
        headers["Cache-Control"] = "no-store"
    return response


def _signed_in() -> bool:
    # The session's user id, not current_user: no database query (which may be the very thing
    # failing on a 503 page), and a stale login is still a personal page not to be kept.
    return session.get("_user_id") is not None


# --- request guards ---------------------------------------------------------------------------


def json_depth(raw: bytes, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply the arrays and objects of the JSON text ``raw`` nest (stops past ``limit``)."""
    # Strings removed first (brackets in text do not nest), then everything but brackets.
    brackets = _JSON_STRING.sub(b'""', raw).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in _OPENERS:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def _refuse_unsafe_input() -> None:
    """400 for a JSON body nested too deeply, and for NUL or unpaired surrogates in any text."""
    # Read off the WSGI environ: this runs before every request, most of them plain GETs.
    environ = request.environ
    if "\x00" in environ.get("PATH_INFO", ""):
        abort(400, "The address must not contain NUL characters.")
    # werkzeug decodes the query as UTF-8 with replacement characters, so no surrogate can
    # come out of it; a NUL only as "%00" (or raw).
    query = environ.get("QUERY_STRING", "")
    if "%00" in query or "\x00" in query:
        _refuse_unstorable(_values(request.args))
    if not environ.get("CONTENT_TYPE"):
        return  # no body to look at (GET, HEAD, DELETE without one)
    if request.mimetype in FORM_MIMETYPES:
        _refuse_unstorable(_values(request.form))
    if not request.is_json:
        return
    raw = request.get_data(cache=True)  # 413 past MAX_CONTENT_LENGTH; the view reads the cache
    # Python's parser recurses once per level: 100,000 "[" would end in a RecursionError (500).
    if json_depth(raw) > MAX_JSON_DEPTH:
        abort(400, f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.")
    try:
        document = json.loads(raw)
    except ValueError:
        return  # not JSON: the endpoint's own parser says so in its own words
    _refuse_unstorable(_strings_in(document))


def _refuse_unstorable(texts: Iterable[str]) -> None:
    for text in texts:
        if _UNSTORABLE.search(text):
            # PostgreSQL refuses NUL in text, and UTF-8 cannot encode a lone surrogate (JSON
            # "\ud800"): stored, either would be a 500; no real text needs them.
            abort(400, "Text must not contain NUL characters or unpaired surrogates.")


def _values(fields: MultiDict[str, str]) -> Iterable[str]:
    return (value for values in fields.listvalues() for value in values)


def _strings_in(document: Any) -> Iterable[str]:
    """Every key and string value in a parsed JSON document (depth already bounded)."""
    if isinstance(document, str):
        yield document
    elif isinstance(document, list):
        for item in document:
            yield from _strings_in(item)
    elif isinstance(document, dict):
        for key, value in document.items():
            yield key
            yield from _strings_in(value)


# --- names shown to other people ----------------------------------------------------------------


def clean_name(raw: str) -> str:
    """A display name others can trust: no bidi or invisible characters, no Zalgo, one line."""
    text = unicodedata.normalize("NFC", raw)
    kept: list[str] = []
    marks = 0
    for char in text:
        category = unicodedata.category(char)
        # Cf: bidi overrides (U+202E would show "rotaredoM" as "Moderator"), zero-width
        # characters that make two names look alike; Cc/Cs: controls, NUL, lone surrogates.
        if category in ("Cf", "Cc", "Cs"):
            if char in "\t\n\r":
                kept.append(" ")
            continue
        if category in _COMBINING:
            marks += 1
            if marks > MAX_COMBINING_MARKS:
                continue
        else:
            marks = 0
        kept.append(char)
    return " ".join("".join(kept).split())


# --- cached pages ---------------------------------------------------------------------------------


def renew_nonce(response: Response) -> Response:
    """A stored (cached) page and its policy moved to this request's nonce, never reusing one."""
    policy = response.headers.get("Content-Security-Policy", "")
    match = _NONCE_SOURCE.search(policy)
    if match is None or match.group(1) == csp_nonce():
        return response
    old, new = match.group(1), csp_nonce()
    response.headers["Content-Security-Policy"] = policy.replace(f"'nonce-{old}'", f"'nonce-{new}'")
    # Only our own attributes: comment HTML is sanitised and never carries a nonce attribute.
    body = response.get_data(as_text=True)
    response.set_data(body.replace(f'nonce="{old}"', f'nonce="{new}"'))
    return response
