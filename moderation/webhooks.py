"""Webhooks: signed POSTs of a site's comment events to URLs its owners choose.

A receiver of ``events.comment_posted`` / ``events.comment_decided`` queues one job; the job
stores a ``WebhookDelivery`` per subscribed webhook (the exact body) and queues its delivery.
Each delivery job POSTs the body with an HMAC-SHA256 signature, records the attempt, and
raises on failure so that ``moderation.jobs`` retries it with backoff (``JOBS_RETRY_DELAYS``).

Signature header (see docs/embedding.md, "Webhooks")::

    X-Comments-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

URLs must be http(s) and resolve to public addresses (no loopback, private, link-local ...),
checked when saved and again before every attempt (DNS may change), unless
``WEBHOOKS_ALLOW_PRIVATE`` is on (tests, development). Redirects are never followed.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from flask import Flask, current_app

from auth.models import User
from moderation import events
from moderation.db import utcnow
from moderation.extensions import db
from moderation.jobs import enqueue, job
from moderation.jobs import mode as jobs_mode
from moderation.models import Comment, Decision, Site, Thread, Webhook, WebhookDelivery

__all__ = [
    "EVENTS",
    "SIGNATURE_HEADER",
    "InvalidWebhook",
    "check_url",
    "create_webhook",
    "delete_webhook",
    "deliver",
    "deliveries",
    "fan_out",
    "init_app",
    "rotate_secret",
    "sign",
    "verify_signature",
    "webhooks_of",
]

log = logging.getLogger(__name__)

EVENTS = ("comment.created", "comment.decided")
SIGNATURE_HEADER = "X-Comments-Signature"
EXTENSION = "webhooks"
SECRET_BYTES = 32
MAX_URL = 2048
MAX_WEBHOOKS = 10  # per site: each event costs one request per webhook
LOG_SIZE = 50  # deliveries shown per webhook
SUBSCRIBED_SECONDS = 10.0  # how long "does this site have webhooks?" is remembered
TOLERANCE = 300  # seconds a receiver should accept between the signed time and its clock


class InvalidWebhook(ValueError):
    """A webhook URL or event list that cannot be used; the message says why."""


# ---------------------------------------------------------------------------------------------
# Signatures
# ---------------------------------------------------------------------------------------------


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    secret: str, body: bytes, header: str, *, now: float | None = None, tolerance: int = TOLERANCE
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance`` seconds of now."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False  # an old signed body replayed later
    expected = sign(secret, body, timestamp).rpartition("v1=")[2]
    return hmac.compare_digest(expected, given)


# ---------------------------------------------------------------------------------------------
# URL checks (SSRF)
# ---------------------------------------------------------------------------------------------


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_url(url: str, *, resolve: bool = True) -> str:
    """``url`` trimmed if a webhook may POST to it; InvalidWebhook with a sentence if not."""
    text = url.strip()
    if not text or len(text) > MAX_URL:
        raise InvalidWebhook(f"Give the webhook's URL (at most {MAX_URL} characters).")
    try:
        parts = urlsplit(text)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidWebhook(f"“{url}” is not a valid URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidWebhook("A webhook URL starts with https:// (or http://) and names a host.")
    if parts.username or parts.password:
        raise InvalidWebhook("A webhook URL must not contain a user name or password.")
    if current_app.config.get("WEBHOOKS_ALLOW_PRIVATE") or not resolve:
        return text
    try:
        found = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port)}
    except (socket.gaierror, UnicodeError):
        raise InvalidWebhook(f"The host “{parts.hostname}” could not be found.") from None
    if not found or not all(_public(address.split("%")[0]) for address in found):
        raise InvalidWebhook(
            f"The host “{parts.hostname}” is a private, loopback or reserved address; webhooks "
            "only go to public addresses."
        )
    return text


def _clean_events(chosen: Sequence[str]) -> list[str]:
    picked = [name for name in EVENTS if name in set(chosen)]
    unknown = sorted(set(chosen) - set(EVENTS))
    if unknown:
        raise InvalidWebhook(f"Unknown event {unknown[0]!r}; the events are {', '.join(EVENTS)}.")
    if not picked:
        raise InvalidWebhook("Choose at least one event.")
    return picked


# ---------------------------------------------------------------------------------------------
# Managing webhooks (the console calls these; each commits once)
# ---------------------------------------------------------------------------------------------


def webhooks_of(site: Site) -> list[Webhook]:
    """The site's webhooks, oldest first."""
    return list(
        db.session.scalars(
            sa.select(Webhook).where(Webhook.site_id == site.id).order_by(Webhook.id)
        )
    )


def create_webhook(site: Site, url: str, chosen: Sequence[str]) -> Webhook:
    """A new webhook for ``site`` with a fresh secret; InvalidWebhook for a bad URL or events."""
    cleaned = check_url(url)
    picked = _clean_events(chosen)
    count = db.session.scalar(
        sa.select(sa.func.count(Webhook.id)).where(Webhook.site_id == site.id)
    )
    if (count or 0) >= MAX_WEBHOOKS:
        raise InvalidWebhook(f"A site can have at most {MAX_WEBHOOKS} webhooks.")
    webhook = Webhook(
        site_id=site.id, url=cleaned, events=picked, secret=secrets.token_urlsafe(SECRET_BYTES)
    )
    db.session.add(webhook)
    db.session.commit()
    _forget_subscriptions(site.id)
    return webhook


def _find(site: Site, webhook_id: int) -> Webhook | None:
    return db.session.scalar(
        sa.select(Webhook).where(Webhook.id == webhook_id, Webhook.site_id == site.id)
    )


def rotate_secret(site: Site, webhook_id: int) -> Webhook | None:
    """Give the webhook a new secret (None: no such webhook on this site)."""
    webhook = _find(site, webhook_id)
    if webhook is None:
        return None
    webhook.secret = secrets.token_urlsafe(SECRET_BYTES)
    db.session.commit()
    return webhook


def delete_webhook(site: Site, webhook_id: int) -> bool:
    """Delete the webhook and its delivery log; False if the site has no such webhook."""
    webhook = _find(site, webhook_id)
    if webhook is None:
        return False
    db.session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook.id))
    db.session.delete(webhook)
    db.session.commit()
    _forget_subscriptions(site.id)
    return True


def deliveries(webhook: Webhook, limit: int = LOG_SIZE) -> list[WebhookDelivery]:
    """The webhook's latest deliveries, newest first."""
    return list(
        db.session.scalars(
            sa.select(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook.id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
            .limit(limit)
        )
    )


# ---------------------------------------------------------------------------------------------
# Payloads and signal receivers
# ---------------------------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None


def _comment_payload(comment: Comment, thread: Thread) -> dict[str, Any]:
    return {
        "id": comment.id,
        "article_url": thread.url,
        "article_title": thread.title,
        "parent_id": comment.parent_id,
        "author_name": comment.author_name,
        "author_id": comment.author_id,
        "body": comment.body,
        "status": str(comment.status),
        "shadow": comment.shadow,
        "spam_score": comment.spam_score,
        "abuse_score": comment.abuse_score,
        "reasons": comment.reasons or [],
        "created_at": _iso(comment.created_at),
    }


def _payload(event: str, comment: Comment, decision: Decision | None, actor: Any) -> dict[str, Any]:
    site = db.session.get(Site, comment.site_id)
    thread = db.session.get(Thread, comment.thread_id)
    data: dict[str, Any] = {
        "event": event,
        "site": site.key if site is not None else None,
        "sent_for": _iso(utcnow()),
        "comment": _comment_payload(comment, thread) if thread is not None else {"id": comment.id},
    }
    if decision is not None:
        data["decision"] = {
            "id": decision.id,
            "action": str(decision.action) if decision.action is not None else None,
            "from_status": str(decision.from_status) if decision.from_status else None,
            "to_status": str(decision.to_status),
            "reasons": decision.reasons or [],
            "moderator": (actor.display_name if isinstance(actor, User) else None),
            "created_at": _iso(decision.created_at),
        }
    return data


def _active(sender: Any) -> bool:
    return isinstance(sender, Flask) and EXTENSION in sender.extensions


def _known(app: Flask) -> dict[int, tuple[float, bool]]:
    return app.extensions.setdefault(f"{EXTENSION}.subscribed", {})


def _forget_subscriptions(site_id: int) -> None:
    _known(current_app._get_current_object()).pop(site_id, None)  # type: ignore[attr-defined]


def _subscribed(site_id: int, event: str) -> bool:
    """Whether any active webhook of the site exists (cheap: most sites have none)."""
    # Asked on every post and decision: remembered per site for SUBSCRIBED_SECONDS, so a
    # webhook created in another process starts receiving within that time.
    known = _known(current_app._get_current_object())  # type: ignore[attr-defined]
    now = time.monotonic()
    cached = known.get(site_id)
    if cached is not None and now - cached[0] < SUBSCRIBED_SECONDS:
        return cached[1]
    found = (
        db.session.scalar(
            sa.select(Webhook.id).where(Webhook.site_id == site_id, Webhook.active).limit(1)
        )
        is not None
    )
    known[site_id] = (now, found)
    return found


def _queue(event: str, comment: Comment, decision: Decision | None, actor: Any) -> None:
    try:
        if not _subscribed(comment.site_id, event):
            return
        body = json.dumps(_payload(event, comment, decision, actor), separators=(",", ":"))
        enqueue(fan_out, comment.site_id, event, body)
    except Exception:
        # A webhook must never fail the request that posted or decided the comment.
        log.exception("Could not queue the webhooks of an event")


def _on_comment_posted(sender: Any, comment: Comment, **_: Any) -> None:
    if _active(sender):
        _queue("comment.created", comment, None, None)


def _on_comment_decided(
    sender: Any, comment: Comment, decision: Decision, actor: Any = None, **_: Any
) -> None:
    if _active(sender):
        _queue("comment.decided", comment, decision, actor)


def init_app(app: Flask) -> None:
    """Listen to the comment signals (for this app) to deliver webhooks."""
    app.extensions[EXTENSION] = True
    events.comment_posted.connect(_on_comment_posted)
    events.comment_decided.connect(_on_comment_decided)


# ---------------------------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------------------------


@job("webhooks")
def fan_out(site_id: int, event: str, body: str) -> list[int]:
    """Store one delivery per subscribed webhook of the site (one transaction), queue each."""
    hooks = [
        hook
        for hook in db.session.scalars(
            sa.select(Webhook).where(Webhook.site_id == site_id, Webhook.active)
        )
        if event in (hook.events or [])
    ]
    rows = [WebhookDelivery(webhook_id=hook.id, event=event, body=body) for hook in hooks]
    db.session.add_all(rows)
    db.session.commit()
    ids = [row.id for row in rows]
    for delivery_id in ids:
        enqueue(deliver, delivery_id)
    return ids


class DeliveryFailed(Exception):
    """The receiver did not answer 2xx; raised so that the job is retried."""


def _attempts_allowed() -> int:
    if jobs_mode() == "sync":
        return 1  # inline jobs are never retried
    return 1 + len(current_app.config.get("JOBS_RETRY_DELAYS") or ())


@job("webhooks", retry=True, timeout=60)
def deliver(delivery_id: int) -> str:
    """POST one delivery's body, signed; record the attempt; raise to be retried on failure."""
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.status == "delivered":
        return "gone"
    webhook = db.session.get(Webhook, delivery.webhook_id)
    if webhook is None or not webhook.active:
        return "gone"
    body = delivery.body.encode()
    code: int | None = None
    error = ""
    try:
        url = check_url(webhook.url)  # again: the name may point elsewhere by now
        response = requests.post(
            url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "newsroom-comments-webhooks/1",
                "X-Comments-Event": delivery.event,
                "X-Comments-Delivery": str(delivery.id),
                SIGNATURE_HEADER: sign(webhook.secret, body, int(time.time())),
            },
            timeout=current_app.config.get("WEBHOOKS_TIMEOUT", 5),
            allow_redirects=False,  # a redirect could lead to a private address
        )
        code = response.status_code
        response.close()
        if not 200 <= code < 300:
            error = f"The receiver answered HTTP {code}."
    except InvalidWebhook as exc:
        error = str(exc)
    except requests.RequestException as exc:
        error = f"Could not reach the receiver ({type(exc).__name__})."
    delivery.attempts += 1
    delivery.last_attempt_at = utcnow()
    delivery.response_code = code
    delivery.error = error[:500]
    if not error:
        delivery.status = "delivered"
    elif delivery.attempts >= _attempts_allowed():
        delivery.status = "failed"
    else:
        delivery.status = "retrying"
    db.session.commit()
    if delivery.status == "retrying":
        raise DeliveryFailed(f"Webhook delivery {delivery.id}: {error}")
    return delivery.status
