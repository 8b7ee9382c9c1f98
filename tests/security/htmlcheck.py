"""Find active HTML in a page the way a browser would see it (html5lib's HTML5 parser).

"Active" means something that can run script, load or frame content, send a form, restyle the
page or change where its links go: a ``<script>``, an ``on*`` handler, a ``javascript:`` /
``vbscript:`` / ``data:`` URL, a frame, plugin, ``<base>``, ``<meta http-equiv>``, ``<form>``,
``<svg>``, ``<math>``, ``<style>``, ``<link>`` or ``<template>`` element, or a ``style``
attribute that loads or evaluates something. A page's own templates have some of these (its
script files, its forms, the dashboard's SVG charts): tests compare a page with a *baseline*
page of the same kind built from harmless content, and flag any active item whose signature
the baseline lacks, and any active item that carries an XSS vector's marker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

import html5lib

from tests.security.xss_vectors import markers_in

__all__ = [
    "SANITISED_ATTRIBUTES",
    "SANITISED_TAGS",
    "Active",
    "active_items",
    "findings",
    "page_markers",
    "parse",
    "sanitised_problems",
    "signatures",
]

SVG_NS = "http://www.w3.org/2000/svg"
MATHML_NS = "http://www.w3.org/1998/Math/MathML"
XLINK_NS = "http://www.w3.org/1999/xlink"

# Elements that run, frame, embed, restyle or submit whatever they are given.
ACTIVE_ELEMENTS = frozenset(
    {
        "iframe", "frame", "frameset", "object", "embed", "applet", "portal", "base", "form",
        "svg", "math", "style", "link", "template", "isindex", "keygen",
    }
)  # fmt: skip
# Attributes a browser follows as a URL (or, for srcdoc, renders as a document).
URL_ATTRIBUTES = frozenset(
    {
        "href", "src", "action", "formaction", "xlink:href", "data", "poster", "background",
        "codebase", "dynsrc", "lowsrc", "code", "archive", "ping", "manifest", "icon",
    }
)  # fmt: skip
# SVG animation attributes that can set an href to their value.
SVG_VALUE_ATTRIBUTES = frozenset({"to", "from", "values", "by"})
RISKY_SCHEMES = ("javascript:", "vbscript:", "data:", "livescript:")
RISKY_STYLE = (
    "expression(", "url(", "javascript", "behavior", "-moz-binding", "@import", "position:fixed"
)  # fmt: skip
# Browsers drop ASCII tab and newline anywhere in a URL, and C0 controls and spaces around it.
_URL_IGNORED = re.compile(r"[\t\n\r]")
_CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_CSS_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})\s?")

# What the comment renderer (moderation/render.py) may produce, and nothing else.
SANITISED_TAGS = frozenset({"p", "br", "em", "strong", "a", "blockquote", "code", "pre"})
SANITISED_ATTRIBUTES = {"a": frozenset({"href", "rel"})}
SANITISED_SCHEMES = frozenset({"http", "https", "mailto"})


@dataclass(frozen=True)
class Active:
    """One active construct: which element, what makes it active, and the text it carries."""

    tag: str
    kind: str  # "script", "element", "handler", "url", "srcdoc", "style-attribute"
    name: str  # the attribute, the script's source path, or ""
    value: str  # the attribute value, or the element's attributes and text

    @property
    def signature(self) -> tuple[str, str, str]:
        """What makes two items "the same" across a page and its baseline (not the value)."""
        return (self.tag, self.kind, self.name)

    def __str__(self) -> str:
        shown = self.value if len(self.value) <= 160 else self.value[:157] + "..."
        return f"<{self.tag}> {self.kind} {self.name!s} {shown!r}"


def parse(html: str) -> Element:
    """``html`` parsed as a browser does (HTML5 tree building, entities decoded)."""
    return html5lib.parse(html, treebuilder="etree", namespaceHTMLElements=False)


def _local(name: str) -> tuple[str, str]:
    """(namespace, local name) of an element or attribute name from html5lib's etree."""
    if name.startswith("{"):
        namespace, _, local = name[1:].partition("}")
        return namespace, local
    return "", name


def _attribute_name(name: str) -> str:
    namespace, local = _local(name)
    return f"xlink:{local}" if namespace == XLINK_NS else local.lower()


def normalised_url(value: str) -> str:
    """A URL attribute as a browser reads its scheme: controls, spaces, tabs and newlines gone."""
    text = _URL_IGNORED.sub("", value)
    return text.strip("".join(chr(c) for c in range(0x21))).lower()


def risky_url(value: str, tag: str, attribute: str) -> bool:
    """Whether a URL attribute runs script or smuggles a document (``data:image`` on img: no)."""
    url = normalised_url(value)
    if not url.startswith(RISKY_SCHEMES):
        return False
    return not (url.startswith("data:image/") and tag == "img" and attribute == "src")


def risky_style(value: str) -> bool:
    """Whether a ``style`` attribute loads, binds or evaluates something."""
    text = _CSS_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), _CSS_COMMENT.sub("", value))
    text = "".join(text.split()).lower()
    return any(word in text for word in RISKY_STYLE)


def _text(element: Element) -> str:
    return "".join(element.itertext())


def _items_of(element: Element) -> Iterator[Active]:
    namespace, tag = _local(element.tag) if isinstance(element.tag, str) else ("", "")
    if not tag:
        return  # a comment or processing instruction: inert
    tag = tag.lower()
    attributes = {_attribute_name(name): value for name, value in element.attrib.items()}
    joined = " ".join(f"{name}={value}" for name, value in sorted(attributes.items()))
    if tag == "script":
        source = attributes.get("src") or attributes.get("href") or attributes.get("xlink:href")
        name = urlsplit(source).path if source else "inline"
        yield Active(tag, "script", name, f"{joined} {_text(element)}".strip())
    elif tag in ACTIVE_ELEMENTS and not (
        namespace in (SVG_NS, MATHML_NS) and tag not in ("svg", "math", "style")
    ):
        content = _text(element) if tag in ("style", "template") else ""
        yield Active(tag, "element", "", f"{joined} {content}".strip())
    elif tag == "meta" and "http-equiv" in attributes:
        yield Active(tag, "element", "http-equiv", joined)
    for name, value in attributes.items():
        if name.startswith("on"):
            yield Active(tag, "handler", name, value)
        elif name == "srcdoc":
            yield Active(tag, "srcdoc", name, value)
        elif name == "style" and risky_style(value):
            yield Active(tag, "style-attribute", name, value)
        elif (
            name in URL_ATTRIBUTES or (namespace == SVG_NS and name in SVG_VALUE_ATTRIBUTES)
        ) and risky_url(value, tag, name):
            yield Active(tag, "url", name, value)


def active_items(html: str | Element) -> list[Active]:
    """Every active construct in ``html`` (a page, or a parsed tree), in document order."""
    root = parse(html) if isinstance(html, str) else html
    return [item for element in root.iter() for item in _items_of(element)]


def signatures(pages: Iterable[str]) -> set[tuple[str, str, str]]:
    """The signatures of the active items of baseline pages."""
    return {item.signature for page in pages for item in active_items(page)}


def findings(html: str | Element, baseline: set[tuple[str, str, str]]) -> list[str]:
    """Active items the baseline does not have, or that carry a vector's marker (empty: safe)."""
    found = []
    for item in active_items(html):
        carried = markers_in(item.value)
        if carried:
            found.append(f"{item} carries {sorted(carried)}")
        elif item.signature not in baseline:
            found.append(f"{item} is not in the page's baseline")
    return found


def page_markers(html: str | Element) -> set[str]:
    """Markers anywhere a reader could see them: text and attribute values."""
    root = parse(html) if isinstance(html, str) else html
    parts = []
    for element in root.iter():
        parts.append(element.text or "")
        parts.append(element.tail or "")
        parts.extend(element.attrib.values())
    return markers_in("\n".join(parts))


def sanitised_problems(fragment: str) -> list[str]:
    """Why ``fragment`` is not the comment renderer's safe subset (empty: it is)."""
    root = html5lib.parseFragment(fragment, treebuilder="etree", namespaceHTMLElements=False)
    problems = [str(item) for item in active_items(root)]
    for element in root.iter():
        if element is root or not isinstance(element.tag, str):
            continue
        namespace, tag = _local(element.tag)
        if namespace or tag not in SANITISED_TAGS:
            problems.append(f"<{element.tag}> is not allowed in a comment")
            continue
        allowed = SANITISED_ATTRIBUTES.get(tag, frozenset())
        for name, value in element.attrib.items():
            if _attribute_name(name) not in allowed:
                problems.append(f"<{tag} {name}> is not allowed in a comment")
            elif name == "href" and urlsplit(normalised_url(value)).scheme not in SANITISED_SCHEMES:
                problems.append(f"<a href={value!r}> is not an http(s) or mailto link")
    return problems
