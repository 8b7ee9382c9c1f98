"""E-mail notifications: decisions to authors, replies to commenters, digests to moderators.

Receivers of the signals in ``moderation.events`` only enqueue background jobs (ids, never
rows); the jobs read the current state, check the site's options and the person's
preferences, and send. ``GET``/``POST /notifications/unsubscribe/<token>`` turns a kind of mail
off with a signed link (RFC 8058 one-click included); ``flask notify digests`` checks every
site's Pending queue (for cron).

| variable | meaning | default |
|---|---|---|
| ``PUBLIC_URL`` | the service's address for links in mails (set it in production) | the request's |
| ``NOTIFY_DECISION_DELAY`` | seconds to wait before telling an author (leaves time to undo) | 15 |
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import click
import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    has_request_context,
    render_template,
    request,
)
from flask.cli import AppGroup
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeSerializer

from auth.account import notification_preferences
from auth.mail import MailError, send_mail
from auth.models import SiteMembership, SiteRole, User
from moderation import events
from moderation.db import utcnow
from moderation.extensions import csrf, db
from moderation.jobs import already_done, enqueue, enqueue_in, job, record_done
from moderation.models import AuthorEvent, Comment, Decision, Site, SiteAuthor
from moderation.policy import SiteSettings
from moderation.status import Action, Status

__all__ = [
    "KINDS",
    "bp",
    "check_digest",
    "init_app",
    "notify_cli",
    "read_unsubscribe_token",
    "send_decision_mail",
    "send_reply_mail",
    "unsubscribe_token",
    "unsubscribe_user",
]

log = logging.getLogger(__name__)

bp = Blueprint("notifications", __name__, url_prefix="/notifications")
notify_cli = AppGroup("notify", help="E-mail notifications: the moderators' digests.")

EXTENSION = "notifications"
UNSUBSCRIBE_SALT = "notifications-unsubscribe"
# Unsubscribe kinds and the preference (auth.account.NOTIFICATION_DEFAULTS) each turns off.
KINDS: Mapping[str, str] = {"replies": "notify_replies", "decisions": "notify_decisions"}
KIND_NAMES = {
    "replies": "e-mails when someone replies to your comments",
    "decisions": "e-mails when a moderator decides on your comments",
}
# RFC 8058: the exact body a mail client POSTs for a one-click unsubscribe.
ONE_CLICK_BODY = {"List-Unsubscribe": ["One-Click"]}
DEFAULT_DIGEST_MINUTES = 60  # the least time between two digests when digest_minutes is 0
TOP_REASONS = 5
REASON_SAMPLE = 1000  # pending comments read to rank the reasons (the oldest ones)
EXCERPT = 500
REASON_LABELS = {
    "banned_word": "banned words",
    "spam_reject": "spam score above the spam threshold",
    "abuse_reject": "abuse score above the rejection threshold",
    "abuse_score": "abuse score above the hold threshold",
    "spam_score": "spam score above the hold threshold",
    "suspect_word": "suspect words",
    "too_many_links": "too many links",
    "classifier_unavailable": "the classifier was unavailable",
    "premoderated_author": "authors set to always be reviewed",
    "guest": "guests without an approved comment",
    "first_comment": "authors' first comments",
    "pre_moderation": "the site reviews every comment",
}


DECISION_DELAY = 15.0


def init_app(app: Flask) -> None:
    """Listen to the comment signals, add the unsubscribe pages and ``flask notify``."""
    app.config.setdefault("PUBLIC_URL", os.environ.get("PUBLIC_URL", "").strip() or None)
    app.config.setdefault(
        # Longer than the desk's undo window (desk.UNDO_SECONDS): an undone decision sends nothing.
        "NOTIFY_DECISION_DELAY",
        float(os.environ.get("NOTIFY_DECISION_DELAY", "").strip() or DECISION_DELAY),
    )
    app.extensions[EXTENSION] = True
    # Signals are global: connecting the same functions again (another app) is a no-op, and
    # the receivers act only for apps that called this.
    events.comment_posted.connect(_on_comment_posted)
    events.comment_decided.connect(_on_comment_decided)
    events.author_acted.connect(_on_author_acted)
    app.register_blueprint(bp)
    # The POST checks its own CSRF token, except for the RFC 8058 one-click body (see there).
    csrf.exempt(unsubscribe)
    app.cli.add_command(notify_cli)


# ---------------------------------------------------------------------------------------------
# Signal receivers: enqueue, never fail the request
# ---------------------------------------------------------------------------------------------


def _active(sender: Any) -> bool:
    return isinstance(sender, Flask) and EXTENSION in sender.extensions


def _request_base_url() -> str | None:
    """Where links in mails point: ``PUBLIC_URL``, else the address this request came to."""
    configured = current_app.config.get("PUBLIC_URL")
    if configured:
        return str(configured)
    return request.url_root if has_request_context() else None


def _on_comment_posted(sender: Any, comment: Comment, **_: Any) -> None:
    if not _active(sender):
        return
    try:
        if comment.status == Status.PUBLISHED and comment.parent_id is not None:
            if not comment.shadow:  # a shadow-banned author's reply must stay invisible
                enqueue(send_reply_mail, comment.id, base_url=_request_base_url())
        elif comment.status == Status.PENDING and _digest_may_be_due(comment.site):
            enqueue(check_digest, comment.site_id, base_url=_request_base_url())
    except Exception:
        # Not comment.id: reading the comment may be what failed.
        log.exception("Could not queue the notifications of a comment")


def _on_author_acted(sender: Any, event: AuthorEvent, author: User | None, **_: Any) -> None:
    if not _active(sender):
        return
    try:
        # A ban or a suspension is told to the person, with the moderator's message; the
        # other actions (trust, pre-moderation, shadow ban) are the desk's business alone.
        if event.action in ("ban", "suspend") and author is not None:
            enqueue(send_author_action_mail, event.id, base_url=_request_base_url())
    except Exception:
        log.exception("Could not queue the mail about a moderator's action on an author")


@job("mail", retry=True)
def send_author_action_mail(event_id: int, base_url: str | None = None) -> None:
    """Tell an author they were banned or suspended on a site, with the moderator's message."""
    event = db.session.get(AuthorEvent, event_id)
    if event is None or event.user_id is None:
        return
    user = db.session.get(User, event.user_id)
    record = db.session.scalar(
        sa.select(SiteAuthor).where(
            SiteAuthor.site_id == event.site_id, SiteAuthor.user_id == event.user_id
        )
    )
    # Lifted again before the job ran (an undo, a second thought): nothing to tell.
    if record is None or (event.action == "ban" and not record.banned):
        return
    if event.action == "suspend" and (
        record.suspended_until is None or record.suspended_until <= utcnow()
    ):
        return
    address = user.email if user is not None and user.email and user.email_verified else None
    if address is None:
        return
    site = db.session.get(Site, event.site_id)
    context = {
        "name": user.display_name,
        "site_name": site.name,
        "banned": event.action == "ban",
        "until": event.until.strftime("%Y-%m-%d %H:%M UTC") if event.until else None,
        "message": event.message,
    }
    subject = (
        f"You can no longer comment on {_one_line(site.name, 80)}"
        if event.action == "ban"
        else f"Your comments on {_one_line(site.name, 80)} are suspended"
    )
    _send(
        address,
        subject,
        "author_action",
        context,
        once=_once("author-event", event_id, event.created_at),
    )


def _digest_may_be_due(site: Site) -> bool:
    """False when digests are off or one went out within the interval (no job needed)."""
    settings = _settings(site)
    if settings.digest_pending == 0 and settings.digest_minutes == 0:
        return False
    interval = timedelta(minutes=settings.digest_minutes or DEFAULT_DIGEST_MINUTES)
    # A burst of held comments after a digest costs one read here, not a job each.
    return site.digest_sent_at is None or utcnow() - site.digest_sent_at >= interval


def _on_comment_decided(sender: Any, comment: Comment, decision: Decision, **_: Any) -> None:
    if not _active(sender):
        return
    try:
        if decision.from_status != Status.PENDING:
            return  # only decisions on held comments are news to their authors
        base_url = _request_base_url()
        if decision.action in (Action.APPROVE, Action.REJECT):
            enqueue_in(
                float(current_app.config.get("NOTIFY_DECISION_DELAY") or 0),
                send_decision_mail,
                decision.id,
                base_url=base_url,
            )
        if decision.to_status == Status.PUBLISHED and comment.parent_id is not None:
            enqueue(send_reply_mail, comment.id, base_url=base_url)
    except Exception:
        # Not comment.id: reading the comment may be what failed.
        log.exception("Could not queue the notifications of a comment")


# ---------------------------------------------------------------------------------------------
# Links and sending
# ---------------------------------------------------------------------------------------------


def _base(base_url: str | None) -> str:
    base = base_url or current_app.config.get("PUBLIC_URL")
    if not base:
        log.warning("PUBLIC_URL is not set; links in notification mails point to localhost")
        base = "http://localhost:5000/"
    return str(base).rstrip("/")


def _url(base_url: str | None, endpoint: str, **values: Any) -> str:
    """An absolute link to ``endpoint`` (jobs run outside requests, so no ``url_for``)."""
    adapter = current_app.url_map.bind("localhost", script_name="/")
    return _base(base_url) + adapter.build(endpoint, values)


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=UNSUBSCRIBE_SALT)


def unsubscribe_token(user_id: int, kind: str) -> str:
    """A signed token that turns ``kind`` mails off for the user (no expiry: old mails work)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    return _serializer().dumps({"user": user_id, "kind": kind})


def read_unsubscribe_token(token: str) -> tuple[int, str] | None:
    """The user id and kind a token carries; None if it is not one we signed."""
    try:
        data = _serializer().loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    user_id, kind = data.get("user"), data.get("kind")
    if isinstance(user_id, bool) or not isinstance(user_id, int) or kind not in KINDS:
        return None
    return user_id, kind


def _excerpt(text: str) -> str:
    text = text.strip()
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1].rstrip() + "…"


def _one_line(text: str, limit: int = 200) -> str:
    # Header values: no line breaks, whatever a title contains.
    return " ".join(text.split())[:limit]


def _send(
    to: str,
    subject: str,
    template: str,
    context: Mapping[str, Any],
    unsubscribe_url: str | None = None,
    once: str | None = None,
) -> None:
    """Render ``emails/<template>.txt``/``.html`` and send it (once per ``once`` key)."""
    # A retried job (SMTP failed after accepting, a worker killed mid-job) must not send the
    # same mail twice: the server's acceptance is recorded before anything else can fail.
    if once is not None and already_done(once):
        log.warning("Mail %s was already sent; not sending it again", once)
        return
    text = render_template(f"emails/{template}.txt", **context)
    html = render_template(f"emails/{template}.html", **context)
    headers = {}
    if unsubscribe_url:
        # RFC 2369 and RFC 8058: mail clients show an unsubscribe button that POSTs here.
        headers["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    send_mail(
        to,
        _one_line(subject),
        text,
        html,
        headers,
        on_accepted=(lambda: record_done(once)) if once is not None else None,
    )


def _once(kind: str, row_id: int, created: datetime) -> str:
    """The done-marker key of one mail: the row it tells of (its time too: ids can be reused)."""
    return f"mail:{kind}:{row_id}:{created.isoformat()}"


def _settings(site: Site) -> SiteSettings:
    try:
        return site.moderation_settings
    except ValueError:
        return SiteSettings()


def _verified_address(user: User | None) -> str | None:
    if user is None or user.banned or not user.email or not user.email_verified:
        return None
    return user.email


# ---------------------------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------------------------


@job("mail", retry=True)
def send_decision_mail(decision_id: int, base_url: str | None = None) -> None:
    """Tell a held comment's author that a moderator approved or rejected it."""
    decision = db.session.get(Decision, decision_id)
    if decision is None or decision.from_status != Status.PENDING:
        return
    if decision.action not in (Action.APPROVE, Action.REJECT):
        return
    comment = decision.comment
    if comment.status != decision.to_status:
        return  # undone or decided again since: this decision is no longer news
    codes = {reason.get("code") for reason in decision.reasons or []}
    # The moderator's choice for this decision overrides the site's option.
    if "no_notification" in codes:
        return
    if "notify_author" not in codes and not _settings(comment.site).notify_authors:
        return

    approved = decision.action == Action.APPROVE
    user = comment.author
    unsubscribe_url = None
    if user is not None:
        address = _verified_address(user)
        if address is None or not notification_preferences(user)["notify_decisions"]:
            return
        unsubscribe_url = _url(
            base_url,
            "notifications.unsubscribe_page",
            token=unsubscribe_token(user.id, "decisions"),
        )
    elif comment.guest_email and approved:
        # A guest's address is unverified: it only ever hears good news about its own comment.
        address = comment.guest_email
    else:
        return

    note = next(
        (r.get("message") for r in decision.reasons or [] if r.get("code") == "moderator_note"),
        None,
    )
    thread = comment.thread
    context = {
        "name": comment.author_name,
        "site_name": comment.site.name,
        "article_title": thread.title or thread.url,
        "article_url": thread.url,
        "excerpt": _excerpt(comment.body),
        "approved": approved,
        "note": note if not approved else None,
        "unsubscribe_url": unsubscribe_url,
    }
    title = _one_line(thread.title or comment.site.name, 80)
    subject = (
        f"Your comment on “{title}” is published"
        if approved
        else f"Your comment on “{title}” was not published"
    )
    _send(
        address,
        subject,
        "decision",
        context,
        unsubscribe_url,
        once=_once("decision", decision_id, decision.created_at),
    )


@job("mail", retry=True)
def send_reply_mail(comment_id: int, base_url: str | None = None) -> None:
    """Tell a comment's author that someone replied to it (if they want to hear it)."""
    reply = db.session.get(Comment, comment_id)
    if reply is None or reply.status != Status.PUBLISHED or reply.shadow:
        return
    parent = reply.parent
    if parent is None or parent.status != Status.PUBLISHED or parent.author_id is None:
        return
    if parent.author_id == reply.author_id:
        return  # answering yourself is no news
    user = parent.author
    address = _verified_address(user)
    if user is None or address is None or not notification_preferences(user)["notify_replies"]:
        return
    unsubscribe_url = _url(
        base_url, "notifications.unsubscribe_page", token=unsubscribe_token(user.id, "replies")
    )
    thread = reply.thread
    context = {
        "name": user.display_name,
        "replier": reply.author_name,
        "site_name": reply.site.name,
        "article_title": thread.title or thread.url,
        "article_url": thread.url,
        "parent_excerpt": _excerpt(parent.body),
        "reply_excerpt": _excerpt(reply.body),
        "unsubscribe_url": unsubscribe_url,
        "account_url": _url(base_url, "auth_account.page"),
    }
    title = _one_line(thread.title or reply.site.name, 80)
    subject = f"{_one_line(reply.author_name, 60)} replied to your comment on “{title}”"
    _send(
        address,
        subject,
        "reply",
        context,
        unsubscribe_url,
        once=_once("reply", comment_id, reply.created_at),
    )


def _age(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [
        f"{n} {unit}{'' if n == 1 else 's'}"
        for n, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"))
        if n
    ]
    return " ".join(parts[:2])


def _top_reasons(site_id: int) -> list[tuple[str, int]]:
    rows = db.session.scalars(
        sa.select(Comment.reasons)
        .where(Comment.site_id == site_id, Comment.status == Status.PENDING)
        .order_by(Comment.created_at, Comment.id)
        .limit(REASON_SAMPLE)
    )
    counts: Counter[str] = Counter()
    for reasons in rows:
        counts.update(
            {str(r.get("code")) for r in reasons or [] if isinstance(r, dict) and r.get("code")}
        )
    return [
        (REASON_LABELS.get(code, code.replace("_", " ")), count)
        for code, count in counts.most_common(TOP_REASONS)
    ]


def _digest_recipients(site_id: int) -> list[User]:
    return list(
        db.session.scalars(
            sa.select(User)
            .join(SiteMembership, SiteMembership.user_id == User.id)
            .where(
                SiteMembership.site_id == site_id,
                SiteMembership.role.in_((SiteRole.MODERATOR, SiteRole.OWNER)),
                User.email.is_not(None),
                User.email_verified.is_(True),
                User.banned.is_(False),
            )
            .order_by(User.id)
        )
    )


@job("notifications", retry=True)
def check_digest(site_id: int, base_url: str | None = None) -> str | None:
    """Mail the site's moderators a digest if its Pending queue is due one; the site key if sent."""
    site = db.session.get(Site, site_id)
    if site is None:
        return None
    settings = _settings(site)
    if settings.digest_pending == 0 and settings.digest_minutes == 0:
        return None
    count, oldest = db.session.execute(
        sa.select(sa.func.count(Comment.id), sa.func.min(Comment.created_at)).where(
            Comment.site_id == site_id, Comment.status == Status.PENDING
        )
    ).one()
    if not count or oldest is None:
        return None
    now = utcnow()
    waited = now - oldest
    due = (settings.digest_pending > 0 and count >= settings.digest_pending) or (
        settings.digest_minutes > 0 and waited >= timedelta(minutes=settings.digest_minutes)
    )
    recipients = _digest_recipients(site_id) if due else []
    if not recipients:
        return None

    # Claim the digest with one conditional UPDATE: of two workers checking at once, one wins.
    interval = timedelta(minutes=settings.digest_minutes or DEFAULT_DIGEST_MINUTES)
    previous = site.digest_sent_at
    claimed = db.session.execute(
        sa.update(Site)
        .where(
            Site.id == site_id,
            sa.or_(Site.digest_sent_at.is_(None), Site.digest_sent_at <= now - interval),
        )
        .values(digest_sent_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None

    context = {
        "site_name": site.name,
        "count": count,
        "oldest_age": _age(waited),
        "reasons": _top_reasons(site_id),
        "queue_url": f"{_base(base_url)}/moderate?{urlencode({'site': site.key})}",
        "digest_pending": settings.digest_pending,
        "digest_minutes": settings.digest_minutes,
    }
    noun = "comment waits" if count == 1 else "comments wait"
    subject = f"{count} {noun} for review on {site.name}"
    failed = 0
    for user in recipients:
        try:
            _send(user.email or "", subject, "digest", {**context, "name": user.display_name})
        except MailError:
            failed += 1
    if failed == len(recipients):
        # Nobody got it: give the claim back so the retry (or the next check) sends it.
        db.session.execute(
            sa.update(Site)
            .where(Site.id == site_id, Site.digest_sent_at == now)
            .values(digest_sent_at=previous)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        raise MailError(f"Could not send the digest of site {site.key} to anyone.")
    return site.key


@notify_cli.command("digests")
def digests_command() -> None:
    """Send the moderators' digest of every site whose Pending queue is due one (for cron)."""
    pending = sa.exists().where(Comment.site_id == Site.id, Comment.status == Status.PENDING)
    site_ids = list(db.session.scalars(sa.select(Site.id).where(pending).order_by(Site.id)))
    sent: list[str] = []
    failed: list[int] = []
    for site_id in site_ids:
        try:
            key = check_digest(site_id)
        except Exception:
            db.session.rollback()
            log.exception("The digest of site %s failed", site_id)
            failed.append(site_id)
            continue
        if key is not None:
            sent.append(key)
    click.echo(json.dumps({"checked": len(site_ids), "sent": sent, "failed": len(failed)}))
    if failed:
        raise SystemExit(1)


# ---------------------------------------------------------------------------------------------
# Unsubscribing
# ---------------------------------------------------------------------------------------------


class UnsubscribeForm(FlaskForm):
    """The confirmation button: a POST with a CSRF token (mail scanners only GET)."""


def unsubscribe_user(user_id: int, kind: str) -> bool:
    """Turn ``kind`` mails off for the user, in one transaction; False if there is no such user."""
    try:
        user = db.session.scalar(sa.select(User).where(User.id == user_id).with_for_update())
        if user is None:
            db.session.rollback()
            return False
        # A new dict: JSON columns only see assignments.
        user.preferences = {**(user.preferences or {}), KINDS[kind]: False}
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return True


def _is_one_click() -> bool:
    """Whether this POST is exactly RFC 8058's ``List-Unsubscribe=One-Click`` and nothing else."""
    if request.mimetype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return False
    return request.form.to_dict(flat=False) == ONE_CLICK_BODY and not request.files


@bp.get("/unsubscribe/<token>")
def unsubscribe_page(token: str) -> tuple[str, int] | str:
    """Ask for a click: a GET changes nothing, since mail scanners open every link."""
    target = read_unsubscribe_token(token)
    if target is None:
        return render_template("notifications/unsubscribe.html", state="invalid"), 400
    return render_template(
        "notifications/unsubscribe.html",
        state="confirm",
        form=UnsubscribeForm(),
        token=token,
        what=KIND_NAMES[target[1]],
    )


@bp.post("/unsubscribe/<token>")
def unsubscribe(token: str) -> Response | tuple[str, int] | str:
    """Unsubscribe: the page's button (CSRF-checked), or a mail client's one-click POST."""
    target = read_unsubscribe_token(token)
    one_click = _is_one_click()
    if target is None:
        if one_click:
            return Response("This unsubscribe link is not valid.\n", 400, mimetype="text/plain")
        return render_template("notifications/unsubscribe.html", state="invalid"), 400
    user_id, kind = target
    if one_click:
        # RFC 8058: the mail client POSTs this body without our CSRF token; the signed link
        # itself proves the request comes from the mail's recipient.
        unsubscribe_user(user_id, kind)
        return Response("You are unsubscribed.\n", 200, mimetype="text/plain")
    form = UnsubscribeForm()
    if not form.validate_on_submit():
        return (
            render_template(
                "notifications/unsubscribe.html",
                state="confirm",
                form=form,
                token=token,
                what=KIND_NAMES[kind],
                expired=True,
            ),
            400,
        )
    # A deleted account gets the same answer: it receives nothing any more either.
    unsubscribe_user(user_id, kind)
    return render_template("notifications/unsubscribe.html", state="done", what=KIND_NAMES[kind])
