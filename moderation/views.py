"""The public HTML pages: the demo front page and article pages with their comments.

Health, readiness and metrics are in moderation/ops.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, render_template, request

from moderation import security
from moderation.demo import DEMO_SITE_KEY, article_for
from moderation.extensions import db
from moderation.models import Comment, Site, Thread
from moderation.status import Status

__all__ = ["CommentNode", "bp", "comment_tree"]

bp = Blueprint("site", __name__)

FRONT_PAGE_THREADS = 50
THEMES = ("light", "dark", "auto")


@dataclass
class CommentNode:
    """A published comment and its published replies, for rendering."""

    comment: Comment
    replies: list[CommentNode] = field(default_factory=list)


def comment_tree(comments: list[Comment]) -> list[CommentNode]:
    """Nest ``comments`` (in display order) under their parents; orphans become top-level."""
    nodes = {comment.id: CommentNode(comment) for comment in comments}
    roots: list[CommentNode] = []
    for comment in comments:
        parent = nodes.get(comment.parent_id) if comment.parent_id is not None else None
        # A reply whose parent is not shown (held, removed) still appears, at the top level.
        (parent.replies if parent is not None else roots).append(nodes[comment.id])
    return roots


def _embed_host() -> str:
    """Where the demo pages load the widget from: the service as *another* origin.

    ``DEMO_EMBED_HOST`` sets it; otherwise pages viewed on localhost use 127.0.0.1 and the other
    way round (same port), so the demo exercises the cross-origin path a customer's page does.
    """
    configured = current_app.config.get("DEMO_EMBED_HOST")
    if configured:
        embed_host = str(configured).rstrip("/")
    else:
        host, _, port = request.host.partition(":")
        other = "localhost" if host == "127.0.0.1" else "127.0.0.1"
        embed_host = f"{request.scheme}://{other}{':' + port if port else ''}"
    # The page's CSP: embed.js comes from there, frames the thread and fetches counts from there.
    for directive in ("script-src", "frame-src", "connect-src"):
        security.allow_sources(directive, embed_host)
    return embed_host


def _first_site() -> Site | None:
    # The demo newspaper when it exists (other sites may have been created before it).
    return db.session.scalar(
        sa.select(Site).order_by((Site.key == DEMO_SITE_KEY).desc(), Site.id).limit(1)
    )


@bp.get("/")
def index() -> str:
    """The demo front page: the articles of the first site."""
    site = _first_site()
    threads: list[Thread] = []
    if site is not None:
        threads = list(
            db.session.scalars(
                sa.select(Thread)
                .where(Thread.site_id == site.id)
                .order_by(Thread.created_at.desc(), Thread.id.desc())
                .limit(FRONT_PAGE_THREADS)
            )
        )
    return render_template("site/index.html", site=site, threads=threads, embed_host=_embed_host())


@bp.get("/articles/<slug>")
def article(slug: str) -> str:
    """An article of the first site with its published comments, rendered on the server."""
    site = _first_site()
    if site is None:
        abort(404)
    # Demo pages only: the first site's article whose URL ends in /<slug>. A LIKE with a leading
    # wildcard scans that site's threads, which is fine for a handful of demo articles.
    pattern = "%/" + slug.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    thread = db.session.scalar(
        sa.select(Thread)
        .where(Thread.site_id == site.id, Thread.url.like(pattern, escape="\\"))
        .order_by(Thread.id)
        .limit(1)
    )
    if thread is None:
        abort(404)
    comments = list(
        db.session.scalars(
            sa.select(Comment)
            .where(Comment.thread_id == thread.id, Comment.status == Status.PUBLISHED)
            .order_by(Comment.created_at, Comment.id)
        )
    )
    return render_template(
        "site/article.html",
        embed_host=_embed_host(),
        # The demo lets readers try the widget's themes: /articles/<slug>?theme=dark.
        theme=request.args.get("theme") if request.args.get("theme") in THEMES else None,
        site=site,
        thread=thread,
        comments=comment_tree(comments),
        comment_total=len(comments),
        story=article_for(site.key, slug),  # the demo articles' text; None for real sites
    )
