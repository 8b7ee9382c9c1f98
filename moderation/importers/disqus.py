"""Disqus export files (Admin → Moderation → Export): threads, posts, authors and parents."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element

from moderation.importers.common import (
    MAX_GAP_BYTES,
    ImportFailed,
    SourceComment,
    SourceThread,
    author_email,
    author_name,
    local_name,
    parse_date,
    text_of,
)
from moderation.importers.common import xml_events as _xml_events
from moderation.status import Status

__all__ = ["disqus_status", "read_disqus"]


def _flag(value: str) -> bool:
    return value.strip().lower() in ("true", "1")


def disqus_status(is_deleted: bool, is_spam: bool, is_approved: bool = True) -> Status:
    """Our status for a post's isSpam, isDeleted (and, when present, isApproved) flags."""
    if is_spam:
        return Status.SPAM
    if is_deleted:
        return Status.DELETED
    return Status.PUBLISHED if is_approved else Status.PENDING


def _dsq_id(element: Element | None) -> str:
    """The ``dsq:id`` attribute, whatever prefix the file binds to the Disqus namespace."""
    if element is None:
        return ""
    for name, value in element.attrib.items():
        if local_name(name) == "id":
            return value.strip()
    return ""


def _children(element: Element) -> dict[str, Element]:
    return {local_name(child.tag): child for child in element}


def _thread(element: Element) -> SourceThread:
    fields = _children(element)
    thread_id = _dsq_id(element)
    if not thread_id:
        raise ImportFailed("A <thread> has no dsq:id.")
    return SourceThread(
        ref=f"disqus:thread-{thread_id}",
        url=text_of(fields.get("link")),
        title=text_of(fields.get("title")),
        created_at=parse_date(text_of(fields.get("createdAt"))),
        closed=_flag(text_of(fields.get("isClosed"))),
    )


def _post(element: Element) -> SourceComment:
    fields = _children(element)
    post_id = _dsq_id(element)
    if not post_id:
        raise ImportFailed("A <post> has no dsq:id.")
    thread_id = _dsq_id(fields.get("thread"))
    if not thread_id:
        raise ImportFailed(f"The post {post_id} names no thread.")
    created = parse_date(text_of(fields.get("createdAt")))
    if created is None:
        raise ImportFailed(f"The post {post_id} has no createdAt date.")
    author = _children(fields["author"]) if "author" in fields else {}
    flags = {name: text_of(fields.get(name)) for name in ("isDeleted", "isSpam", "isApproved")}
    parent_id = _dsq_id(fields.get("parent"))
    return SourceComment(
        ref=f"disqus:post-{post_id}",
        thread_ref=f"disqus:thread-{thread_id}",
        parent_ref=f"disqus:post-{parent_id}" if parent_id else None,
        author_name=author_name(text_of(author.get("name")) or text_of(author.get("username"))),
        author_email=author_email(text_of(author.get("email"))),
        html=(fields["message"].text or "") if "message" in fields else "",
        created_at=created,
        status=disqus_status(
            _flag(flags["isDeleted"]),
            _flag(flags["isSpam"]),
            not flags["isApproved"] or _flag(flags["isApproved"]),
        ),
        source_status=", ".join(f"{k}={v}" for k, v in flags.items() if v) or "no flags",
    )


def read_disqus(
    path: Path, *, progress: bool = True, max_gap: int = MAX_GAP_BYTES
) -> Iterator[SourceThread | SourceComment]:
    """Threads and posts of a Disqus export, streamed (Disqus lists every thread first)."""
    depth = 0
    root: Element | None = None
    for event, element in _xml_events(path, progress=progress, max_gap=max_gap):
        if event == "start":
            if depth == 0:
                if local_name(element.tag) != "disqus":
                    raise ImportFailed(
                        f"This is not a Disqus export: it starts with "
                        f"<{local_name(element.tag)}>, not <disqus>."
                    )
                root = element
            depth += 1
            continue
        depth -= 1
        if depth != 1 or root is None:
            continue
        name = local_name(element.tag)
        if name == "thread":
            yield _thread(element)
        elif name == "post":
            yield _post(element)
        # Done with it (categories too): free it so memory stays flat however long the file.
        element.clear()
        if len(root) and root[-1] is element:
            del root[-1]
