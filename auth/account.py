"""The account page: profile, linked identities, notification choices, my data, deletion."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.exceptions import NotFound
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, InputRequired, Length

from auth.models import Identity, LoginLink, User
from auth.sessions import log_out
from moderation import security
from moderation.extensions import db
from moderation.models import Comment, Site, Thread
from moderation.service import recount_threads
from moderation.status import Status

__all__ = [
    "DELETED_AUTHOR_NAME",
    "NOTIFICATION_DEFAULTS",
    "account_data",
    "bp",
    "delete_account",
    "erase_account",
    "initials",
    "notification_preferences",
]

bp = Blueprint("auth_account", __name__, url_prefix="/account")

DELETED_AUTHOR_NAME = "deleted user"
# Preference keys in User.preferences and their values until the user chooses.
# Reply mails are opt-in; decisions on your own held comment are what you asked about.
NOTIFICATION_DEFAULTS = {"notify_replies": False, "notify_decisions": True}
# Keys of a cached provider profile that must never leave the server, whatever a provider sends.
SECRET_KEY_PATTERN = re.compile(r"token|secret|password", re.IGNORECASE)


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _clean_name(value: Any) -> Any:
    return security.clean_name(value) if isinstance(value, str) else value


class ProfileForm(FlaskForm):
    """The display name."""

    display_name = StringField(
        "Display name",
        validators=[DataRequired(message="Enter a name."), Length(min=1, max=100)],
        # No bidi overrides or invisible characters: others must see the name as it reads.
        filters=[_strip, _clean_name],
    )


class PreferencesForm(FlaskForm):
    """Which e-mails the user wants."""

    notify_replies = BooleanField("E-mail me when someone replies to my comment")
    notify_decisions = BooleanField("E-mail me when a moderator decides on my comment")


class DeleteForm(FlaskForm):
    """Deleting the account needs a ticked box."""

    confirm = BooleanField(
        "I understand that my account is deleted for good",
        validators=[InputRequired(message="Tick the box to confirm.")],
    )


def notification_preferences(user: User) -> dict[str, bool]:
    """The user's notification choices, with defaults for what they never set."""
    stored = user.preferences or {}
    return {key: bool(stored.get(key, default)) for key, default in NOTIFICATION_DEFAULTS.items()}


def initials(name: str) -> str:
    """Up to two initials of ``name`` for an avatar without a picture."""
    letters = [word[0] for word in name.split() if word[:1].isalnum()]
    return ("".join(letters[:2]) or "?").upper()


def delete_account(user: User) -> None:
    """Delete ``user``; each site's policy keeps their comments as "deleted user" or removes
    them (status deleted, text cleared). Commits."""
    erase_account(user)
    db.session.commit()


def erase_account(user: User) -> None:
    """What ``delete_account`` does, in the caller's transaction (admins' erasure adds to it)."""
    removing = [
        site.id
        for site in db.session.scalars(
            sa.select(Site).where(
                Site.id.in_(sa.select(Comment.site_id).where(Comment.author_id == user.id))
            )
        )
        if site.moderation_settings.deleted_account_comments == "remove"
    ]
    if removing:
        mine = sa.and_(Comment.author_id == user.id, Comment.site_id.in_(removing))
        threads = list(db.session.scalars(sa.select(Comment.thread_id).where(mine).distinct()))
        db.session.execute(
            sa.update(Comment)
            .where(mine)
            .values(status=Status.DELETED, body="", html="")
            .execution_options(synchronize_session=False)
        )
        recount_threads(threads)  # comment_count counts published comments
    db.session.execute(
        sa.update(Comment)
        .where(Comment.author_id == user.id)
        .values(
            author_id=None,
            author_name=DELETED_AUTHOR_NAME,
            # Linkable to the person for a few days: erased with the account.
            ip_hash=None,
            user_agent=None,
            version=Comment.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    addresses = {identity.email for identity in user.identities if identity.email}
    if user.email:
        addresses.add(user.email)
    db.session.execute(
        sa.delete(LoginLink).where(
            sa.or_(LoginLink.user_id == user.id, LoginLink.email.in_(sorted(addresses)))
        )
    )
    db.session.delete(user)


@bp.before_request
def require_login() -> Response | None:
    """Every account page needs a logged-in user; others go to the login page and back."""
    if not current_user.is_authenticated:
        target = request.full_path if request.method == "GET" else url_for(".page")
        return redirect(url_for("auth_email_login.login", next=target.rstrip("?")))
    return None


def _render(
    status: int = 200,
    profile: ProfileForm | None = None,
    preferences: PreferencesForm | None = None,
    delete: DeleteForm | None = None,
    message: str | None = None,
) -> tuple[str, int]:
    user: User = current_user._get_current_object()
    profile = profile or ProfileForm(
        formdata=None, prefix="profile", display_name=user.display_name
    )
    preferences = preferences or PreferencesForm(
        formdata=None, prefix="prefs", **notification_preferences(user)
    )
    delete = delete or DeleteForm(formdata=None, prefix="delete")
    identities = sorted(user.identities, key=lambda identity: identity.id)
    avatar_url = user.avatar_url if (user.avatar_url or "").startswith("https://") else None
    if avatar_url:  # the provider's picture: the page's CSP allows images from its host
        security.allow_sources("img-src", "https://" + (urlsplit(avatar_url).hostname or ""))
    page = render_template(
        "auth/account.html",
        user=user,
        avatar_url=avatar_url,
        initials=initials(user.display_name),
        identities=identities,
        profile_form=profile,
        preferences_form=preferences,
        delete_form=delete,
        message=message,
    )
    return page, status


@bp.get("/")
def page() -> tuple[str, int]:
    """The account page."""
    return _render()


@bp.post("/profile")
def update_profile() -> Response | tuple[str, int]:
    """Change the display name."""
    form = ProfileForm(prefix="profile")
    if not form.validate():
        return _render(400, profile=form)
    user: User = current_user._get_current_object()
    user.display_name = form.display_name.data or user.display_name
    db.session.commit()
    return redirect(url_for(".page"))


@bp.post("/preferences")
def update_preferences() -> Response | tuple[str, int]:
    """Save the notification choices."""
    form = PreferencesForm(prefix="prefs")
    if not form.validate():
        return _render(400, preferences=form)
    user: User = current_user._get_current_object()
    # JSON columns see assignments only: build a new dict.
    user.preferences = {
        **(user.preferences or {}),
        "notify_replies": bool(form.notify_replies.data),
        "notify_decisions": bool(form.notify_decisions.data),
    }
    db.session.commit()
    return redirect(url_for(".page"))


@bp.post("/identities/<int:identity_id>/unlink")
def unlink_identity(identity_id: int) -> Response | tuple[str, int]:
    """Remove one way of logging in, as long as another remains."""
    user: User = current_user._get_current_object()
    identity = db.session.get(Identity, identity_id)
    if identity is None or identity.user_id != user.id:
        raise NotFound()
    if len(user.identities) < 2:
        return _render(409, message="Keep at least one way to log in.")
    db.session.delete(identity)
    db.session.commit()
    return redirect(url_for(".page"))


@bp.get("/data.json")
def download_data() -> Response:
    """Everything we hold about the user, as a JSON download."""
    data = account_data(current_user._get_current_object())
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        mimetype="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-comments-data.json"'},
    )


def account_data(user: User) -> dict[str, Any]:
    """Everything we hold about ``user``: profile, identities (no secrets) and comments."""
    rows = db.session.execute(
        sa.select(Comment, Thread.url)
        .join(Thread, Comment.thread_id == Thread.id)
        .where(Comment.author_id == user.id)
        .order_by(Comment.created_at, Comment.id)
    )
    return {
        "user": {
            "id": user.id,
            "email": user.email,
            "email_verified": user.email_verified,
            "display_name": user.display_name,
            "avatar_url": user.avatar_url,
            "role": str(user.role),
            "created_at": user.created_at.isoformat(),
            "preferences": user.preferences or {},
        },
        "identities": [
            {
                "provider": identity.provider,
                "subject": identity.subject,
                "email": identity.email,
                "email_verified": identity.email_verified,
                "display_name": identity.display_name,
                "profile": {
                    key: value
                    for key, value in (identity.profile or {}).items()
                    if not SECRET_KEY_PATTERN.search(key)
                },
                "created_at": identity.created_at.isoformat(),
                "last_login_at": identity.last_login_at.isoformat()
                if identity.last_login_at
                else None,
            }
            for identity in sorted(user.identities, key=lambda identity: identity.id)
        ],
        "comments": [
            {
                "id": comment.id,
                "article_url": url,
                "body": comment.body,
                "status": str(comment.status),
                "created_at": comment.created_at.isoformat(),
                "updated_at": comment.updated_at.isoformat(),
            }
            for comment, url in rows
        ],
    }


@bp.post("/delete")
def delete() -> Response | tuple[str, int]:
    """Delete the account (after a ticked box); comments stay as "deleted user"."""
    form = DeleteForm(prefix="delete")
    if not form.validate() or not form.confirm.data:
        form.confirm.errors = ["Tick the box to confirm."]
        return _render(400, delete=form)
    delete_account(current_user._get_current_object())
    log_out()
    return redirect("/")
