"""Site single sign-on: a news site's own login vouches for a reader with a short-lived JWT.

The site signs ``{"sub", "email", "name", "exp", "iat"?, "aud": <site key>}`` with HS256 and its
``sso_secret``; the widget posts it to ``POST /auth/sso``. The reader becomes the user of the
identity ``sso:<site key>`` / ``sub``: the same ``sub`` on two sites is two people, and the
e-mail address is the site's word only, never a verified address for our own e-mail logins.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify, request
from joserfc import jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import OctKey

from auth.models import Identity, User
from auth.sessions import log_in
from moderation.extensions import csrf, db, limiter
from moderation.models import Site

__all__ = [
    "ALGORITHM",
    "LEEWAY_SECONDS",
    "MAX_LIFETIME_SECONDS",
    "InvalidSSOToken",
    "SSOClaims",
    "bp",
    "log_in_with_sso",
    "provider_for",
    "verify_sso_token",
]

ALGORITHM = "HS256"
LEEWAY_SECONDS = 30  # clock skew allowed between the site's servers and ours
MAX_LIFETIME_SECONDS = 10 * 60  # a sign-in token is for one hand-over, not a session
MAX_TOKEN_LENGTH = 4096
LATEST_NUMERIC_DATE = 253402300799  # 9999-12-31T23:59:59Z, the last second datetime holds
MAX_SUBJECT = 255  # the lengths of the Identity columns
MAX_EMAIL = 254
MAX_NAME = 100
SSO_RATE_LIMIT = "60/minute"

bp = Blueprint("auth_sso", __name__)


class InvalidSSOToken(Exception):
    """A sign-in token that is refused; the message says why, in a sentence."""


@dataclass(frozen=True)
class SSOClaims:
    """What a verified sign-in token says about the reader."""

    site_key: str
    subject: str
    email: str | None
    name: str | None
    expires_at: datetime
    issued_at: datetime | None = None


def provider_for(site: Site) -> str:
    """The Identity provider of ``site``'s single sign-on, ``sso:<site key>``."""
    return f"sso:{site.key}"


# ---------------------------------------------------------------------------------------------
# Verifying a token
# ---------------------------------------------------------------------------------------------


def _header_of(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, read without trusting it (to name the algorithm)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidSSOToken(
            "The sign-in token is malformed: a JWT has three dot-separated parts."
        )
    try:
        raw = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4))
        header = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidSSOToken("The sign-in token is malformed: its header is not JSON.") from None
    if not isinstance(header, dict):
        raise InvalidSSOToken("The sign-in token is malformed: its header is not a JSON object.")
    return header


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    # bool is an int in Python, but "exp": true is not a time. Nor is a moment before 1970 or
    # after 9999 (NaN and infinities fail the range too): datetime cannot hold it, and a JSON
    # integer of 400 digits cannot even become a float.
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= LATEST_NUMERIC_DATE
    ):
        raise InvalidSSOToken(f"The sign-in token's “{name}” claim must be a number of seconds.")
    return float(value)


def _text(claims: dict[str, Any], name: str, limit: int) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidSSOToken(f"The sign-in token's “{name}” claim must be a string.")
    value = " ".join(value.split())
    if len(value) > limit:
        raise InvalidSSOToken(
            f"The sign-in token's “{name}” claim is longer than {limit} characters."
        )
    return value or None


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _check_times(claims: dict[str, Any], now: float) -> tuple[float, float | None]:
    expires = _number(claims, "exp")
    if expires is None:
        raise InvalidSSOToken("The sign-in token has no expiry (“exp” claim); it must have one.")
    issued = _number(claims, "iat")
    not_before = _number(claims, "nbf")
    if now > expires + LEEWAY_SECONDS:
        raise InvalidSSOToken(
            f"The sign-in token expired at {_moment(expires).isoformat(timespec='seconds')}; "
            "ask the site for a new one."
        )
    if issued is not None and issued > now + LEEWAY_SECONDS:
        raise InvalidSSOToken("The sign-in token was issued in the future; check the clocks.")
    if not_before is not None and not_before > now + LEEWAY_SECONDS:
        raise InvalidSSOToken("The sign-in token is not valid yet (“nbf” is in the future).")
    if issued is not None and expires - issued > MAX_LIFETIME_SECONDS:
        raise InvalidSSOToken(
            f"The sign-in token lives longer than {MAX_LIFETIME_SECONDS // 60} minutes "
            "(from “iat” to “exp”); issue short-lived tokens."
        )
    # Without "iat" the lifetime is unknown, so bound what is left of it instead.
    if expires - now > MAX_LIFETIME_SECONDS + LEEWAY_SECONDS:
        raise InvalidSSOToken(
            f"The sign-in token expires more than {MAX_LIFETIME_SECONDS // 60} minutes from "
            "now; issue short-lived tokens."
        )
    return expires, issued


def _check_audience(claims: dict[str, Any], site: Site) -> None:
    audience = claims.get("aud")
    if audience is None:
        raise InvalidSSOToken(
            "The sign-in token has no audience (“aud” claim); set it to the site key."
        )
    audiences = audience if isinstance(audience, list) else [audience]
    if site.key not in audiences:
        raise InvalidSSOToken("The sign-in token was issued for another site (wrong “aud”).")


def verify_sso_token(site: Site, token: str, *, now: float | None = None) -> SSOClaims:
    """The claims of ``token`` if ``site`` signed it for itself and it is current; else raise."""
    if not site.sso_secret:
        raise InvalidSSOToken("This site has no single sign-on secret.")
    if not isinstance(token, str) or not token.strip():
        raise InvalidSSOToken("The sign-in token is missing.")
    token = token.strip()
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidSSOToken(f"The sign-in token is longer than {MAX_TOKEN_LENGTH} characters.")

    # Named before verifying, to say why a token is refused; the verification below is
    # pinned to HS256 whatever the header claims, so "none" or an RS256/HS256 swap fail there too.
    header = _header_of(token)
    algorithm = header.get("alg")
    if not isinstance(algorithm, str) or algorithm.lower() == "none":
        raise InvalidSSOToken("The sign-in token is not signed (alg “none”); it must use HS256.")
    if algorithm != ALGORITHM:
        raise InvalidSSOToken(
            f"The sign-in token is signed with {algorithm}; only {ALGORITHM} is accepted."
        )
    # RFC 7797's unencoded payload ("b64": false, listed in "crit") is another format, which
    # anything else reading the token (a proxy, a log) would decode differently: a JWT is not.
    if "b64" in header or "crit" in header:
        raise InvalidSSOToken(
            "The sign-in token uses JWS extensions (“crit”, “b64”); a plain JWT is expected."
        )

    try:
        decoded = jwt.decode(token, OctKey.import_key(site.sso_secret), algorithms=[ALGORITHM])
    except BadSignatureError:
        raise InvalidSSOToken(
            "The sign-in token's signature does not match this site's single sign-on secret."
        ) from None
    except JoseError as exc:
        raise InvalidSSOToken(
            f"The sign-in token is malformed ({exc.error or type(exc).__name__})."
        ) from None
    except (ValueError, TypeError):
        raise InvalidSSOToken("The sign-in token is malformed.") from None

    claims = decoded.claims
    expires, issued = _check_times(claims, time.time() if now is None else now)
    _check_audience(claims, site)
    subject = claims.get("sub")
    if isinstance(subject, int) and not isinstance(subject, bool):
        subject = str(subject)  # some sites number their users; RFC 7519 wants a string
    if not isinstance(subject, str) or not subject.strip():
        raise InvalidSSOToken("The sign-in token has no subject (“sub” claim): who is signing in?")
    if len(subject) > MAX_SUBJECT:
        raise InvalidSSOToken(f"The sign-in token's “sub” is longer than {MAX_SUBJECT} characters.")
    email = _text(claims, "email", MAX_EMAIL)
    return SSOClaims(
        site_key=site.key,
        subject=subject,
        email=email.lower() if email else None,
        name=_text(claims, "name", MAX_NAME),
        expires_at=_moment(expires),
        issued_at=_moment(issued) if issued is not None else None,
    )


# ---------------------------------------------------------------------------------------------
# Logging in
# ---------------------------------------------------------------------------------------------


def _find_identity(provider: str, subject: str) -> Identity | None:
    return db.session.scalar(
        sa.select(Identity).where(Identity.provider == provider, Identity.subject == subject)
    )


def _record(identity: Identity, claims: SSOClaims) -> None:
    # The site's word about the address, kept for moderators; never a verified address here.
    identity.email = claims.email
    identity.email_verified = False
    identity.display_name = claims.name
    if claims.name:
        identity.user.display_name = claims.name


def _identity_for(site: Site, claims: SSOClaims) -> Identity:
    """The identity of ``claims`` on ``site``, created with its user on first sign-in."""
    provider = provider_for(site)
    identity = _find_identity(provider, claims.subject)
    if identity is None:
        # No User.email: the address is unverified, and e-mail logins must not find this account.
        user = User(email=None, display_name=claims.name or f"Reader {claims.subject}"[:MAX_NAME])
        identity = Identity(user=user, provider=provider, subject=claims.subject)
        db.session.add(identity)
        try:
            db.session.flush()
        except sa.exc.IntegrityError:
            # The same reader's first sign-in in two tabs at once: the other request won.
            db.session.rollback()
            identity = _find_identity(provider, claims.subject)
            if identity is None:
                raise
    _record(identity, claims)
    return identity


def log_in_with_sso(site: Site, claims: SSOClaims) -> User:
    """Log the reader of verified ``claims`` in as ``site``'s SSO user; the user."""
    identity = _identity_for(site, claims)
    log_in(identity.user, identity)  # commits
    return identity.user


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), status


@bp.post("/auth/sso")
@csrf.exempt  # authenticated by the signed token; JSON only, which cross-site forms cannot send
@limiter.limit(SSO_RATE_LIMIT)
def sso_login() -> tuple[Response, int]:
    """Log a reader in with their site's signed token: ``{"site": KEY, "token": JWT}``."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return _error(400, 'Send a JSON object {"site": KEY, "token": JWT}.')
    key, token = data.get("site"), data.get("token")
    if not isinstance(key, str) or not key:
        return _error(400, "Give the site key as “site”.")
    if not isinstance(token, str) or not token:
        return _error(400, "Give the sign-in token as “token”.")
    site = db.session.scalar(sa.select(Site).where(Site.key == key))
    if site is None:
        return _error(404, f"There is no site with the key “{key}”.")
    if not site.sso_secret:
        return _error(403, "This site does not use single sign-on.")
    try:
        claims = verify_sso_token(site, token)
    except InvalidSSOToken as exc:
        return _error(400, str(exc))
    user = log_in_with_sso(site, claims)
    return jsonify({"user": {"id": user.id, "name": user.display_name, "site": site.key}}), 200
