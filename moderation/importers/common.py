"""What the importers share: safe streaming XML, comment bodies, the one-transaction import."""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from xml.etree.ElementTree import Element, ParseError

import nh3
import sqlalchemy as sa
from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import iterparse
from markdownify import MarkdownConverter
from tqdm import tqdm

from moderation import desk
from moderation.db import utcnow
from moderation.extensions import db
from moderation.models import ActorType, Comment, Decision, Site, Thread, normalise_origin
from moderation.render import MAX_BODY, InvalidBody, clean_body, render_markdown
from moderation.service import Invalid, _body_hash, canonical_url, recount_threads
from moderation.status import Status

__all__ = [
    "MAX_GAP_BYTES",
    "ImportFailed",
    "ImportSummary",
    "NotAComment",
    "SourceComment",
    "SourceThread",
    "html_to_body",
    "parse_origin_map",
    "run_import",
    "source_ref",
    "xml_events",
]

log = logging.getLogger(__name__)

# The most bytes the parser may read without finishing an element: an export's largest
# element is one comment's text, far below this, while a file that is one giant text node (or
# attribute) would otherwise be held in memory whole.
MAX_GAP_BYTES = 8 * 1024 * 1024
BATCH_SIZE = 500
MAX_SOURCE_HTML = 20 * MAX_BODY
REF_LENGTH = 300  # the import_ref columns
AUTHOR_NAME_LIMIT = 100
EMAIL_LIMIT = 254
TITLE_LIMIT = 500
EXAMPLES_KEPT = 20  # invalid comments listed by id in the summary (all are counted)
ANONYMOUS = "Anonymous"
# What a removed comment's empty body becomes, so its replies keep their place in the thread.
REMOVED_BODY = "[deleted]"

# Tags of source HTML kept for markdownify: what our Markdown subset has, and blocks whose
# separation matters (headings and divs become paragraphs, list items lines); the rest become
# their text.
_SOURCE_TAGS = {"p", "br", "a", "em", "i", "strong", "b", "blockquote", "code", "pre", "div",
                "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6"}  # fmt: skip
_BLOCK = re.compile(r"<(?:p|div|blockquote|pre|ul|ol|h[1-6])\b", re.IGNORECASE)
_TRAILING_BREAK = re.compile(r"[ \t]+\n")  # markdownify's "  \n" breaks; breaks need no spaces here


class ImportFailed(Exception):
    """An export file that cannot be imported; nothing of it was stored."""


@dataclass(frozen=True)
class SourceThread:
    """An article (a WordPress post, a Disqus thread) as the export file describes it."""

    ref: str
    url: str
    title: str
    created_at: datetime | None
    closed: bool = False


@dataclass(frozen=True)
class SourceComment:
    """One comment as the export file describes it, its body still the source's HTML."""

    ref: str
    thread_ref: str
    parent_ref: str | None
    author_name: str
    author_email: str | None
    html: str
    created_at: datetime
    status: Status
    source_status: str  # as the file says it, for the moderators' reason


@dataclass(frozen=True)
class NotAComment:
    """Something the file lists among comments that is not a reader's comment (a pingback ...)."""

    ref: str
    kind: str


@dataclass
class ImportSummary:
    """What an import did, printed as JSON by the command."""

    source: str
    site: str
    threads_created: int = 0
    threads_existing: int = 0
    comments_created: int = 0
    comments_already_imported: int = 0
    comments_invalid: int = 0
    not_comments: int = 0  # pingbacks, trackbacks, shop order notes ...
    parents_missing: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    invalid_examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data."""
        return {
            "source": self.source,
            "site": self.site,
            "threads": {"created": self.threads_created, "existing": self.threads_existing},
            "comments": {
                "created": self.comments_created,
                "already_imported": self.comments_already_imported,
                "invalid": self.comments_invalid,
                "not_comments": self.not_comments,
                "parents_missing": self.parents_missing,
                "by_status": dict(sorted(self.by_status.items())),
            },
            "invalid_examples": self.invalid_examples,
        }


# ---------------------------------------------------------------------------------------------
# Reading the file
# ---------------------------------------------------------------------------------------------


class _ByteReader:
    """A binary file that advances a progress bar and refuses oversized elements as it is read."""

    def __init__(self, raw: IO[bytes], progress: tqdm[Any], max_gap: int) -> None:
        self.raw = raw
        self.progress = progress
        self.max_gap = max_gap
        self.position = 0
        self.mark = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.position += len(data)
        self.progress.update(len(data))
        if self.position - self.mark > self.max_gap:
            raise ImportFailed(
                f"An element near byte {self.mark:,} is longer than {self.max_gap:,} bytes; "
                "no export has comments that long, so the file is refused."
            )
        return data


def xml_events(
    path: Path, *, progress: bool = True, max_gap: int = MAX_GAP_BYTES
) -> Iterator[tuple[str, Element]]:
    """("start" | "end", element) of ``path``, streamed; no DTD, entities or external references."""
    with (
        path.open("rb") as raw,
        tqdm(
            total=path.stat().st_size,
            unit="B",
            unit_scale=True,
            desc=path.name[:30],
            disable=not progress,
        ) as bar,
    ):
        reader = _ByteReader(raw, bar, max_gap)
        try:
            # forbid_dtd: exports never carry a DOCTYPE, and refusing it stops entity expansion
            # ("billion laughs") and external entities before they are even declared.
            for event, element in iterparse(
                reader,
                events=("start", "end"),
                forbid_dtd=True,
                forbid_entities=True,
                forbid_external=True,
            ):
                reader.mark = reader.position
                yield event, element
        except DTDForbidden:
            raise ImportFailed(
                "The file declares a DTD (<!DOCTYPE ...>), which WordPress and Disqus exports "
                "never do; it is refused (entity expansion and external entities are XML attacks)."
            ) from None
        except EntitiesForbidden:
            raise ImportFailed("The file declares XML entities; it is refused.") from None
        except ExternalReferenceForbidden:
            raise ImportFailed("The file refers to an external resource; it is refused.") from None
        except ParseError as exc:
            raise ImportFailed(
                f"The file is not well-formed XML ({exc}); is it complete?"
            ) from None


def local_name(tag: str) -> str:
    """A tag or attribute name without its namespace."""
    return tag.rsplit("}", 1)[-1]


def text_of(element: Element | None) -> str:
    """The element's text, stripped ("" when missing)."""
    if element is None or element.text is None:
        return ""
    return element.text.strip()


def source_ref(kind: str, base: str, local: str) -> str:
    """A stable id for something in an export, short enough for the import_ref columns."""
    ref = f"{kind}:{base}#{local}"
    if len(ref) > REF_LENGTH:
        digest = hashlib.sha256(base.encode()).hexdigest()[:24]
        ref = f"{kind}:{digest}#{local}"[:REF_LENGTH]
    return ref


def parse_date(value: str) -> datetime | None:
    """An export's date ("2024-05-01 09:30:00" or ISO 8601) as UTC; None when empty or zero."""
    value = value.strip()
    if not value or value.startswith("0000-00-00"):
        return None
    try:
        moment = datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def author_name(value: str) -> str:
    """A display name that fits the column."""
    name = " ".join(value.split())[:AUTHOR_NAME_LIMIT]
    return name or ANONYMOUS


def author_email(value: str) -> str | None:
    """A lower-cased e-mail address, or None when the file's value is not one."""
    address = value.strip().lower()
    local, at, domain = address.partition("@")
    if not (local and at and domain) or len(address) > EMAIL_LIMIT:
        return None
    if any(ch.isspace() for ch in address):
        return None
    return address


def thread_title(value: str) -> str:
    """A thread title that fits the column."""
    return " ".join(value.split())[:TITLE_LIMIT]


# ---------------------------------------------------------------------------------------------
# Comment bodies
# ---------------------------------------------------------------------------------------------

_PREFILTER = nh3.Cleaner(
    tags=_SOURCE_TAGS,
    attributes={"a": {"href"}, "*": set()},
    url_schemes={"http", "https", "mailto"},
    url_relative="deny",
    strip_comments=True,
)


class _Converter(MarkdownConverter):
    """markdownify, writing headings as paragraphs (our subset has no headings)."""

    def convert_hN(self, n: int, el: Any, text: str, parent_tags: set[str]) -> str:
        return self.convert_p(el, text, parent_tags)


_TO_MARKDOWN = _Converter(autolinks=True, bullets="-")


def _split_paragraphs(text: str) -> list[list[str]]:
    # WordPress stores comments as typed and adds <p> and <br> only when showing them
    # (wpautop): a blank line separates paragraphs, a single newline breaks the line.
    paragraphs = re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n"))
    return [[line for line in p.strip().split("\n")] for p in paragraphs if p.strip()]


def _paragraphs(text: str) -> str:
    return "".join("<p>" + "<br>\n".join(lines) + "</p>" for lines in _split_paragraphs(text))


def _plain_to_body(text: str) -> str:
    # What markdownify makes of _paragraphs(text) when the text has no markup: spaces
    # collapsed, * and _ escaped. Most comments are such plain text, and this is ~50x faster
    # than parsing it as HTML.
    def line(words: str) -> str:
        return " ".join(words.split()).replace("*", "\\*").replace("_", "\\_")

    paragraphs = (
        "\n".join(x for x in (line(w) for w in lines) if x) for lines in _split_paragraphs(text)
    )
    return "\n\n".join(p for p in paragraphs if p)


def html_to_body(html: str) -> str:
    """The Markdown-subset text we store for a source's HTML body (before ``clean_body``)."""
    if "<" not in html and "&" not in html:
        return _plain_to_body(html)
    return _html_path_to_body(html)


def _html_path_to_body(html: str) -> str:
    source = html if _BLOCK.search(html) else _paragraphs(html)
    # nh3 first drops scripts and styles with their content, and any link that is not http(s)
    # or mailto; markdownify then writes what is left as the Markdown our renderer reads.
    markdown = _TO_MARKDOWN.convert(_PREFILTER.clean(source))
    return _TRAILING_BREAK.sub("\n", markdown).strip()


# ---------------------------------------------------------------------------------------------
# Origins
# ---------------------------------------------------------------------------------------------


def parse_origin_map(pairs: Iterable[str]) -> dict[str, str]:
    """``--map-origin OLD=NEW`` values as {old origin: new origin}; ValueError if malformed."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep:
            raise ValueError(
                "--map-origin takes OLD=NEW, like http://old.example=https://new.example; "
                f"got {pair!r}."
            )
        mapping[normalise_origin(old)] = normalise_origin(new)
    return mapping


# ---------------------------------------------------------------------------------------------
# The import: one transaction, comments in batches, parents fixed up at the end
# ---------------------------------------------------------------------------------------------

_PARENTS = sa.table(
    "import_parents", sa.column("comment_id", sa.BigInteger), sa.column("parent_ref", sa.String)
)


class _Import:
    """The state of one import inside its transaction."""

    def __init__(self, site: Site, source: str, origin_map: dict[str, str]) -> None:
        self.site = site
        self.source = source
        self.origin_map = origin_map
        self.summary = ImportSummary(source=source.lower(), site=site.key)
        self.threads: dict[str, SourceThread] = {}  # announced, not needed yet
        self.thread_ids: dict[str, int] = {}  # created or found
        self.batch: list[tuple[int, SourceComment]] = []  # with their thread ids
        self.comments = Comment.__table__
        self.decisions = Decision.__table__

    # threads ---------------------------------------------------------------------------------

    def article_url(self, source: SourceThread) -> str:
        try:
            url = canonical_url(source.url)
        except Invalid:
            raise ImportFailed(
                f"The post {source.ref} has the link {source.url!r}, which is not an article URL."
            ) from None
        parts = url.split("/", 3)
        origin, rest = "/".join(parts[:3]), "/" + (parts[3] if len(parts) > 3 else "")
        origin = self.origin_map.get(origin, origin)
        if origin not in self.site.origins:
            raise ImportFailed(
                f"The post “{source.title or source.url}” is at {url}, on {origin}, which is not "
                f"one of the site's origins ({', '.join(self.site.origins) or 'none set'}). Add "
                f"{origin} to the site (flask sites update {self.site.key} --origin ..., listing "
                f"every origin), or map it: --map-origin {origin}=NEW_ORIGIN."
            )
        return origin + rest

    def thread_id(self, ref: str) -> int:
        if ref in self.thread_ids:
            return self.thread_ids[ref]
        source = self.threads.pop(ref, None)
        if source is None:
            raise ImportFailed(
                f"A comment belongs to the thread {ref}, which the file does not describe "
                "before it."
            )
        url = self.article_url(source)
        session = db.session
        found = session.execute(
            sa.select(Thread.id, Thread.import_ref)
            .where(
                Thread.site_id == self.site.id,
                sa.or_(Thread.import_ref == ref, Thread.url == url),
            )
            # The thread this post made before first, then one with the same URL.
            .order_by(sa.case((Thread.import_ref == ref, 0), else_=1))
            .limit(1)
        ).first()
        if found is not None:
            thread_id = found.id
            self.summary.threads_existing += 1
            if found.import_ref is None:
                session.execute(
                    sa.update(Thread.__table__)
                    .where(Thread.__table__.c.id == thread_id)
                    .values(import_ref=ref)
                )
        else:
            thread = Thread(
                site_id=self.site.id,
                url=url,
                title=thread_title(source.title),
                closed=source.closed,
                created_at=source.created_at or utcnow(),
                import_ref=ref,
            )
            session.add(thread)
            session.flush()
            thread_id = thread.id
            self.summary.threads_created += 1
        self.thread_ids[ref] = thread_id
        return thread_id

    # comments --------------------------------------------------------------------------------

    def invalid(self, ref: str, why: str) -> None:
        self.summary.comments_invalid += 1
        if len(self.summary.invalid_examples) < EXAMPLES_KEPT:
            self.summary.invalid_examples.append(f"{ref}: {why}")

    def add(self, source: SourceComment) -> None:
        # The thread now, so a post on a foreign origin fails at its first comment.
        self.batch.append((self.thread_id(source.thread_ref), source))
        if len(self.batch) >= BATCH_SIZE:
            self.flush()

    def row(self, thread_id: int, source: SourceComment) -> dict[str, Any] | None:
        """The comments-table row for ``source``, or None (counted) if it cannot be stored."""
        if len(source.html) > MAX_SOURCE_HTML:  # not worth converting to learn it is too long
            self.invalid(
                source.ref,
                f"comment is {len(source.html):,} characters of HTML; the limit is "
                f"{MAX_BODY:,} characters of text",
            )
            return None
        text = html_to_body(source.html)
        if not text and source.status in (Status.DELETED, Status.REJECTED, Status.SPAM):
            text = REMOVED_BODY
        try:
            body = clean_body(text)
        except InvalidBody as exc:
            self.invalid(source.ref, str(exc))
            return None
        reason = {
            "code": "imported",
            "message": f"imported from {self.source}, where its status was {source.source_status}",
        }
        return {
            "thread_id": thread_id,
            "site_id": self.site.id,
            "author_id": None,
            "author_name": source.author_name,
            "guest_email": source.author_email,
            "body": body,
            "html": render_markdown(body),
            "status": source.status,
            "reasons": [reason],
            "body_hash": _body_hash(body),
            "created_at": source.created_at,
            "updated_at": source.created_at,
            "import_ref": source.ref,
        }

    def flush(self) -> None:
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        session = db.session
        # Which are already here, before converting any body: a second run is mostly this.
        existing = set(
            session.scalars(
                sa.select(self.comments.c.import_ref).where(
                    self.comments.c.site_id == self.site.id,
                    self.comments.c.import_ref.in_([source.ref for _, source in batch]),
                )
            )
        )
        rows: list[dict[str, Any]] = []
        parents: dict[str, str] = {}
        for thread_id, source in batch:
            if source.ref in existing:  # imported before, or twice in this file
                self.summary.comments_already_imported += 1
                continue
            existing.add(source.ref)
            row = self.row(thread_id, source)
            if row is None:
                continue
            rows.append(row)
            if source.parent_ref is not None:
                parents[source.ref] = source.parent_ref
        if not rows:
            return
        inserted = session.execute(
            sa.insert(self.comments).returning(
                self.comments.c.id, self.comments.c.import_ref, sort_by_parameter_order=True
            ),
            rows,
        ).all()
        session.execute(
            sa.insert(self.decisions),
            [
                {
                    "comment_id": comment_id,
                    "site_id": self.site.id,
                    "actor_type": ActorType.SYSTEM,
                    "action": None,
                    "from_status": None,
                    "to_status": row["status"],
                    "reasons": row["reasons"],
                    "created_at": row["created_at"],
                }
                for (comment_id, _), row in zip(inserted, rows, strict=True)
            ],
        )
        links = [
            {"comment_id": comment_id, "parent_ref": parents[ref]}
            for comment_id, ref in inserted
            if ref in parents
        ]
        if links:
            session.execute(sa.insert(_PARENTS), links)
        self.summary.comments_created += len(rows)
        self.summary.by_status.update(str(row["status"]) for row in rows)

    # the end ---------------------------------------------------------------------------------

    def link_parents(self) -> None:
        comments, parent = self.comments, self.comments.alias("parent")
        # A parent must be in the same thread and older (ties broken by id): a total order, so
        # a crafted file cannot make a comment its own ancestor.
        older = sa.or_(
            parent.c.created_at < comments.c.created_at,
            sa.and_(parent.c.created_at == comments.c.created_at, parent.c.id < comments.c.id),
        )
        parent_id = (
            sa.select(parent.c.id)
            .select_from(
                _PARENTS.join(
                    parent,
                    sa.and_(
                        parent.c.site_id == self.site.id,
                        parent.c.import_ref == _PARENTS.c.parent_ref,
                    ),
                )
            )
            .where(
                _PARENTS.c.comment_id == comments.c.id,
                parent.c.thread_id == comments.c.thread_id,
                older,
            )
            .limit(1)
            .scalar_subquery()
        )
        db.session.execute(
            sa.update(comments)
            .where(comments.c.id.in_(sa.select(_PARENTS.c.comment_id)))
            .values(parent_id=parent_id)
        )
        self.summary.parents_missing = (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(_PARENTS.join(comments, comments.c.id == _PARENTS.c.comment_id))
                .where(comments.c.parent_id.is_(None))
            )
            or 0
        )

    def recount(self) -> None:
        recount_threads(self.thread_ids.values(), BATCH_SIZE)


def _create_parents_table() -> None:
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(
            "CREATE TEMPORARY TABLE import_parents (comment_id BIGINT PRIMARY KEY, "
            "parent_ref VARCHAR(300) NOT NULL) ON COMMIT DROP"
        )
    else:
        connection.exec_driver_sql(
            "CREATE TEMPORARY TABLE IF NOT EXISTS import_parents (comment_id INTEGER PRIMARY KEY, "
            "parent_ref VARCHAR(300) NOT NULL)"
        )
        connection.exec_driver_sql("DELETE FROM import_parents")


def _drop_parents_table() -> None:
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":  # PostgreSQL drops it at COMMIT
        connection.exec_driver_sql("DROP TABLE import_parents")


def run_import(
    site_key: str,
    source: str,
    records: Iterable[SourceThread | SourceComment | NotAComment],
    origin_map: dict[str, str] | None = None,
) -> ImportSummary:
    """Store ``records`` in the site in one transaction: all of them, or nothing on any error."""
    site = db.session.scalar(sa.select(Site).where(Site.key == site_key))
    if site is None:
        raise ImportFailed(f"There is no site with the key {site_key!r}.")
    work = _Import(site, source, origin_map or {})
    try:
        _create_parents_table()
        for record in records:
            if isinstance(record, SourceThread):
                if record.ref not in work.thread_ids:
                    work.threads[record.ref] = record
            elif isinstance(record, NotAComment):
                work.summary.not_comments += 1
            else:
                work.add(record)
        work.flush()
        work.link_parents()
        work.recount()
        _drop_parents_table()
        db.session.commit()
    except BaseException:
        db.session.rollback()
        # Close the reader now (its progress bar, its file) rather than whenever it is
        # collected, so the bar ends before the error is printed.
        close = getattr(records, "close", None)
        if close is not None:
            close()
        raise
    desk.invalidate_counts(site.id)
    log.info("Imported %s into site %s: %s", source, site.key, work.summary.to_dict())
    return work.summary
