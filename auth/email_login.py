"""Logging in with an e-mail link (and logging out): the classic comment-box login."""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.exceptions import TooManyRequests
from wtforms import EmailField, HiddenField
from wtforms.validators import DataRequired, Length, Regexp

from auth import safe_next_url
from auth.mail import MailError, send_mail
from auth.models import Identity, LoginLink, User
from auth.sessions import log_in, log_out, log_out_everywhere
from moderation.db import utcnow
from moderation.extensions import db, limiter

__all__ = [
    "BAD_LINKS_PER_HOUR",
    "LINKS_PER_ADDRESS_PER_HOUR",
    "LINK_LIFETIME",
    "EmailInUse",
    "TooManyLinks",
    "bp",
    "normalise_email",
    "safe_next_url",
    "send_login_link",
]

bp = Blueprint("auth_email_login", __name__, url_prefix="/auth")

LINK_LIFETIME = timedelta(minutes=15)
LINKS_PER_ADDRESS_PER_HOUR = 5
# Wrong, used or expired link tokens one client address may try (per hour) before a 429. A
# token has 256 random bits, so this is not what stops guessing; it stops the hammering.
BAD_LINKS_PER_HOUR = "20/hour"
EMAIL_PROVIDER = "email"
PURPOSES = ("login", "verify")
# Deliberately loose: the link itself proves the address works.
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


class TooManyLinks(Exception):
    """Too many links went to one address in the last hour; retry after ``retry_after`` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many login links; try again in {retry_after} seconds.")
        self.retry_after = retry_after


class EmailInUse(Exception):
    """A verify link names an address that already belongs to another account."""


class EmailLoginForm(FlaskForm):
    """The e-mail box of the login page."""

    email = EmailField(
        "E-mail address",
        validators=[
            DataRequired(message="Enter your e-mail address."),
            Length(max=254),
            Regexp(EMAIL_PATTERN, message="Enter an e-mail address like name@example.org."),
        ],
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
    )
    next = HiddenField()
    popup = HiddenField()


def normalise_email(address: str) -> str:
    """The form of ``address`` used as the e-mail identity's subject: trimmed, lower-cased."""
    return address.strip().lower()


def hash_token(token: str) -> str:
    """The stored form of a link token: its SHA-256 in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def send_login_link(
    email: str, purpose: str = "login", user: User | None = None, next_url: str | None = None
) -> None:
    """Mail ``email`` a single-use link valid 15 minutes that logs in (or verifies for ``user``).

    Raises TooManyLinks when the address had its hourly share, MailError when sending fails.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, not {purpose!r}")
    if purpose == "verify" and user is None:
        raise ValueError("a verify link needs the user whose address it confirms")
    address = normalise_email(email)
    now = utcnow()
    _check_address_limit(address)
    _supersede_links(address, purpose, now)

    token = secrets.token_urlsafe(32)
    db.session.add(
        LoginLink(
            email=address,
            token_hash=hash_token(token),
            purpose=purpose,
            user_id=user.id if purpose == "verify" and user is not None else None,
            next_url=safe_next_url(next_url) if next_url else None,
            created_at=now,
            expires_at=now + LINK_LIFETIME,
        )
    )
    db.session.commit()

    context = {
        "link": url_for("auth_email_login.confirm", token=token, _external=True),
        "minutes": int(LINK_LIFETIME.total_seconds() // 60),
        "purpose": purpose,
    }
    subject = "Confirm your e-mail address" if purpose == "verify" else "Your login link"
    send_mail(
        address,
        subject,
        render_template("emails/login_link.txt", **context),
        render_template("emails/login_link.html", **context),
    )


def _check_address_limit(address: str) -> None:
    hour_ago = utcnow() - timedelta(hours=1)
    # Old rows of this address are only kept for counting; drop those past the window.
    db.session.execute(
        sa.delete(LoginLink).where(LoginLink.email == address, LoginLink.created_at < hour_ago)
    )
    recent = list(
        db.session.scalars(
            sa.select(LoginLink.created_at)
            .where(LoginLink.email == address, LoginLink.created_at >= hour_ago)
            .order_by(LoginLink.created_at)
        )
    )
    if len(recent) >= LINKS_PER_ADDRESS_PER_HOUR:
        db.session.commit()
        oldest = recent[-LINKS_PER_ADDRESS_PER_HOUR]
        wait = (oldest - hour_ago).total_seconds()
        raise TooManyLinks(max(1, math.ceil(wait)))


def _supersede_links(address: str, purpose: str, now: datetime) -> None:
    """Void the address's unused links of ``purpose``: only the newest mail's link works.

    A link forwarded or left in an old mail stops working once a new one is asked for (as in
    Coral); the rows stay, marked used, because the hourly limit counts them.
    """
    db.session.execute(
        sa.update(LoginLink)
        .where(
            LoginLink.email == address,
            LoginLink.purpose == purpose,
            LoginLink.used_at.is_(None),
            LoginLink.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )


def _usable_link(token: str) -> LoginLink | None:
    return db.session.scalar(
        sa.select(LoginLink).where(
            LoginLink.token_hash == hash_token(token),
            LoginLink.used_at.is_(None),
            LoginLink.expires_at > utcnow(),
        )
    )


def _claim_link(token: str) -> LoginLink | None:
    """Mark the link used, in the caller's transaction; None unless this call claimed it."""
    now = utcnow()
    # One conditional UPDATE: of two requests racing with the same link, exactly one wins.
    result = db.session.execute(
        sa.update(LoginLink)
        .where(
            LoginLink.token_hash == hash_token(token),
            LoginLink.used_at.is_(None),
            LoginLink.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    link = db.session.scalar(sa.select(LoginLink).where(LoginLink.token_hash == hash_token(token)))
    if link is not None:
        db.session.refresh(link)
    return link


def _email_identity(address: str) -> Identity | None:
    return db.session.scalar(
        sa.select(Identity).where(Identity.provider == EMAIL_PROVIDER, Identity.subject == address)
    )


def _user_with_email(address: str) -> User | None:
    return db.session.scalar(sa.select(User).where(sa.func.lower(User.email) == address))


def _login_user_for(address: str) -> tuple[User, Identity]:
    """The user the address logs in, created on first use, and their e-mail identity."""
    identity = _email_identity(address)
    if identity is not None:
        identity.email_verified = True
        return identity.user, identity
    user = _user_with_email(address)
    if user is None:
        local_part = address.partition("@")[0]
        user = User(email=address, display_name=local_part[:100] or "reader")
        db.session.add(user)
    user.email_verified = True
    return user, _new_email_identity(user, address)


def _new_email_identity(user: User, address: str) -> Identity:
    """A verified e-mail identity for ``user`` (added to the session)."""
    identity = Identity(
        user=user,
        provider=EMAIL_PROVIDER,
        subject=address,
        email=address,
        email_verified=True,
        display_name=user.display_name,
    )
    db.session.add(identity)
    return identity


def _verify_address(user: User, address: str) -> Identity:
    """Give ``user`` the verified ``address`` and an e-mail identity; EmailInUse if taken."""
    identity = _email_identity(address)
    owner = _user_with_email(address)
    if (identity is not None and identity.user_id != user.id) or (
        owner is not None and owner.id != user.id
    ):
        raise EmailInUse(address)
    user.email = address
    user.email_verified = True
    if identity is None:
        return _new_email_identity(user, address)
    identity.email_verified = True
    return identity


def _owner_of(address: str) -> User:
    """The account that holds ``address`` (by its e-mail identity or its e-mail field)."""
    identity = _email_identity(address)
    if identity is not None:
        return identity.user
    owner = _user_with_email(address)
    assert owner is not None  # only called after EmailInUse
    return owner


def _merge_accounts(into: User, merged: User) -> User:
    """Move ``merged``'s identities and comments to ``into`` and delete ``merged``."""
    from moderation.models import Comment

    if into.id == merged.id:
        return into
    db.session.execute(
        sa.update(Identity).where(Identity.user_id == merged.id).values(user_id=into.id)
    )
    db.session.execute(
        sa.update(Comment).where(Comment.author_id == merged.id).values(author_id=into.id)
    )
    # Keep the used links (the one being claimed among them): deleting them would reopen them.
    db.session.execute(
        sa.update(LoginLink).where(LoginLink.user_id == merged.id).values(user_id=into.id)
    )
    into.email_verified = True
    db.session.delete(merged)
    db.session.flush()
    db.session.expire(into)
    return into


@bp.get("/login")
def login() -> str:
    """The login box: an e-mail form, and provider buttons when they are configured."""
    form = EmailLoginForm(
        formdata=None,
        next=safe_next_url(request.args.get("next")),
        popup="1" if request.args.get("popup") == "1" else "",
    )
    return render_template("auth/login.html", form=form, next=form.next.data)


@bp.post("/email")
@limiter.limit("10/hour")
def request_link() -> tuple[str, int] | str:
    """Mail a login link; the answer is the same whether or not the address has an account."""
    form = EmailLoginForm()
    if not form.validate():
        form.next.data = safe_next_url(form.next.data)
        return render_template("auth/login.html", form=form, next=form.next.data), 400
    target = safe_next_url(form.next.data)
    if form.popup.data == "1":
        # The popup ends on a page that tells the widget and closes itself.
        target = url_for("auth_email_login.popup_done")
    try:
        send_login_link(form.email.data or "", next_url=target)
    except TooManyLinks as exc:
        raise TooManyRequests(
            "Too many login links were sent to this address; try again later.",
            retry_after=exc.retry_after,
        ) from None
    except MailError:
        return render_template("auth/email_sent.html", failed=True), 503
    return render_template("auth/email_sent.html", failed=False)


def _link_refused(response: Response) -> bool:
    """Whether the answer refused a link token (only those count towards BAD_LINKS_PER_HOUR)."""
    return response.status_code == 400


# One budget for both routes, counting refusals only: people with good links are never slowed.
bad_link_limit = limiter.shared_limit(
    BAD_LINKS_PER_HOUR, scope="login-link-token", deduct_when=_link_refused
)


@bp.get("/email/<token>")
@bad_link_limit
def confirm(token: str) -> tuple[str, int] | str:
    """Ask for a click before using the link: mail scanners fetch links, but never POST."""
    link = _usable_link(token)
    if link is None:
        return render_template("auth/link_invalid.html"), 400
    return render_template("auth/confirm_link.html", token=token, purpose=link.purpose)


@bp.post("/email/<token>")
@bad_link_limit
def consume(token: str) -> Response | tuple[str, int]:
    """Use the link once: log in (or verify the address) and go to the page it was sent from."""
    link = _claim_link(token)
    if link is None:
        db.session.rollback()
        return render_template("auth/link_invalid.html"), 400
    if link.purpose == "verify":
        user = db.session.get(User, link.user_id) if link.user_id is not None else None
        if user is None:
            db.session.rollback()
            return render_template("auth/link_invalid.html"), 400
        try:
            identity = _verify_address(user, link.email)
        except EmailInUse:
            # The address belongs to another account. The person proved the login the link was
            # requested from (``user``) and now control of the address: both are theirs, so
            # the two accounts become one, the address's owner keeping its history.
            user = _merge_accounts(into=_owner_of(link.email), merged=user)
            identity = _email_identity(link.email)
    else:
        user, identity = _login_user_for(link.email)
    db.session.flush()
    # log_in commits: the link's used_at, the user and the identity land together.
    log_in(user, identity)
    return redirect(safe_next_url(link.next_url))


@bp.get("/popup-done")
def popup_done() -> str:
    """The last page of a login in a popup: it tells the opener and closes itself."""
    # Only our own origin may receive the message (the widget frame is served from here).
    return render_template(
        "auth/popup_done.html", target_origin=f"{request.scheme}://{request.host}"
    )


@bp.post("/logout")
def logout() -> Response:
    """End this browser's session (a copy of its cookie stops working too: see log_out)."""
    log_out(current_user._get_current_object() if current_user.is_authenticated else None)
    return redirect(safe_next_url(request.form.get("next")))


@bp.post("/logout-everywhere")
def logout_everywhere() -> Response:
    """End every session of the current user, on every device."""
    if current_user.is_authenticated:
        log_out_everywhere(current_user._get_current_object())
    else:
        log_out()
    return redirect(safe_next_url(request.form.get("next")))
