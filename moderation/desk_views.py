"""The moderators' review desk: HTML shells over the desk's JSON API (queue, audit log).

The pages carry no comment data: ``static/js/desk.js`` fetches it from ``/api/v1/moderation``
with the session cookie and ``X-Requested-With`` (the API's CSRF defence) and builds the cards
from text nodes. The views only decide who may open the desk and which sites they see.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from auth.models import Role, SiteMembership, User
from auth.permissions import current_actor
from moderation.extensions import db
from moderation.models import Site

__all__ = ["DeskSite", "bp", "desk_sites"]

bp = Blueprint("desk", __name__, url_prefix="/moderate")

QUEUES = ("pending", "reported", "spam", "approved", "rejected")
SORTS = (
    ("oldest", "Oldest first"),
    ("abuse", "Highest abuse"),
    ("spam", "Highest spam"),
    ("reports", "Most reported"),
)


@dataclass(frozen=True)
class DeskSite:
    """A site the signed-in person may moderate, for the site filter."""

    key: str
    name: str


def desk_sites(user: User) -> list[DeskSite]:
    """The sites ``user`` moderates (every site for a global admin), by name."""
    query = sa.select(Site.key, Site.name).order_by(Site.name, Site.id)
    if user.role != Role.ADMIN:
        query = query.join(SiteMembership, SiteMembership.site_id == Site.id).where(
            SiteMembership.user_id == user.id
        )
    return [DeskSite(key, name) for key, name in db.session.execute(query)]


def _staff_or_refuse() -> tuple[User, list[DeskSite], str | None] | Response:
    """The moderator, their sites and the chosen site; a redirect to the login page if anonymous.

    A signed-in person who moderates no site gets 403; a ``site`` they do not moderate gets 404,
    like the API, so the desk reveals nothing about other sites.
    """
    user = current_actor()
    if user is None:
        return redirect(url_for("auth_email_login.login", next=request.full_path.rstrip("?")))
    sites = desk_sites(user)
    if not sites and user.role != Role.ADMIN:
        abort(403, description="The review desk is for the moderators of a site.")
    chosen = request.args.get("site") or None
    if chosen is not None and chosen not in {site.key for site in sites}:
        abort(404, description=f"There is no site with the key “{chosen}” that you moderate.")
    return user, sites, chosen


@bp.get("")
def queue() -> Response | str:
    """The desk: queue tabs with counts, filters, comment cards and keyboard shortcuts."""
    checked = _staff_or_refuse()
    if isinstance(checked, Response):
        return checked
    user, sites, chosen = checked
    queue_name = request.args.get("queue", "pending")
    return render_template(
        "moderate/queue.html",
        moderator=user,
        sites=sites,
        chosen_site=chosen,
        queue=queue_name if queue_name in QUEUES else "pending",
        queues=QUEUES,
        sorts=SORTS,
    )


@bp.get("/audit")
def audit() -> Response | str:
    """The audit log: every decision with filters, a CSV export, and moderator activity."""
    checked = _staff_or_refuse()
    if isinstance(checked, Response):
        return checked
    user, sites, chosen = checked
    return render_template("moderate/audit.html", moderator=user, sites=sites, chosen_site=chosen)
