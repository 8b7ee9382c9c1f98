"""Comment bodies: clean what the author typed, and render a safe Markdown subset to HTML."""

from __future__ import annotations

import importlib.util
import re
import unicodedata
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.rules_inline.image import image as _parse_image

__all__ = ["MAX_BODY", "InvalidBody", "clean_body", "render_markdown"]

MAX_BODY = 5000

ALLOWED_TAGS = frozenset({"p", "br", "em", "strong", "a", "blockquote", "code", "pre"})
ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow ugc noopener"

# Bidi embeddings, overrides and isolates reorder the text around them ("Trojan Source"), so a
# comment could display differently from what moderators and the classifier read.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_KEEP_CONTROLS = frozenset("\n\t")
_LINE_BREAKS = re.compile(r"\r\n?|[\u2028\u2029]")
_GOOD_LINK = re.compile(r"(?:https?|mailto):", re.IGNORECASE)
# nh3 writes attributes in a fixed form and links never nest, so this matches exactly the
# anchors that lost their href.
_BARE_ANCHOR = re.compile(rf'<a rel="{re.escape(LINK_REL)}">(.*?)</a>', re.DOTALL)


class InvalidBody(ValueError):
    """A comment body that cannot be stored: empty or too long."""


def clean_body(raw: str) -> str:
    """The comment text to store: invisible controls removed, line breaks unified, trimmed."""
    text = _LINE_BREAKS.sub("\n", raw)
    text = "".join(
        ch
        for ch in text
        if ch in _KEEP_CONTROLS
        or not (
            ch in _BIDI_CONTROLS
            # Cc: C0/C1 controls including NUL; Cs: lone surrogates, which cannot be encoded
            or unicodedata.category(ch) in ("Cc", "Cs")
        )
    )
    text = text.strip()
    if not text:
        raise InvalidBody("comment is empty")
    if len(text) > MAX_BODY:
        raise InvalidBody(f"comment is {len(text):,} characters; the limit is {MAX_BODY:,}")
    return text


def _validate_link(url: str) -> bool:
    # Only absolute http(s) and mailto links become links; anything else (javascript:, data:,
    # relative paths that would point into our own iframe) stays visible as the text typed.
    url = url.strip()
    if _GOOD_LINK.match(url) is None:
        return False
    if url[:7].lower() == "mailto:":
        return len(url) > 7
    # nh3 drops an href it cannot parse and leaves a bare <a>; keep such links as text instead.
    try:
        parts = urlsplit(url)
        return bool(parts.hostname) and (parts.port is None or parts.port >= 0)
    except ValueError:
        return False


def _image_as_text(state: StateInline, silent: bool) -> bool:
    # With the image rule off, "![alt](url)" would render as "!" plus a link; show the whole
    # image syntax as the text the author typed instead.
    start = state.pos
    if not _parse_image(state, True):  # in silent mode it only moves state.pos past the image
        return False
    if not silent:
        token = state.push("text", "", 0)
        token.content = state.src[start : state.pos]
    return True


def _build_markdown() -> MarkdownIt:
    # linkify needs the optional linkify-it-py package; without it bare URLs stay plain text.
    linkify = importlib.util.find_spec("linkify_it") is not None
    md = MarkdownIt("zero", {"html": False, "breaks": True, "linkify": linkify})
    md.enable(["blockquote", "code", "fence"])
    md.enable(["newline", "escape", "emphasis", "link", "autolink", "backticks"])
    md.inline.ruler.before("link", "image_as_text", _image_as_text)
    if linkify:
        md.enable("linkify")
    md.validateLink = _validate_link  # type: ignore[method-assign]
    return md


_MARKDOWN = _build_markdown()
_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    # "*": no generic attributes; nh3 would otherwise keep "title" and "lang" on every tag
    attributes={"a": {"href"}, "*": set()},
    url_schemes=set(ALLOWED_SCHEMES),
    url_relative="deny",
    link_rel=LINK_REL,
    strip_comments=True,
)


def render_markdown(body: str) -> str:
    """Safe HTML for a comment body: a small Markdown subset, then sanitised by nh3."""
    # markdown-it escapes everything it does not turn into markup; nh3 is the last line of
    # defence in case a rule ever lets something through.
    html = _CLEANER.clean(_MARKDOWN.render(body))
    # nh3 removes an href it cannot parse (or whose scheme it refuses) but keeps the <a>; show
    # the link's text without the dead anchor.
    return _BARE_ANCHOR.sub(r"\1", html)
