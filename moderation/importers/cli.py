"""``flask import wordpress|disqus FILE --site KEY`` and ``flask export --site KEY``."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from moderation.extensions import db
from moderation.importers.common import (
    ImportFailed,
    NotAComment,
    SourceComment,
    SourceThread,
    parse_origin_map,
    run_import,
)
from moderation.importers.disqus import read_disqus
from moderation.importers.export import export_ndjson, export_wxr
from moderation.importers.wordpress import read_wxr
from moderation.models import Site

__all__ = ["export_command", "import_group"]

Record = SourceThread | SourceComment | NotAComment

import_group = AppGroup(
    "import", help="Import comments from a WordPress (WXR) or Disqus export file."
)


class UsageProblem(click.ClickException):
    """A command line asking for something impossible (unknown site, bad option): exit code 2."""

    exit_code = 2


def _site(key: str) -> Site:
    site = db.session.scalar(sa.select(Site).where(Site.key == key))
    if site is None:
        raise UsageProblem(f"There is no site with the key {key!r}; `flask sites list` shows them.")
    return site


def _origin_map(pairs: tuple[str, ...]) -> dict[str, str]:
    try:
        return parse_origin_map(pairs)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None


_FILE = click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
_SITE = click.option(
    "--site", "site_key", required=True, help="The key of the site to import into."
)
_MAP = click.option(
    "--map-origin",
    "map_origin",
    multiple=True,
    metavar="OLD=NEW",
    help="Move posts from an old origin to one of the site's, e.g. "
    "http://blog.example=https://news.example (repeatable).",
)
_QUIET = click.option("--quiet", is_flag=True, help="No progress bar on stderr.")


def _run(
    source: str,
    records_of: Callable[..., Iterable[Record]],
    file: Path,
    site_key: str,
    map_origin: tuple[str, ...],
    quiet: bool,
) -> None:
    site = _site(site_key)
    mapping = _origin_map(map_origin)
    try:
        summary = run_import(site.key, source, records_of(file, progress=not quiet), mapping)
    except ImportFailed as exc:
        raise click.ClickException(f"{file.name}: {exc} Nothing was imported.") from None
    click.echo(json.dumps({"file": str(file), **summary.to_dict()}, ensure_ascii=False))


@import_group.command("wordpress")
@_FILE
@_SITE
@_MAP
@_QUIET
def import_wordpress(file: Path, site_key: str, map_origin: tuple[str, ...], quiet: bool) -> None:
    """Import a WordPress export (WXR): posts become threads, with their comments."""
    _run("WordPress", read_wxr, file, site_key, map_origin, quiet)


@import_group.command("disqus")
@_FILE
@_SITE
@_MAP
@_QUIET
def import_disqus(file: Path, site_key: str, map_origin: tuple[str, ...], quiet: bool) -> None:
    """Import a Disqus export: threads, posts, authors and replies."""
    _run("Disqus", read_disqus, file, site_key, map_origin, quiet)


@click.command("export")
@click.option("--site", "site_key", required=True, help="The key of the site to export.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["ndjson", "wxr"]),
    default="ndjson",
    show_default=True,
    help="ndjson: every thread, comment and decision; wxr: a WordPress import file.",
)
def export_command(site_key: str, fmt: str) -> None:
    """Write a site's threads and comments to stdout."""
    site = _site(site_key)
    out = sys.stdout
    if out.encoding.lower().replace("-", "") != "utf8" and isinstance(out, io.TextIOWrapper):
        out.reconfigure(encoding="utf-8")  # the WXR header says UTF-8, and names are unicode
    (export_ndjson if fmt == "ndjson" else export_wxr)(site, out)
    out.flush()
