"""Sign in with X (Twitter) or Facebook: OAuth 2.0 authorization code with PKCE, and
Facebook's data deletion callback.

Every provider URL comes from configuration (``OAUTH_*``), so tests and API moves change
settings, not code. Authlib's Flask client keeps the state and the PKCE verifier in the session.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeSerializer
from requests import RequestException

from auth import safe_next_url
from auth.models import Identity, User
from auth.sessions import log_in
from moderation.db import utcnow
from moderation.extensions import csrf, db
from moderation.models import Comment, Site

__all__ = ["PROVIDERS", "Provider", "ProviderProfile", "bp", "enabled_providers"]

bp = Blueprint("auth_oauth", __name__, url_prefix="/auth")

DELETED_USER_NAME = "deleted user"
EMAIL_STEP_KEY = "oauth_email_step"


@dataclass(frozen=True)
class Provider:
    """One OAuth provider: its settings prefix and how to read who the person is."""

    name: str
    label: str
    prefix: str
    token_auth_method: str

    def settings(self, key: str) -> Any:
        """``OAUTH_<PROVIDER>_<key>`` from the app's configuration."""
        return current_app.config.get(f"{self.prefix}_{key}")

    @property
    def enabled(self) -> bool:
        """Whether the site owner configured both the client id and the secret."""
        return bool(self.settings("CLIENT_ID") and self.settings("CLIENT_SECRET"))

    @property
    def endpoint(self) -> str:
        """The endpoint of the login route, for ``url_for``."""
        return "auth_oauth.login"


PROVIDERS = {
    "x": Provider("x", "X", "OAUTH_X", "client_secret_basic"),
    "facebook": Provider("facebook", "Facebook", "OAUTH_FACEBOOK", "client_secret_post"),
}


@dataclass(frozen=True)
class ProviderProfile:
    """Who the provider says the person is, in one shape for every provider."""

    subject: str
    display_name: str
    avatar_url: str | None
    email: str | None
    email_verified: bool
    raw: dict[str, Any]


class OAuthFailure(Exception):
    """A sign-in that cannot go on; the view shows ``message`` with ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def enabled_providers() -> list[Provider]:
    """The providers this installation has credentials for, in display order."""
    return [provider for provider in PROVIDERS.values() if provider.enabled]


@bp.app_context_processor
def inject_login_providers() -> dict[str, Any]:
    """``login_providers`` for the login template: buttons only for enabled providers."""
    return {"login_providers": enabled_providers()}


def _oauth_client(provider: Provider) -> Any:
    """Authlib's client for ``provider`` on the current app (registered on first use)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    # One registry per app, kept on the app: test apps never share clients or settings.
    oauth: OAuth = app.extensions.get("auth_oauth") or OAuth(app)
    app.extensions["auth_oauth"] = oauth
    client = oauth.create_client(provider.name)
    if client is None:
        scope = provider.settings("SCOPES")
        if provider.name == "x" and provider.settings("EMAIL"):
            scope += " users.email"
        client = oauth.register(
            provider.name,
            client_id=provider.settings("CLIENT_ID"),
            client_secret=provider.settings("CLIENT_SECRET"),
            authorize_url=provider.settings("AUTHORIZE_URL"),
            access_token_url=provider.settings("TOKEN_URL"),
            client_kwargs={
                "scope": scope,
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": provider.token_auth_method,
                "default_timeout": app.config.get("OAUTH_HTTP_TIMEOUT", 10),
            },
        )
    return client


def _provider_or_404(name: str) -> Provider:
    provider = PROVIDERS.get(name)
    if provider is None or not provider.enabled:
        abort(404)
    return provider


def site_refuses(provider: Provider, site_key: str | None) -> bool:
    """Whether the site the widget named (``?site=KEY``) does not offer ``provider``."""
    if not site_key:
        return False
    site = db.session.scalar(sa.select(Site).where(Site.key == site_key))
    if site is None:
        return False
    try:
        return not site.moderation_settings.allows_login(provider.name)
    except ValueError:
        return False  # unreadable settings: the site's staff see it elsewhere; nothing to refuse


@bp.get("/<provider_name>/login")
def login(provider_name: str) -> Response | tuple[str, int]:
    """Send the browser to the provider's consent page."""
    provider = _provider_or_404(provider_name)
    if site_refuses(provider, request.args.get("site")):
        message = f"This site does not offer signing in with {provider.label}."
        return render_template("auth/oauth_error.html", provider=provider, message=message), 403
    session[f"oauth_return:{provider.name}"] = {
        "next": safe_next_url(request.args.get("next")),
        "popup": request.args.get("popup") == "1",
    }
    redirect_uri = url_for("auth_oauth.callback", provider_name=provider.name, _external=True)
    return _oauth_client(provider).authorize_redirect(redirect_uri)


@bp.get("/<provider_name>/callback")
def callback(provider_name: str) -> Response | tuple[str, int]:
    """Finish the sign-in: exchange the code, read the profile, log the person in."""
    provider = _provider_or_404(provider_name)
    destination = session.pop(f"oauth_return:{provider.name}", None) or {}
    try:
        token = _exchange_code(provider)
        profile = fetch_profile(provider, token)
        _user, email_step = sign_in(provider, profile)
    except OAuthFailure as failure:
        return (
            render_template("auth/oauth_error.html", provider=provider, message=failure.message),
            failure.status,
        )
    next_url = destination.get("next")
    if destination.get("popup") and _has_route("/auth/popup-done"):
        next_url = "/auth/popup-done"
    if email_step is not None:
        session[EMAIL_STEP_KEY] = {**email_step, "next": next_url}
        return redirect(url_for("auth_oauth.email"))
    # Checked again on the way out: the session could hold a value from an older release.
    return redirect(safe_next_url(next_url))


def _has_route(path: str) -> bool:
    return any(rule.rule == path for rule in current_app.url_map.iter_rules())


def _exchange_code(provider: Provider) -> dict[str, Any]:
    """The provider's token for this callback, or an OAuthFailure saying what went wrong."""
    if request.args.get("error"):
        if request.args["error"] == "access_denied":
            raise OAuthFailure(f"You cancelled signing in with {provider.label}.")
        raise OAuthFailure(f"{provider.label} could not sign you in; please try again.")
    client = _oauth_client(provider)
    try:
        return client.authorize_access_token()
    except AuthlibBaseError as exc:
        # Mismatching state (a forged or stale callback), an expired or reused code, a PKCE
        # verifier the provider rejects: all mean "start again", none is our fault.
        current_app.logger.info("OAuth %s token exchange failed: %s", provider.name, exc)
        raise OAuthFailure(
            f"Signing in with {provider.label} did not complete (the link may have expired). "
            "Please try again."
        ) from exc
    except (RequestException, ValueError) as exc:
        current_app.logger.warning("OAuth %s token endpoint unusable: %s", provider.name, exc)
        raise OAuthFailure(f"{provider.label} is not answering; please try again later.") from exc


def appsecret_proof(access_token: str, app_secret: str) -> str:
    """Facebook's ``appsecret_proof``: HMAC-SHA256 of the access token with the app secret."""
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


def fetch_profile(provider: Provider, token: dict[str, Any]) -> ProviderProfile:
    """Read who the token belongs to: one profile call per login, which also proves the token."""
    client = _oauth_client(provider)
    if provider.name == "x":
        fields = "profile_image_url" + (",confirmed_email" if provider.settings("EMAIL") else "")
        params = {"user.fields": fields}
    else:
        params = {
            "fields": "id,name,email,picture",
            "appsecret_proof": appsecret_proof(
                token["access_token"], provider.settings("CLIENT_SECRET")
            ),
        }
    try:
        response = client.get(provider.settings("PROFILE_URL"), params=params, token=token)
        response.raise_for_status()
        raw = response.json()
        return _parse_profile(provider, raw)
    except (RequestException, ValueError, KeyError, TypeError, AuthlibBaseError) as exc:
        current_app.logger.warning("OAuth %s profile read failed: %s", provider.name, exc)
        raise OAuthFailure(
            f"{provider.label} did not tell us who you are; please try again later.", 502
        ) from exc


def _parse_profile(provider: Provider, raw: dict[str, Any]) -> ProviderProfile:
    if provider.name == "x":
        data = raw["data"]
        email = data.get("confirmed_email") or None
        return ProviderProfile(
            subject=str(data["id"]),
            display_name=(data.get("name") or data.get("username") or "X user")[:100],
            avatar_url=data.get("profile_image_url"),
            email=email.lower() if email else None,
            # X only returns an address the account holder confirmed.
            email_verified=email is not None,
            raw=raw,
        )
    email = raw.get("email") or None
    picture = (raw.get("picture") or {}).get("data") or {}
    return ProviderProfile(
        subject=str(raw["id"]),
        display_name=(raw.get("name") or "Facebook user")[:100],
        avatar_url=picture.get("url"),
        email=email.lower() if email else None,
        # Facebook returns only a confirmed primary address (docs: none if not "valid").
        email_verified=email is not None,
        raw=raw,
    )


def profile_is_fresh(identity: Identity) -> bool:
    """Whether ``identity.profile`` was read recently enough to use without a new read."""
    fetched = identity.profile.get("fetched_at") if identity.profile else None
    if not fetched:
        return False
    max_age = timedelta(seconds=current_app.config.get("OAUTH_PROFILE_MAX_AGE", 86400))
    return utcnow() - datetime.fromisoformat(fetched) < max_age


def sign_in(provider: Provider, profile: ProviderProfile) -> tuple[User, dict[str, Any] | None]:
    """Log in (or link) the person behind ``profile``; returns the user and any e-mail step.

    The e-mail step is ``{"reason": "missing"}`` when the account has no address yet, or
    ``{"reason": "existing", "email": ...}`` when another account already has the address the
    provider gave: accounts are never merged on an address alone.
    """
    identity = db.session.scalar(
        sa.select(Identity).where(
            Identity.provider == provider.name, Identity.subject == profile.subject
        )
    )
    signed_in = current_user if current_user.is_authenticated else None
    if identity is not None and signed_in is not None and identity.user_id != signed_in.id:
        raise OAuthFailure(
            f"This {provider.label} account is already linked to another account here.", 409
        )
    email_step: dict[str, Any] | None = None
    if identity is None:
        user = signed_in
        if user is None:
            user = User(display_name=profile.display_name, avatar_url=profile.avatar_url)
            db.session.add(user)
        identity = Identity(user=user, provider=provider.name, subject=profile.subject)
        db.session.add(identity)
        if profile.email and profile.email_verified and user.email is None:
            owner = db.session.scalar(sa.select(User).where(User.email == profile.email))
            if owner is None:
                user.email = profile.email
                user.email_verified = True
            elif owner is not user:
                email_step = {"reason": "existing", "email": profile.email}
    user = identity.user
    _cache_profile(identity, profile)
    if user.avatar_url is None:
        user.avatar_url = profile.avatar_url
    if email_step is None and user.email is None:
        email_step = {"reason": "missing"}
    if signed_in is not None:
        # Linking keeps the current session; nothing about who is logged in changes.
        identity.last_login_at = utcnow()
        db.session.commit()
    else:
        log_in(user, identity)
    return user, email_step


def _cache_profile(identity: Identity, profile: ProviderProfile) -> None:
    identity.display_name = profile.display_name
    identity.email = profile.email
    identity.email_verified = profile.email_verified
    # Reassigned, not mutated, so the JSON column notices the change.
    identity.profile = {"fetched_at": utcnow().isoformat(), "data": profile.raw}


@bp.route("/oauth/email", methods=["GET", "POST"])
def email() -> Response | str | tuple[str, int]:
    """Ask a newly signed-in person for an address (or offer to link the account that has it)."""
    if not current_user.is_authenticated:
        abort(401)
    step = session.get(EMAIL_STEP_KEY) or {"reason": "missing"}
    next_url = safe_next_url(step.get("next"))
    if request.method == "GET":
        return render_template("auth/oauth_email.html", step=step, next_url=next_url)
    address = (request.form.get("email") or "").strip().lower()
    if step.get("reason") == "existing":
        address = step["email"]
    if "@" not in address or len(address) > 254:
        return (
            render_template(
                "auth/oauth_email.html", step=step, next_url=next_url, error="Enter an address."
            ),
            400,
        )
    # Imported when used: the e-mail login module is another blueprint with its own imports.
    from auth.email_login import TooManyLinks, send_login_link
    from auth.mail import MailError

    try:
        # The address counts as verified only once the link in this message is clicked.
        send_login_link(
            address,
            purpose="verify",
            user=current_user._get_current_object(),  # type: ignore[attr-defined]
            next_url=next_url,
        )
    except (TooManyLinks, MailError):
        error = "We could not send a link just now; please try again later."
        return (
            render_template("auth/oauth_email.html", step=step, next_url=next_url, error=error),
            503,
        )
    session.pop(EMAIL_STEP_KEY, None)
    return render_template("auth/oauth_email.html", step=step, next_url=next_url, sent=address)


# Facebook data deletion ---------------------------------------------------------------------


def parse_signed_request(signed_request: str, app_secret: str) -> dict[str, Any]:
    """The payload of Facebook's ``signed_request``; ValueError unless correctly signed."""
    signature_part, _, payload_part = signed_request.partition(".")
    if not signature_part or not payload_part:
        raise ValueError("malformed signed_request")
    try:
        signature = _b64url_decode(signature_part)
        payload = json.loads(_b64url_decode(payload_part))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("malformed signed_request") from exc
    expected = hmac.new(app_secret.encode(), payload_part.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise ValueError("bad signature")
    if not isinstance(payload, dict) or str(payload.get("algorithm", "")).upper() != (
        "HMAC-SHA256"
    ):
        raise ValueError("unsupported algorithm")
    if not payload.get("user_id"):
        raise ValueError("no user_id")
    return payload


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _deletion_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="facebook-data-deletion")


def delete_facebook_data(facebook_user_id: str) -> bool:
    """Remove the Facebook identity; its user too if it was their only way in. True if found."""
    identity = db.session.scalar(
        sa.select(Identity).where(
            Identity.provider == "facebook", Identity.subject == facebook_user_id
        )
    )
    if identity is None:
        return False
    user = identity.user
    others = [other for other in user.identities if other.id != identity.id]
    if others:
        db.session.delete(identity)
        picture = ((identity.profile or {}).get("data") or {}).get("picture") or {}
        if user.avatar_url and user.avatar_url == (picture.get("data") or {}).get("url"):
            user.avatar_url = None
    else:
        # Comments stay, credited to nobody: they are part of public conversations.
        db.session.execute(
            sa.update(Comment)
            .where(Comment.author_id == user.id)
            .values(author_id=None, author_name=DELETED_USER_NAME)
        )
        db.session.delete(user)  # its identities go with it
    db.session.commit()
    return True


@bp.post("/facebook/data-deletion")
@csrf.exempt
def facebook_data_deletion() -> tuple[Response, int] | Response:
    """Facebook's data deletion callback: verify, delete, answer with a status URL and code."""
    secret = current_app.config.get("OAUTH_FACEBOOK_CLIENT_SECRET")
    if not secret:
        abort(404)
    try:
        payload = parse_signed_request(request.form.get("signed_request", ""), secret)
    except ValueError:
        return jsonify(error="invalid signed_request"), 400
    found = delete_facebook_data(str(payload["user_id"]))
    # The code carries the outcome, signed: no record of the person has to be kept for it.
    code = _deletion_serializer().dumps({"at": utcnow().isoformat(), "found": found})
    status_url = url_for("auth_oauth.facebook_deletion_status", code=code, _external=True)
    return jsonify(url=status_url, confirmation_code=code)


@bp.get("/facebook/data-deletion/<code>")
def facebook_deletion_status(code: str) -> Response:
    """The status of one deletion request, for the person who asked Facebook for it."""
    try:
        outcome = _deletion_serializer().loads(code)
    except BadSignature:
        abort(404)
    status = "deleted" if outcome.get("found") else "no data held"
    return jsonify(confirmation_code=code, status=status, completed_at=outcome.get("at"))
