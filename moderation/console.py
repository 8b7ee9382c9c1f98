"""The site owners' console (/console): sites, the embed snippet, settings, staff, tokens,
single sign-on, webhooks and the dashboard.

Anyone signed in (by the e-mail magic link of ``auth/``) may create a site and becomes its
owner. Owners (and admins) change a site; its moderators may open its overview and dashboard;
everyone else is told the site does not exist (404). Every change is one transaction; every
form carries a CSRF token (Flask-WTF).
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections import Counter
from dataclasses import fields as dataclass_fields
from datetime import timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm
from werkzeug.exceptions import NotFound
from wtforms import (
    BooleanField,
    EmailField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    URLField,
    widgets,
)
from wtforms.fields import DecimalRangeField, IntegerField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Regexp

from auth.email_login import EMAIL_PATTERN
from auth.mail import MailError, send_mail
from auth.models import ApiToken, Identity, Role, SiteMembership, SiteRole, User
from auth.oauth import PROVIDERS, enabled_providers
from auth.permissions import current_actor, require_site_role
from moderation import dashboard as charts
from moderation import webhooks
from moderation.db import utcnow
from moderation.extensions import db, limiter
from moderation.models import Comment, Site, SiteInvite, normalise_origin
from moderation.policy import (
    LOGIN_PROVIDERS,
    AuthorStanding,
    InvalidSettings,
    Scores,
    SiteSettings,
    decide,
)
from moderation.service import Invalid, ServiceError, update_site
from moderation.status import Status

__all__ = [
    "INVITE_LIFETIME",
    "PREVIEW_FIELDS",
    "PREVIEW_SAMPLE",
    "bp",
    "configured_providers",
    "create_site",
    "embed_snippet",
    "init_app",
    "preview_settings",
    "preview_src",
    "settings_form_class",
]

bp = Blueprint("console", __name__, url_prefix="/console")

INVITE_LIFETIME = timedelta(days=7)
PREVIEW_SAMPLE = 1000  # the site's latest comments the settings preview replays
MAX_SITES_PER_USER = 20  # sign-up is open: a cap on what one account can create
MAX_TOKENS = 20
SSO_SECRET_BYTES = 32  # as `flask sites sso-secret`: 256 bits, HS256's own output size
# Settings whose effect the preview can replay over stored comments (and the reason code each
# setting produces), in the order the page shows them.
PREVIEW_FIELDS: dict[str, str] = {
    "mode": "pre_moderation",
    "spam_hold": "spam_score",
    "spam_reject": "spam_reject",
    "abuse_hold": "abuse_score",
    "abuse_reject": "abuse_reject",
    "banned_words": "banned_word",
    "suspect_words": "suspect_word",
    "max_links": "too_many_links",
}
CHOICES = {
    "mode": [
        SelectChoice("post", "Post-moderation (publish unless held)"),
        SelectChoice("pre", "Pre-moderation"),
    ],
    "deleted_account_comments": [
        SelectChoice("anonymise", "Anonymise"),
        SelectChoice("remove", "Remove"),
    ],
}
GROUPS = (
    ("Routing", ("mode", "spam_hold", "spam_reject", "abuse_hold", "abuse_reject", "nudge")),
    ("Words and links", ("banned_words", "suspect_words", "max_links")),
    (
        "Authors",
        ("first_comments_held", "trusted_after", "trusted_relax", "allow_guests", "flood_seconds"),
    ),
    (
        "Posting",
        ("duplicate_minutes", "edit_minutes", "close_after_days", "deleted_account_comments"),
    ),
    (
        "Reports",
        ("reports_to_queue", "reports_to_hide", "new_account_days", "new_account_report_weight"),
    ),
    ("Notifications", ("notify_authors", "digest_pending", "digest_minutes")),
    ("Login", ("login_providers",)),
)


# ---------------------------------------------------------------------------------------------
# Forms
# ---------------------------------------------------------------------------------------------


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class SiteForm(FlaskForm):
    """A site's name and the origins of the pages that embed its comments."""

    name = StringField(
        "Site name",
        validators=[DataRequired(message="Enter a name."), Length(max=200)],
        filters=[_strip],
    )
    origins = TextAreaField(
        "Allowed origins",
        description="One per line, like https://news.example (pages elsewhere cannot embed).",
        validators=[DataRequired(message="Enter at least one origin.")],
    )

    def origin_list(self) -> list[str]:
        """The origins, one per line or comma."""
        text = (self.origins.data or "").replace(",", "\n")
        return [line.strip() for line in text.splitlines() if line.strip()]


class InviteForm(FlaskForm):
    """Invite a moderator by e-mail."""

    email = EmailField(
        "E-mail address",
        validators=[
            DataRequired(message="Enter an e-mail address."),
            Length(max=254),
            Regexp(EMAIL_PATTERN, message="Enter an e-mail address like name@example.org."),
        ],
        filters=[_strip],
    )


class TokenForm(FlaskForm):
    """Name a new API token."""

    name = StringField(
        "Token name",
        description="What the token is for, e.g. “CMS integration”.",
        validators=[DataRequired(message="Name the token."), Length(max=100)],
        filters=[_strip],
    )


class WebhookForm(FlaskForm):
    """A webhook's URL and events."""

    url = URLField(
        "URL",
        validators=[DataRequired(message="Enter the URL to POST events to."), Length(max=2048)],
        filters=[_strip],
    )
    events = SelectMultipleField(
        "Events",
        choices=[SelectChoice(name, name) for name in webhooks.EVENTS],
        default=list(webhooks.EVENTS),
        validators=[InputRequired(message="Choose at least one event.")],
        widget=widgets.ListWidget(prefix_label=False),
        option_widget=widgets.CheckboxInput(),
    )


def _kind(name: str) -> str:
    default = SiteSettings.__dataclass_fields__[name].default
    if name in CHOICES:
        return "choice"
    if name == "login_providers":
        return "providers"
    if isinstance(default, bool):
        return "flag"
    if default is None:
        return "optional_probability"
    if isinstance(default, float):
        return "probability"
    if isinstance(default, tuple):
        return "words"
    return "count"


def settings_form_class() -> type[FlaskForm]:
    """A form with one field per SiteSettings field, labelled with the policy's help text."""
    attributes: dict[str, Any] = {}
    for spec in dataclass_fields(SiteSettings):
        name = spec.name
        label = name.replace("_", " ").capitalize()
        help_text = SiteSettings.FIELDS.get(name, "")
        kind = _kind(name)
        if kind == "choice":
            field = SelectField(label, choices=CHOICES[name], description=help_text)
        elif kind == "providers":
            # Choices depend on the server's OAuth credentials: set per request (_settings_page).
            field = SelectMultipleField(
                label,
                description=help_text,
                validate_choice=False,  # _settings_from_form keeps only known providers
                widget=widgets.ListWidget(prefix_label=False),
                option_widget=widgets.CheckboxInput(),
            )
        elif kind == "flag":
            field = BooleanField(label, description=help_text)
        elif kind == "probability":
            field = DecimalRangeField(
                label,
                description=help_text,
                places=2,
                validators=[
                    InputRequired(message="Give a number from 0 to 1."),
                    NumberRange(0, 1, message="Give a number from 0 to 1."),
                ],
                render_kw={"min": "0", "max": "1", "step": "0.01"},
            )
        elif kind == "optional_probability":
            field = StringField(
                label,
                description=help_text + " Leave empty for none.",
                filters=[_strip],
                render_kw={"inputmode": "decimal", "placeholder": "none"},
            )
        elif kind == "words":
            field = TextAreaField(
                label, description=help_text + " One per line.", render_kw={"rows": "3"}
            )
        else:
            minimum = 1 if name == "reports_to_queue" else 0
            field = IntegerField(
                label,
                description=help_text,
                validators=[
                    InputRequired(message="Give a whole number."),
                    NumberRange(min=minimum, message=f"Give a whole number from {minimum} up."),
                ],
                render_kw={"min": str(minimum), "step": "1"},
            )
        attributes[name] = field
    return type("SettingsForm", (FlaskForm,), attributes)


SettingsForm = settings_form_class()


def _form_values(settings: SiteSettings) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in settings.to_dict().items():
        kind = _kind(name)
        if kind == "providers":
            values[name] = [p for p in configured_providers() if settings.allows_login(p)]
        elif kind == "words":
            values[name] = "\n".join(value)
        elif kind == "optional_probability":
            values[name] = "" if value is None else f"{value:g}"
        elif kind == "probability":
            values[name] = Decimal(str(value))
        else:
            values[name] = value
    return values


def _words(text: str | None) -> list[str]:
    raw = (text or "").replace(",", "\n")
    return [line.strip() for line in raw.splitlines() if line.strip()]


def configured_providers() -> list[str]:
    """The login providers this server offers: e-mail always, X and Facebook with credentials."""
    return ["email", *(provider.name for provider in enabled_providers())]


def _providers_from_form(ticked: list[str] | None, current: SiteSettings) -> list[str]:
    """The site's login_providers after the form: the ticked ones, and unconfigured ones kept."""
    offered = configured_providers()
    chosen = {name for name in ticked or [] if name in offered}
    if chosen == {name for name in offered if current.allows_login(name)}:
        # Unchanged: an empty list stays "every provider", a provider without credentials
        # on this server stays chosen for when it gets them.
        return list(current.login_providers)
    if not chosen:
        return []  # nothing ticked: every provider, as the help says
    kept = {name for name in current.login_providers if name not in offered}
    return [name for name in LOGIN_PROVIDERS if name in chosen | kept]


def _settings_from_form(form: FlaskForm, current: SiteSettings) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for spec in dataclass_fields(SiteSettings):
        name = spec.name
        data = form[name].data
        kind = _kind(name)
        if kind == "providers":
            values[name] = _providers_from_form(data, current)
        elif kind == "words":
            values[name] = _words(data)
        elif kind == "probability":
            values[name] = float(data)
        elif kind == "optional_probability":
            values[name] = data or "none"  # parsed by the policy, which names a bad value
        elif kind == "flag":
            values[name] = bool(data)
        else:
            values[name] = data
    return values


def _attach_errors(form: FlaskForm, message: str) -> list[str]:
    """Put the policy's sentences under the fields they name; return the rest."""
    general: list[str] = []
    for sentence in message.replace(". ", ".\n").splitlines():
        named = next(
            (name for name in SiteSettings.FIELDS if sentence.startswith((name + " ", name))),
            None,
        )
        if named is not None and named in form:
            form[named].errors = [*form[named].errors, sentence]
        elif sentence.strip():
            general.append(sentence)
    return general


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


@bp.before_request
def require_login() -> Response | None:
    """Console pages need someone signed in; others go to the login page and come back."""
    if current_actor() is None:
        target = request.full_path if request.method == "GET" else url_for(".index")
        return redirect(url_for("auth_email_login.login", next=target.rstrip("?")))
    return None


def _actor() -> User:
    user = current_actor()
    assert user is not None  # require_login ran first
    return user


def service_url() -> str:
    """The public address of this service, as the embed snippet must name it."""
    configured = current_app.config.get("PUBLIC_URL")
    return str(configured or request.url_root).rstrip("/")


def embed_snippet(site: Site, base: str) -> str:
    """The two lines a site pastes into its article template."""
    return (
        f'<div id="comments" data-site="{site.key}"></div>\n'
        f'<script src="{base}/embed.js" async></script>'
    )


PREVIEW_PATH = "/__preview__"  # the preview article: rendering it creates no thread
PREVIEW_THEMES = ("light", "dark", "auto")


def preview_src(site: Site, theme: str = "light") -> str | None:
    """The widget's thread page for a preview article on the site's first origin, or None."""
    if not site.origins:
        return None
    return url_for(
        "embed.thread_page",
        site=site.key,
        url=site.origins[0] + PREVIEW_PATH,
        title="Preview",
        theme=theme,
    )


def _site_nav(site: Site, role: str) -> list[tuple[str, str]]:
    pages = [("console.site", "Overview"), ("console.dashboard", "Dashboard")]
    if role in (SiteRole.OWNER.value, Role.ADMIN.value):
        pages += [
            ("console.settings", "Moderation settings"),
            ("console.moderators", "Moderators"),
            ("console.sso", "Single sign-on"),
            ("console.webhooks_page", "Webhooks"),
        ]
    return pages


def _render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    if "site" in g:
        context.setdefault("site", g.site)
        context.setdefault("role", g.site_role)
        context.setdefault("site_nav", _site_nav(g.site, g.site_role))
    return render_template(template, **context), status


# ---------------------------------------------------------------------------------------------
# Sites
# ---------------------------------------------------------------------------------------------


def create_site(owner: User, name: str, origins: list[str]) -> Site:
    """A new site owned by ``owner`` (one transaction); Invalid with a sentence if refused."""
    text = " ".join(name.split())
    if not text or len(text) > 200:
        raise Invalid("The name must be 1 to 200 characters long.")
    cleaned: list[str] = []
    for value in origins:
        try:
            origin = normalise_origin(value)
        except ValueError as exc:
            raise Invalid(str(exc)) from None
        if origin not in cleaned:
            cleaned.append(origin)
    if not cleaned:
        raise Invalid("A site needs at least one origin.")
    owned = db.session.scalar(
        sa.select(sa.func.count(SiteMembership.id)).where(
            SiteMembership.user_id == owner.id, SiteMembership.role == SiteRole.OWNER
        )
    )
    if (owned or 0) >= MAX_SITES_PER_USER and owner.role != Role.ADMIN:
        raise Invalid(f"One account can own at most {MAX_SITES_PER_USER} sites.")
    site = Site(name=text, origins=cleaned)
    db.session.add(site)
    db.session.add(SiteMembership(user_id=owner.id, site=site, role=SiteRole.OWNER))
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return site


def _my_sites(user: User) -> list[tuple[Site, str]]:
    if user.role == Role.ADMIN:
        return [
            (site, Role.ADMIN.value)
            for site in db.session.scalars(sa.select(Site).order_by(Site.name, Site.id))
        ]
    rows = db.session.execute(
        sa.select(Site, SiteMembership.role)
        .join(SiteMembership, SiteMembership.site_id == Site.id)
        .where(SiteMembership.user_id == user.id)
        .order_by(Site.name, Site.id)
    )
    return [(site, str(role)) for site, role in rows]


@bp.get("")
def index() -> tuple[str, int]:
    """The sites the person works on, and a form to create one."""
    return _render("console/index.html", sites=_my_sites(_actor()), form=SiteForm(formdata=None))


@bp.post("/sites")
@limiter.limit("30/hour")  # sign-up is open: slow down scripted site creation
def new_site() -> Response | tuple[str, int]:
    """Create a site; its creator becomes its owner."""
    form = SiteForm()
    if form.validate():
        try:
            site = create_site(_actor(), form.name.data or "", form.origin_list())
        except ServiceError as exc:
            form.origins.errors = [*form.origins.errors, exc.message]
        else:
            return redirect(url_for(".site", key=site.key))
    return _render("console/index.html", 400, sites=_my_sites(_actor()), form=form)


@bp.get("/sites/<key>")
@require_site_role(SiteRole.MODERATOR)
def site(key: str) -> tuple[str, int]:
    """The site's overview: the embed snippet with a copy button, name and origins."""
    site: Site = g.site
    form = SiteForm(formdata=None, name=site.name, origins="\n".join(site.origins or []))
    return _render(
        "console/site.html",
        snippet=embed_snippet(site, service_url()),
        form=form,
        preview=preview_src(site),
        themes=PREVIEW_THEMES,
    )


@bp.post("/sites/<key>")
@require_site_role(SiteRole.OWNER)
def update_details(key: str) -> Response | tuple[str, int]:
    """Rename the site or change its origins."""
    form = SiteForm()
    if form.validate():
        try:
            update_site(key, _actor(), name=form.name.data, origins=form.origin_list())
        except ServiceError as exc:
            form.origins.errors = [*form.origins.errors, exc.message]
        else:
            return redirect(url_for(".site", key=key))
    return _render(
        "console/site.html",
        400,
        snippet=embed_snippet(g.site, service_url()),
        form=form,
        preview=preview_src(g.site),
        themes=PREVIEW_THEMES,
    )


# ---------------------------------------------------------------------------------------------
# Moderation settings and their preview
# ---------------------------------------------------------------------------------------------


def _current_settings(site: Site) -> SiteSettings:
    try:
        return site.moderation_settings
    except ValueError:
        return SiteSettings()


PROVIDER_LABELS = {"email": "E-mail (a login link)", "x": "X", "facebook": "Facebook"}


def _settings_form(**kwargs: Any) -> FlaskForm:
    """The settings form, with a login provider checkbox for each provider this server offers."""
    form = SettingsForm(**kwargs)
    form["login_providers"].choices = [
        SelectChoice(name, PROVIDER_LABELS[name]) for name in configured_providers()
    ]
    return form


def _settings_page(form: FlaskForm, status: int = 200, **context: Any) -> tuple[str, int]:
    offered = configured_providers()
    missing = [
        (PROVIDER_LABELS[name], PROVIDERS[name].prefix)
        for name in LOGIN_PROVIDERS
        if name not in offered and name in PROVIDERS
    ]
    context.setdefault("general", [])
    context.setdefault("saved", False)
    return _render(
        "console/settings.html",
        status,
        form=form,
        groups=GROUPS,
        preview_fields=PREVIEW_FIELDS,
        missing_providers=missing,
        **context,
    )


@bp.get("/sites/<key>/settings")
@require_site_role(SiteRole.OWNER)
def settings(key: str) -> tuple[str, int]:
    """Every moderation setting in one form, with the live preview of the thresholds."""
    return _settings_page(
        _settings_form(formdata=None, data=_form_values(_current_settings(g.site)))
    )


@bp.post("/sites/<key>/settings")
@require_site_role(SiteRole.OWNER)
def save_settings(key: str) -> tuple[str, int]:
    """Validate and save the settings (moderation.service.update_site, one transaction)."""
    form = _settings_form()
    general: list[str] = []
    if form.validate():
        try:
            update_site(
                key, _actor(), settings=_settings_from_form(form, _current_settings(g.site))
            )
        except ServiceError as exc:
            general = _attach_errors(form, exc.message)
        else:
            saved = _settings_form(formdata=None, data=_form_values(_current_settings(g.site)))
            return _settings_page(saved, saved=True)
    return _settings_page(form, 400, general=general)


def _tally(verdicts: list[Any]) -> dict[str, int]:
    counts = Counter(str(verdict.status) for verdict in verdicts)
    return {str(status): counts.get(str(status), 0) for status in Status if status != "deleted"}


def preview_settings(site: Site, proposed: SiteSettings) -> dict[str, Any]:
    """How the site's latest comments would have been routed now and with ``proposed``.

    Replays the policy over stored texts and scores. What the comments' authors had earned
    at the time is not stored, so every author counts as established but not trusted: the
    preview shows the effect of the content rules and thresholds alone.
    """
    current = _current_settings(site)
    rows = db.session.execute(
        sa.select(Comment.body, Comment.spam_score, Comment.abuse_score)
        .where(Comment.site_id == site.id, Comment.status != Status.DELETED)
        .order_by(Comment.created_at.desc(), Comment.id.desc())
        .limit(PREVIEW_SAMPLE)
    ).all()

    def replay(settings: SiteSettings) -> list[Any]:
        standing = AuthorStanding(approved=settings.first_comments_held, rejected=1)
        return [
            decide(
                body,
                Scores(spam, abuse) if spam is not None and abuse is not None else None,
                settings,
                standing,
            )
            for body, spam, abuse in rows
        ]

    before = replay(current)
    after = replay(proposed) if proposed != current else before
    rules = {
        name: sum(1 for verdict in after if any(r.code == code for r in verdict.reasons))
        for name, code in PREVIEW_FIELDS.items()
    }
    return {
        "sample": len(rows),
        "current": _tally(before),
        "proposed": _tally(after),
        "changed": sum(1 for a, b in zip(before, after, strict=True) if a.status != b.status),
        "rules": rules,
    }


@bp.get("/sites/<key>/settings/preview")
@require_site_role(SiteRole.OWNER)
def settings_preview(key: str) -> tuple[Response, int]:
    """JSON: the preview for the threshold settings in the query string (the page's sliders)."""
    updates: dict[str, Any] = {}
    for name in PREVIEW_FIELDS:
        if name in request.args:
            value = request.args[name]
            updates[name] = _words(value) if _kind(name) == "words" else value
    try:
        proposed = _current_settings(g.site).with_updates(updates)
    except InvalidSettings as exc:
        return jsonify({"error": str(exc)}), 422
    return jsonify(preview_settings(g.site, proposed)), 200


# ---------------------------------------------------------------------------------------------
# Moderators and invitations
# ---------------------------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _staff(site: Site) -> list[tuple[User, str]]:
    rows = db.session.execute(
        sa.select(User, SiteMembership.role)
        .join(SiteMembership, SiteMembership.user_id == User.id)
        .where(SiteMembership.site_id == site.id)
        .order_by(SiteMembership.role.desc(), User.display_name, User.id)
    )
    return [(user, str(role)) for user, role in rows]


def _open_invites(site: Site) -> list[SiteInvite]:
    return list(
        db.session.scalars(
            sa.select(SiteInvite)
            .where(
                SiteInvite.site_id == site.id,
                SiteInvite.accepted_at.is_(None),
                SiteInvite.expires_at > utcnow(),
            )
            .order_by(SiteInvite.created_at.desc())
        )
    )


def _moderators_page(status: int = 200, **context: Any) -> tuple[str, int]:
    context.setdefault("form", InviteForm(formdata=None))
    return _render(
        "console/moderators.html",
        status,
        staff=_staff(g.site),
        invites=_open_invites(g.site),
        me=_actor(),
        action=ActionForm(formdata=None),
        **context,
    )


@bp.get("/sites/<key>/moderators")
@require_site_role(SiteRole.OWNER)
def moderators(key: str) -> tuple[str, int]:
    """The site's staff and open invitations, and the invitation form."""
    return _moderators_page()


@bp.post("/sites/<key>/moderators")
@limiter.limit("30/hour")  # each invitation sends a mail to an address the owner typed
@require_site_role(SiteRole.OWNER)
def invite(key: str) -> Response | tuple[str, int]:
    """Invite someone by e-mail; the mail links to the invitation, which needs a login."""
    form = InviteForm()
    if not form.validate():
        return _moderators_page(400, form=form)
    site: Site = g.site
    address = (form.email.data or "").lower()
    already = db.session.scalar(
        sa.select(SiteMembership.id)
        .join(User, User.id == SiteMembership.user_id)
        .where(SiteMembership.site_id == site.id, sa.func.lower(User.email) == address)
    )
    if already is not None:
        form.email.errors = [*form.email.errors, "This person already works on the site."]
        return _moderators_page(409, form=form)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.session.add(
        SiteInvite(
            site_id=site.id,
            email=address,
            token_hash=_hash(token),
            invited_by_id=_actor().id,
            created_at=now,
            expires_at=now + INVITE_LIFETIME,
        )
    )
    db.session.flush()
    context = {
        "site_name": site.name,
        "inviter": _actor().display_name,
        "link": service_url() + url_for(".invitation", token=token),
        "days": INVITE_LIFETIME.days,
    }
    try:
        # Sent before the commit: an invitation nobody received is not kept.
        send_mail(
            address,
            f"You are invited to moderate comments on {site.name}",
            render_template("console/invite_email.txt", **context),
            render_template("console/invite_email.html", **context),
        )
    except MailError:
        db.session.rollback()
        form.email.errors = [*form.email.errors, "The invitation could not be sent; try again."]
        return _moderators_page(503, form=form)
    db.session.commit()
    return redirect(url_for(".moderators", key=key))


@bp.post("/sites/<key>/moderators/<int:user_id>/remove")
@require_site_role(SiteRole.OWNER)
def remove_moderator(key: str, user_id: int) -> Response:
    """Take the moderator role away (owners are not removed here)."""
    membership = db.session.scalar(
        sa.select(SiteMembership).where(
            SiteMembership.site_id == g.site.id,
            SiteMembership.user_id == user_id,
            SiteMembership.role == SiteRole.MODERATOR,
        )
    )
    if membership is None:
        raise NotFound("This site has no such moderator.")
    db.session.delete(membership)
    db.session.commit()
    return redirect(url_for(".moderators", key=key))


@bp.post("/sites/<key>/invites/<int:invite_id>/revoke")
@require_site_role(SiteRole.OWNER)
def revoke_invite(key: str, invite_id: int) -> Response:
    """Withdraw an open invitation."""
    found = db.session.scalar(
        sa.select(SiteInvite).where(
            SiteInvite.id == invite_id,
            SiteInvite.site_id == g.site.id,
            SiteInvite.accepted_at.is_(None),
        )
    )
    if found is None:
        raise NotFound("This site has no such open invitation.")
    db.session.delete(found)
    db.session.commit()
    return redirect(url_for(".moderators", key=key))


def _usable_invite(token: str) -> SiteInvite | None:
    found = db.session.scalar(sa.select(SiteInvite).where(SiteInvite.token_hash == _hash(token)))
    if found is None or found.accepted_at is not None or found.expires_at <= utcnow():
        return None
    return found


def _owns_address(user: User, address: str) -> bool:
    """Whether ``user`` proved control of ``address`` (a verified e-mail or its login)."""
    if user.email and user.email.lower() == address and user.email_verified:
        return True
    return (
        db.session.scalar(
            sa.select(Identity.id).where(
                Identity.user_id == user.id,
                Identity.provider == "email",
                Identity.subject == address,
            )
        )
        is not None
    )


@bp.get("/invites/<token>")
def invitation(token: str) -> tuple[str, int]:
    """The invitation: accept it with a click (the login link brought the person here)."""
    found = _usable_invite(token)
    if found is None:
        raise NotFound("This invitation is not valid any more; ask the site's owner again.")
    return _render(
        "console/invitation.html",
        invite=found,
        token=token,
        matches=_owns_address(_actor(), found.email),
        action=ActionForm(formdata=None),
    )


@bp.post("/invites/<token>")
def accept_invitation(token: str) -> Response | tuple[str, int]:
    """Become a moderator of the site (one transaction); the invitation is used up."""
    form = ActionForm()
    if not form.validate():
        raise NotFound("This invitation is not valid any more.")
    found = _usable_invite(token)
    user = _actor()
    if found is None:
        raise NotFound("This invitation is not valid any more; ask the site's owner again.")
    if not _owns_address(user, found.email):
        return _render(
            "console/invitation.html",
            403,
            invite=found,
            token=token,
            matches=False,
            action=ActionForm(formdata=None),
        )
    existing = db.session.scalar(
        sa.select(SiteMembership).where(
            SiteMembership.site_id == found.site_id, SiteMembership.user_id == user.id
        )
    )
    if existing is None:  # an owner keeps the higher role
        db.session.add(
            SiteMembership(user_id=user.id, site_id=found.site_id, role=SiteRole.MODERATOR)
        )
    found.accepted_at = utcnow()
    found.accepted_by_id = user.id
    db.session.commit()
    return redirect(url_for(".site", key=found.site.key))


# ---------------------------------------------------------------------------------------------
# API tokens (each person's own)
# ---------------------------------------------------------------------------------------------


def _tokens_page(status: int = 200, **context: Any) -> tuple[str, int]:
    user = _actor()
    tokens = list(
        db.session.scalars(
            sa.select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
        )
    )
    context.setdefault("form", TokenForm(formdata=None))
    return _render(
        "console/tokens.html",
        status,
        tokens=tokens,
        action=ActionForm(formdata=None),
        **context,
    )


@bp.get("/tokens")
def tokens() -> tuple[str, int]:
    """The person's API tokens: name, created, last used, revoked."""
    return _tokens_page()


@bp.post("/tokens")
def create_token() -> tuple[str, int]:
    """Issue a token and show its text once (only its hash is stored)."""
    form = TokenForm()
    if not form.validate():
        return _tokens_page(400, form=form)
    user = _actor()
    active = db.session.scalar(
        sa.select(sa.func.count(ApiToken.id)).where(
            ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)
        )
    )
    if (active or 0) >= MAX_TOKENS:
        form.name.errors = [*form.name.errors, f"Revoke a token first (at most {MAX_TOKENS})."]
        return _tokens_page(409, form=form)
    token, plain = ApiToken.issue(user, form.name.data or "token")
    db.session.add(token)
    db.session.commit()
    return _tokens_page(201, created=plain, created_name=token.name)


@bp.post("/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int) -> Response:
    """Revoke one of the person's tokens; it stops working at once."""
    token = db.session.scalar(
        sa.select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == _actor().id)
    )
    if token is None:
        raise NotFound("You have no such token.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()
    return redirect(url_for(".tokens"))


# ---------------------------------------------------------------------------------------------
# Single sign-on secret
# ---------------------------------------------------------------------------------------------


@bp.get("/sites/<key>/sso")
@require_site_role(SiteRole.OWNER)
def sso(key: str) -> tuple[str, int]:
    """The site's single sign-on secret (HS256), to copy into the site's own login code."""
    return _render("console/sso.html", action=ActionForm(formdata=None))


@bp.post("/sites/<key>/sso")
@require_site_role(SiteRole.OWNER)
def rotate_sso(key: str) -> Response:
    """A new secret: tokens signed with the old one stop working at once."""
    g.site.sso_secret = secrets.token_urlsafe(SSO_SECRET_BYTES)
    db.session.commit()
    return redirect(url_for(".sso", key=key))


# ---------------------------------------------------------------------------------------------
# Webhooks
# ---------------------------------------------------------------------------------------------


def _webhooks_page(status: int = 200, **context: Any) -> tuple[str, int]:
    hooks = webhooks.webhooks_of(g.site)
    context.setdefault("form", WebhookForm(formdata=None))
    return _render(
        "console/webhooks.html",
        status,
        hooks=hooks,
        logs={hook.id: webhooks.deliveries(hook, limit=10) for hook in hooks},
        action=ActionForm(formdata=None),
        header=webhooks.SIGNATURE_HEADER,
        **context,
    )


@bp.get("/sites/<key>/webhooks")
@require_site_role(SiteRole.OWNER)
def webhooks_page(key: str) -> tuple[str, int]:
    """The site's webhooks, their secrets and latest deliveries, and the form to add one."""
    return _webhooks_page()


@bp.post("/sites/<key>/webhooks")
@require_site_role(SiteRole.OWNER)
def create_webhook(key: str) -> Response | tuple[str, int]:
    """Add a webhook (http(s) to a public address) with a fresh secret."""
    form = WebhookForm()
    if form.validate():
        try:
            webhooks.create_webhook(g.site, form.url.data or "", form.events.data or [])
        except webhooks.InvalidWebhook as exc:
            db.session.rollback()
            form.url.errors = [*form.url.errors, str(exc)]
        else:
            return redirect(url_for(".webhooks_page", key=key))
    return _webhooks_page(400, form=form)


@bp.get("/sites/<key>/webhooks/<int:webhook_id>")
@require_site_role(SiteRole.OWNER)
def webhook_log(key: str, webhook_id: int) -> tuple[str, int]:
    """One webhook's delivery log: status, attempts, response code, time."""
    hook = next((h for h in webhooks.webhooks_of(g.site) if h.id == webhook_id), None)
    if hook is None:
        raise NotFound("This site has no such webhook.")
    return _render("console/webhook_log.html", hook=hook, log=webhooks.deliveries(hook))


@bp.post("/sites/<key>/webhooks/<int:webhook_id>/secret")
@require_site_role(SiteRole.OWNER)
def rotate_webhook_secret(key: str, webhook_id: int) -> Response:
    """A new signing secret for the webhook."""
    if webhooks.rotate_secret(g.site, webhook_id) is None:
        raise NotFound("This site has no such webhook.")
    return redirect(url_for(".webhooks_page", key=key))


@bp.post("/sites/<key>/webhooks/<int:webhook_id>/delete")
@require_site_role(SiteRole.OWNER)
def delete_webhook(key: str, webhook_id: int) -> Response:
    """Delete the webhook and its log."""
    if not webhooks.delete_webhook(g.site, webhook_id):
        raise NotFound("This site has no such webhook.")
    return redirect(url_for(".webhooks_page", key=key))


# ---------------------------------------------------------------------------------------------
# Dashboard
# ---------------------------------------------------------------------------------------------


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _minutes(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "–"
    if value < 60:
        return f"{value:.0f} min"
    return f"{value / 60:.1f} h"


@bp.get("/sites/<key>/dashboard")
@require_site_role(SiteRole.MODERATOR)
def dashboard(key: str) -> tuple[str, int]:
    """Charts of the site's last 7, 30 or 90 days (server-side SVG)."""
    try:
        days = int(request.args.get("days", "30"))
    except ValueError:
        days = 0
    if days not in charts.DAY_CHOICES:
        return _render(
            "console/dashboard.html",
            400,
            data=None,
            days=30,
            choices=charts.DAY_CHOICES,
            error=f"days must be one of {', '.join(map(str, charts.DAY_CHOICES))}.",
        )
    data = charts.build_dashboard(g.site, _actor(), days=days)
    return _render(
        "console/dashboard.html",
        data=data,
        days=days,
        choices=charts.DAY_CHOICES,
        error=None,
        held=_percent(data.share_held),
        published=_percent(data.share_published),
        median=_minutes(data.median_minutes),
    )


def init_app(app: Any) -> None:
    """Register the console's pages and the webhooks' signal receivers."""
    app.register_blueprint(bp)
    webhooks.init_app(app)
