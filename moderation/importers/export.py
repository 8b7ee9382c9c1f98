"""A site's threads and comments out again: NDJSON (everything) or WXR (for WordPress)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any
from xml.sax.saxutils import escape

import sqlalchemy as sa

from moderation.db import utcnow
from moderation.extensions import db
from moderation.importers.wordpress import STATUS_META_KEY
from moderation.models import Comment, Decision, Site, Thread
from moderation.status import Status

__all__ = ["export_ndjson", "export_wxr"]

STREAM = 1000  # rows fetched at a time: memory stays flat on sites of any size

# What WordPress's comment_approved says for each of our statuses (STATUS_META_KEY keeps ours).
WXR_APPROVED = {
    Status.PUBLISHED: "1",
    Status.PENDING: "0",
    Status.SPAM: "spam",
    Status.REJECTED: "trash",
    Status.DELETED: "trash",
}
# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _rows(query: sa.Select[Any]) -> Iterator[sa.RowMapping]:
    result = db.session.execute(query.execution_options(yield_per=STREAM))
    yield from result.mappings()


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def _line(out: IO[str], kind: str, row: dict[str, Any]) -> None:
    data = {"type": kind, **{key: _json_value(value) for key, value in row.items()}}
    out.write(json.dumps(data, ensure_ascii=False, sort_keys=False) + "\n")


def export_ndjson(site: Site, out: IO[str]) -> dict[str, int]:
    """Write the site, its threads, comments and decisions as JSON lines; counts written."""
    threads, comments, decisions = Thread.__table__, Comment.__table__, Decision.__table__
    _line(
        out,
        "site",
        {
            "key": site.key,
            "name": site.name,
            "origins": list(site.origins),
            "settings": dict(site.settings or {}),
            "created_at": site.created_at,
            "exported_at": utcnow(),
        },
    )
    counts = {"threads": 0, "comments": 0, "decisions": 0}
    for kind, table in (("thread", threads), ("comment", comments), ("decision", decisions)):
        # ip_hash is a keyed hash only this installation can use; it leaves nothing useful.
        columns = [c for c in table.c if c.name not in ("site_id", "ip_hash")]
        for row in _rows(
            sa.select(*columns).where(table.c.site_id == site.id).order_by(table.c.id)
        ):
            _line(out, kind, dict(row))
            counts[kind + "s"] += 1
    return counts


def _xml(value: str | None) -> str:
    return escape(_NOT_XML.sub("", value or ""))


def _wp_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def export_wxr(site: Site, out: IO[str]) -> dict[str, int]:
    """Write the site's threads and comments as a WordPress export (WXR 1.2); counts written."""
    base = site.origins[0] if site.origins else f"https://{site.key}.invalid"
    out.write(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:excerpt="http://wordpress.org/export/1.2/excerpt/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:wp="http://wordpress.org/export/1.2/">\n<channel>\n'
        f"<title>{_xml(site.name)}</title>\n<link>{_xml(base)}</link>\n"
        "<wp:wxr_version>1.2</wp:wxr_version>\n"
        f"<wp:base_site_url>{_xml(base)}</wp:base_site_url>\n"
        f"<wp:base_blog_url>{_xml(base)}</wp:base_blog_url>\n"
    )
    threads, comments = Thread.__table__, Comment.__table__
    counts = {"threads": 0, "comments": 0}
    thread_rows = _rows(
        sa.select(threads).where(threads.c.site_id == site.id).order_by(threads.c.id)
    )
    # Comments in thread order, walked alongside the threads (one query each, both streamed).
    comment_rows = _rows(
        sa.select(comments)
        .where(comments.c.site_id == site.id)
        .order_by(comments.c.thread_id, comments.c.id)
    )
    pending = next(comment_rows, None)
    for thread in thread_rows:
        counts["threads"] += 1
        out.write(
            f"<item>\n<title>{_xml(thread['title'])}</title>\n<link>{_xml(thread['url'])}</link>\n"
            f"<wp:post_id>{thread['id']}</wp:post_id>\n"
            f"<wp:post_date_gmt>{_wp_date(thread['created_at'])}</wp:post_date_gmt>\n"
            f"<wp:comment_status>{'closed' if thread['closed'] else 'open'}</wp:comment_status>\n"
            "<wp:status>publish</wp:status>\n<wp:post_type>post</wp:post_type>\n"
        )
        while pending is not None and pending["thread_id"] == thread["id"]:
            _write_comment(out, pending)
            counts["comments"] += 1
            pending = next(comment_rows, None)
        out.write("</item>\n")
    out.write("</channel>\n</rss>\n")
    return counts


def _write_comment(out: IO[str], comment: sa.RowMapping) -> None:
    status = Status(comment["status"])
    out.write(
        "<wp:comment>\n"
        f"<wp:comment_id>{comment['id']}</wp:comment_id>\n"
        f"<wp:comment_author>{_xml(comment['author_name'])}</wp:comment_author>\n"
        f"<wp:comment_author_email>{_xml(comment['guest_email'])}</wp:comment_author_email>\n"
        f"<wp:comment_date_gmt>{_wp_date(comment['created_at'])}</wp:comment_date_gmt>\n"
        # The sanitised rendering: WordPress shows comment HTML as it is.
        f"<wp:comment_content>{_xml(comment['html'])}</wp:comment_content>\n"
        f"<wp:comment_approved>{WXR_APPROVED[status]}</wp:comment_approved>\n"
        "<wp:comment_type>comment</wp:comment_type>\n"
        f"<wp:comment_parent>{comment['parent_id'] or 0}</wp:comment_parent>\n"
        f"<wp:commentmeta><wp:meta_key>{STATUS_META_KEY}</wp:meta_key>"
        f"<wp:meta_value>{status.value}</wp:meta_value></wp:commentmeta>\n"
        "</wp:comment>\n"
    )
