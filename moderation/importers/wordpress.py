"""WordPress export files (WXR, Tools → Export): posts become threads, their comments ours."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element

from moderation.importers.common import (
    MAX_GAP_BYTES,
    ImportFailed,
    NotAComment,
    SourceComment,
    SourceThread,
    author_email,
    author_name,
    local_name,
    parse_date,
    source_ref,
    text_of,
    xml_events,
)
from moderation.status import Status

__all__ = ["STATUS_META_KEY", "read_wxr", "wordpress_status"]

WP_NAMESPACE = "{http://wordpress.org/export/"  # 1.0, 1.1 and 1.2 differ only in the version
# Our own comment meta (written by `flask export --format wxr`): the exact status, which
# WordPress's four states cannot tell apart (rejected and deleted are both "trash" there).
STATUS_META_KEY = "_moderation_status"
# comment_type values that are readers' comments; pingbacks, trackbacks and plugin types (shop
# order notes, reviews' private notes ...) are not imported.
COMMENT_TYPES = frozenset({"", "comment"})
_ITEM_FIELDS = frozenset(
    {"title", "link", "post_id", "post_date_gmt", "post_date", "comment_status", "post_name"}
)

WORDPRESS_STATUSES = {
    "1": Status.PUBLISHED,
    "approve": Status.PUBLISHED,
    "0": Status.PENDING,
    "hold": Status.PENDING,
    "spam": Status.SPAM,
    # Trash is a moderator taking a comment out; "post-trashed" went with its post.
    "trash": Status.REJECTED,
    "post-trashed": Status.REJECTED,
}


def wordpress_status(approved: str) -> Status:
    """Our status for a ``wp:comment_approved`` value; anything unknown waits for a moderator."""
    return WORDPRESS_STATUSES.get(approved.strip().lower(), Status.PENDING)


def _is_wp(tag: str) -> bool:
    return tag.startswith(WP_NAMESPACE)


def _detach(element: Element, parent: Element | None) -> None:
    # Done with it: empty it and drop it from its parent so memory stays flat however long
    # the file is (the parent is still being built, so the element is its last child).
    element.clear()
    if parent is not None and len(parent) and parent[-1] is element:
        del parent[-1]


def _comment(
    element: Element, base: str, thread_ref: str, post: str
) -> SourceComment | NotAComment:
    fields: dict[str, str] = {}
    meta: dict[str, str] = {}
    for child in element:
        if not _is_wp(child.tag):
            continue
        name = local_name(child.tag)
        if name == "commentmeta":
            key = value = ""
            for part in child:
                if local_name(part.tag) == "meta_key":
                    key = text_of(part)
                elif local_name(part.tag) == "meta_value":
                    value = text_of(part)
            meta[key] = value
        else:
            # comment_content keeps its own spacing (line breaks are paragraphs in WordPress).
            fields[name] = (child.text or "") if name == "comment_content" else text_of(child)
    comment_id = fields.get("comment_id", "")
    if not comment_id:
        raise ImportFailed(f"A comment on the post {post} has no wp:comment_id.")
    ref = source_ref("wordpress", base, f"comment-{comment_id}")
    kind = fields.get("comment_type", "").lower()
    if kind not in COMMENT_TYPES:
        return NotAComment(ref, kind)
    created = parse_date(fields.get("comment_date_gmt", "")) or parse_date(
        fields.get("comment_date", "")
    )
    if created is None:
        raise ImportFailed(f"The comment {comment_id} on the post {post} has no date.")
    approved = fields.get("comment_approved", "")
    status = wordpress_status(approved)
    if meta.get(STATUS_META_KEY) in set(Status):
        status = Status(meta[STATUS_META_KEY])
    parent = fields.get("comment_parent", "0")
    return SourceComment(
        ref=ref,
        thread_ref=thread_ref,
        parent_ref=source_ref("wordpress", base, f"comment-{parent}")
        if parent not in ("", "0")
        else None,
        author_name=author_name(fields.get("comment_author", "")),
        author_email=author_email(fields.get("comment_author_email", "")),
        html=fields.get("comment_content", ""),
        created_at=created,
        status=status,
        source_status=f"comment_approved={approved or 'missing'}",
    )


def read_wxr(
    path: Path, *, progress: bool = True, max_gap: int = MAX_GAP_BYTES
) -> Iterator[SourceThread | SourceComment | NotAComment]:
    """Threads and comments of a WXR file, streamed (a post's thread comes before its comments)."""
    stack: list[Element] = []
    base = channel_link = ""
    item: dict[str, str] = {}
    thread: SourceThread | None = None
    for event, element in xml_events(path, progress=progress, max_gap=max_gap):
        if event == "start":
            if not stack and local_name(element.tag) != "rss":
                raise ImportFailed(
                    f"This is not a WordPress export (WXR): it starts with "
                    f"<{local_name(element.tag)}>, not <rss>."
                )
            stack.append(element)
            if len(stack) == 3 and local_name(element.tag) == "item":
                item, thread = {}, None
            continue
        stack.pop()
        depth, parent = len(stack), (stack[-1] if stack else None)
        name = local_name(element.tag)
        if depth == 2 and parent is not None and local_name(parent.tag) == "channel":
            if name == "base_site_url" and _is_wp(element.tag):
                base = text_of(element)
            elif name == "link" and not _is_wp(element.tag):
                channel_link = text_of(element)
            _detach(element, parent)
        elif depth == 3 and parent is not None and local_name(parent.tag) == "item":
            if name == "comment" and _is_wp(element.tag):
                site = base or channel_link or "wordpress"
                post = item.get("post_id") or item.get("link", "")
                if thread is None:
                    thread = _thread(item, site)
                    yield thread
                yield _comment(element, site, thread.ref, post)
            elif name in _ITEM_FIELDS:
                item[name] = text_of(element)
            _detach(element, parent)
    if stack:  # iterparse raises first on a truncated file; this guards the impossible rest
        raise ImportFailed("The file ends before its last element is closed.")


def _thread(item: dict[str, str], base: str) -> SourceThread:
    link = item.get("link", "")
    post_id = item.get("post_id", "")
    if not link:
        raise ImportFailed(
            f"The post {post_id or item.get('title', '?')} has comments but no <link>."
        )
    return SourceThread(
        ref=source_ref("wordpress", base, f"post-{post_id}" if post_id else link),
        url=link,
        title=item.get("title", ""),
        created_at=parse_date(item.get("post_date_gmt", ""))
        or parse_date(item.get("post_date", "")),
        closed=item.get("comment_status", "") == "closed",
    )
