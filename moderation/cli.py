"""``flask sites ...`` and ``flask users ...``: JSON on stdout, a sentence on stderr on failure.

Other tools call these commands (ARCHITECTURE.md, Contracts 3); keep their output stable.
Exit codes: 0 done, 2 the command line asked for something impossible (bad value, unknown key).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import Any

import click
import sqlalchemy as sa
from flask import Flask
from flask.cli import AppGroup

from auth.models import ApiToken, Role, SiteMembership, SiteRole, User
from moderation.demo import seed as seed_demo_site
from moderation.extensions import db
from moderation.importers.cli import export_command, import_group
from moderation.models import Site, normalise_origin
from moderation.policy import SiteSettings

__all__ = ["demo", "register_commands", "sites", "users"]

USER_ROLES = ("moderator", "owner", "admin")
SITE_NAME_LIMIT = 200  # the lengths of the columns
USER_NAME_LIMIT = 100

sites = AppGroup("sites", help="Create, change and list the sites that embed comments.")
users = AppGroup("users", help="Create users, give them roles and API tokens.")
demo = AppGroup("demo", help="The demo newspaper, The Millbrook Courier.")


class CommandError(click.ClickException):
    """A refused command: the message goes to stderr, the exit code is 2."""

    exit_code = 2


def register_commands(app: Flask) -> None:
    """Add the command groups to ``app.cli``."""
    app.cli.add_command(sites)
    app.cli.add_command(users)
    app.cli.add_command(demo)
    app.cli.add_command(import_group)  # import wordpress|disqus FILE --site KEY
    app.cli.add_command(export_command)  # export --site KEY [--format wxr]
    from moderation.privacy import privacy_cli  # it imports the API, which imports much

    app.cli.add_command(privacy_cli)  # flask privacy purge|export|erase


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False))


def site_json(site: Site) -> dict[str, Any]:
    """The JSON the commands print for a site."""
    return {
        "site": site.key,
        "name": site.name,
        "origins": list(site.origins),
        "settings": _settings_of(site).to_dict(),
    }


def _settings_of(site: Site) -> SiteSettings:
    try:
        return site.moderation_settings
    except ValueError as exc:
        raise CommandError(f"Site {site.key} has invalid stored settings: {exc}") from None


def _parse_settings(pairs: Iterable[str]) -> dict[str, str]:
    updates: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise CommandError(f"--setting takes NAME=VALUE, like mode=pre; got {pair!r}.")
        updates[name.strip()] = value
    return updates


def _apply_settings(settings: SiteSettings, pairs: Iterable[str]) -> SiteSettings:
    try:
        return settings.with_updates(_parse_settings(pairs))
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def _origins(values: Iterable[str]) -> list[str]:
    origins: list[str] = []
    for value in values:
        try:
            origin = normalise_origin(value)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if origin not in origins:
            origins.append(origin)
    return origins


def _name(value: str, limit: int) -> str:
    name = " ".join(value.split())
    if not name:
        raise CommandError("--name must not be empty.")
    if len(name) > limit:
        raise CommandError(f"--name must be at most {limit} characters long.")
    return name


def _get_site(key: str) -> Site:
    site = db.session.scalar(sa.select(Site).where(Site.key == key))
    if site is None:
        raise CommandError(f"There is no site with the key {key!r}; `flask sites list` shows them.")
    return site


@sites.command("create")
@click.option("--name", required=True, help="The site's name, shown to moderators.")
@click.option(
    "--origin",
    "origins",
    multiple=True,
    required=True,
    help="An origin allowed to embed the widget, like https://news.example (repeatable).",
)
@click.option("--setting", "settings", multiple=True, metavar="NAME=VALUE", help="(repeatable)")
def create_site(name: str, origins: tuple[str, ...], settings: tuple[str, ...]) -> None:
    """Create a site and print its public key."""
    site = Site(
        name=_name(name, SITE_NAME_LIMIT),
        origins=_origins(origins),
        settings=_apply_settings(SiteSettings(), settings).to_dict(),
    )
    db.session.add(site)
    db.session.commit()
    _echo_json(site_json(site))


@sites.command("update")
@click.argument("key")
@click.option("--setting", "settings", multiple=True, metavar="NAME=VALUE", help="(repeatable)")
@click.option("--name", default=None, help="A new name.")
@click.option(
    "--origin", "origins", multiple=True, help="Replace the allowed origins (repeatable)."
)
def update_site(
    key: str, settings: tuple[str, ...], name: str | None, origins: tuple[str, ...]
) -> None:
    """Change a site's moderation settings, name or origins."""
    if not (settings or name is not None or origins):
        raise CommandError("Nothing to change: give --setting NAME=VALUE, --name or --origin.")
    site = _get_site(key)
    if settings:
        site.moderation_settings = _apply_settings(_settings_of(site), settings)
    if name is not None:
        site.name = _name(name, SITE_NAME_LIMIT)
    if origins:
        site.origins = _origins(origins)
    db.session.commit()
    _echo_json(site_json(site))


@sites.command("list")
def list_sites() -> None:
    """Print every site."""
    rows = db.session.scalars(sa.select(Site).order_by(Site.id))
    _echo_json({"sites": [site_json(site) for site in rows]})


@sites.command("show")
@click.argument("key")
def show_site(key: str) -> None:
    """Print one site."""
    _echo_json(site_json(_get_site(key)))


@users.command("create")
@click.option("--email", required=True, help="The user's e-mail address (reused if it exists).")
@click.option(
    "--role",
    type=click.Choice(USER_ROLES),
    default=None,
    help="moderator or owner of --site, or admin of everything; default: commenter.",
)
@click.option("--site", "site_key", default=None, help="The site key for moderator or owner.")
@click.option("--name", default=None, help="Display name; default: the e-mail's local part.")
@click.option("--token", is_flag=True, help="Issue an API token and print it (shown only once).")
def create_user(
    email: str, role: str | None, site_key: str | None, name: str | None, token: bool
) -> None:
    """Create a user (or reuse one by e-mail), give them a role and optionally an API token."""
    address = email.strip().lower()
    local, at, domain = address.partition("@")
    if (
        not (local and at and "." in domain)
        or len(address) > 254
        or any(c.isspace() for c in address)
    ):
        raise CommandError(f"{email!r} is not an e-mail address.")
    if role in (SiteRole.MODERATOR, SiteRole.OWNER) and site_key is None:
        raise CommandError(f"--role {role} needs --site KEY, the site the role is on.")
    if site_key is not None and role not in (SiteRole.MODERATOR, SiteRole.OWNER):
        raise CommandError("--site only goes with --role moderator or --role owner.")
    site = _get_site(site_key) if site_key is not None else None

    user = db.session.scalar(sa.select(User).where(User.email == address))
    if user is None:
        display_name = _name(name, USER_NAME_LIMIT) if name is not None else local[:USER_NAME_LIMIT]
        user = User(email=address, display_name=display_name, role=Role.COMMENTER)
        db.session.add(user)
    elif name is not None:
        user.display_name = _name(name, USER_NAME_LIMIT)
    if role == Role.ADMIN:
        user.role = Role.ADMIN
    if site is not None and role is not None:
        _grant(user, site, SiteRole(role))

    plain = None
    if token:
        api_token, plain = ApiToken.issue(user, name="cli")
        db.session.add(api_token)
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        # Another command created the same user or membership at the same moment.
        db.session.rollback()
        raise click.ClickException(f"{address} was changed concurrently; run again.") from None

    result: dict[str, Any] = {"user_id": user.id, "email": user.email, "role": role or user.role}
    if site is not None:
        result["site"] = site.key
    if plain is not None:
        result["token"] = plain
    _echo_json(result)


def _grant(user: User, site: Site, role: SiteRole) -> None:
    membership = None
    if user.id is not None:
        membership = db.session.scalar(
            sa.select(SiteMembership).where(
                SiteMembership.user_id == user.id, SiteMembership.site_id == site.id
            )
        )
    if membership is None:
        db.session.add(SiteMembership(user=user, site=site, role=role))
    else:
        membership.role = role


@demo.command("seed")
@click.option("--reset", is_flag=True, help="Delete the demo site and its people, then rebuild.")
def seed_demo(reset: bool) -> None:
    """Create the demo site, articles, accounts and comments; print them (tokens once)."""
    _echo_json(seed_demo_site(reset=reset))


SSO_SECRET_BYTES = 32  # 256 bits, HS256's own output size


@sites.command("sso-secret")
@click.argument("key")
def sso_secret(key: str) -> None:
    """Generate a new single sign-on secret for a site and print it (shown only once)."""
    site = _get_site(key)
    # A new secret at once voids every token signed with the old one.
    site.sso_secret = secrets.token_urlsafe(SSO_SECRET_BYTES)
    db.session.commit()
    _echo_json({"site": site.key, "sso_secret": site.sso_secret})
