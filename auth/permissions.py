"""Who may do what on which site: one policy for views, the API and the posting service.

Roles rank ``moderator < owner``; a global admin passes everywhere. A user without a staff
role on a site is told the site's objects do not exist (404), never that they are forbidden
(403), so that moderators of one site cannot learn what another site holds.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import sqlalchemy as sa
from flask import abort, g, request
from flask_login import current_user

from auth.models import Role, SiteRole, User
from moderation.db import utcnow
from moderation.extensions import db

if TYPE_CHECKING:
    from moderation.models import Site, SiteAuthor

__all__ = [
    "ROLE_RANK",
    "Permission",
    "can",
    "comment_refusal",
    "current_actor",
    "require_login",
    "require_site_role",
    "role_on",
    "site_author_of",
    "site_refusal",
]

P = ParamSpec("P")
R = TypeVar("R")

# Higher outranks lower; a global admin outranks every site role.
ROLE_RANK: dict[str, int] = {
    SiteRole.MODERATOR.value: 1,
    SiteRole.OWNER.value: 2,
    Role.ADMIN.value: 3,
}


class Permission(StrEnum):
    """What someone may want to do on a site."""

    COMMENT = "comment"
    MODERATE = "moderate"  # see the queue, decide on comments
    CONFIGURE = "configure"  # change the site's settings, origins, staff
    ADMIN = "admin"  # run the installation


# The least role each staff permission needs.
REQUIRED_ROLE: dict[Permission, str] = {
    Permission.MODERATE: SiteRole.MODERATOR.value,
    Permission.CONFIGURE: SiteRole.OWNER.value,
    Permission.ADMIN: Role.ADMIN.value,
}


def role_on(user: User | None, site: Site | None) -> str | None:
    """``"admin"``, ``"owner"`` or ``"moderator"`` for ``user`` on ``site``, else None."""
    if user is None or not getattr(user, "is_authenticated", True):
        return None
    if user.role == Role.ADMIN:
        return Role.ADMIN.value
    if site is None:
        return None
    return user.role_on(site)


def _outranks(role: str | None, minimum: str) -> bool:
    return role is not None and ROLE_RANK.get(role, 0) >= ROLE_RANK[minimum]


def site_refusal(record: SiteAuthor | None) -> str | None:
    """Why a site's moderators stopped an author (a user or a guest) commenting there, or None.

    ``record`` is the site's ``SiteAuthor`` row for the author (None: nothing decided).
    """
    if record is None:
        return None
    if record.banned:
        text = "You are banned from commenting on this site."
        return f"{text} {record.ban_message}" if record.ban_message else text
    if record.suspended_until is not None and record.suspended_until > utcnow():
        until = record.suspended_until.isoformat(timespec="seconds")
        text = f"You are suspended from commenting on this site until {until}."
        return f"{text} {record.suspend_message}" if record.suspend_message else text
    return None


def site_author_of(user: User, site: Site) -> SiteAuthor | None:
    """The site's record of ``user`` (bans, suspension, trust ...), if it has one."""
    from moderation.models import SiteAuthor  # moderation.models imports auth.models

    return db.session.scalar(
        sa.select(SiteAuthor).where(SiteAuthor.site_id == site.id, SiteAuthor.user_id == user.id)
    )


_LOOK_UP: Any = object()  # comment_refusal's default: find the site's record itself


def comment_refusal(
    user: User | None, site: Site, site_author: SiteAuthor | None = _LOOK_UP
) -> str | None:
    """Why ``user`` (None: a guest) may not comment on ``site`` now, or None if they may.

    The sentences are the posting service's; ``moderation.service`` should call this rule
    rather than keep its own copy, so that the API and the widget can never disagree. An
    account-wide ban or suspension comes first, then the site's own (``site_author``: the
    site's record of the user when the caller has already loaded it).
    """
    if user is None:
        try:
            allow_guests = site.moderation_settings.allow_guests
        except ValueError:
            allow_guests = False  # unreadable settings: fail closed
        return None if allow_guests else "Sign in to comment on this site."
    if user.banned:
        return "Your account is banned from commenting."
    if user.suspended_until is not None and user.suspended_until > utcnow():
        until = user.suspended_until.isoformat(timespec="seconds")
        return f"Your account is suspended until {until}."
    if site_author is _LOOK_UP:
        site_author = site_author_of(user, site)
    return site_refusal(site_author)


def can(user: User | None, action: Permission | str, site: Site | None = None) -> bool:
    """Whether ``user`` (None: anonymous) may do ``action`` on ``site``."""
    permission = Permission(action)
    if permission is Permission.ADMIN:
        return user is not None and user.role == Role.ADMIN
    if site is None:
        return False
    if permission is Permission.COMMENT:
        return comment_refusal(user, site) is None
    return _outranks(role_on(user, site), REQUIRED_ROLE[permission])


# ---------------------------------------------------------------------------------------------
# Decorators for views
# ---------------------------------------------------------------------------------------------


def current_actor() -> User | None:
    """Who signed this request: the JSON API's user if it resolved one, else the session's."""
    if "api_user" in g:
        # moderation.api resolves bearer tokens (and sessions with X-Requested-With) first.
        return g.api_user
    if current_user.is_authenticated:
        return current_user._get_current_object()  # type: ignore[no-any-return]
    return None


def require_login(view: Callable[P, R]) -> Callable[P, R]:
    """Answer 401 unless someone is signed in."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        if current_actor() is None:
            abort(401, description="Sign in first.")
        return view(*args, **kwargs)

    return wrapped


def _site_key(kwargs: dict[str, Any], argument: str) -> str | None:
    value = kwargs.get(argument)
    if value is None:
        value = request.args.get("site")
    return value if isinstance(value, str) else None


def require_site_role(
    minimum: SiteRole | Role | str, *, argument: str = "key"
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Let through staff of the view's site with at least ``minimum`` (admins always).

    The site key comes from the URL variable ``argument`` or the ``site`` query parameter; the
    site and the role are left in ``g.site`` and ``g.site_role``. Anonymous: 401. Not staff of
    that site (or no such site): 404. Staff below ``minimum``: 403.
    """
    needed = str(minimum)
    if needed not in ROLE_RANK:
        raise ValueError(f"Unknown role {needed!r}; use one of {', '.join(ROLE_RANK)}.")

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            from moderation.models import Site  # moderation.models imports auth.models

            user = current_actor()
            if user is None:
                abort(401, description="Sign in first.")
            key = _site_key(kwargs, argument)
            site = db.session.scalar(sa.select(Site).where(Site.key == key)) if key else None
            role = role_on(user, site)
            if site is None or role is None:
                abort(404, description=f"There is no site with the key “{key}” that you manage.")
            if not _outranks(role, needed):
                abort(403, description=f"This needs the {needed} role on the site.")
            g.site, g.site_role = site, role
            return view(*args, **kwargs)

        return wrapped

    return decorator
