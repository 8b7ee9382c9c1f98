"""Comment bodies: cleaning what authors type and rendering the safe Markdown subset."""

from __future__ import annotations

import importlib.util
import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moderation.render import MAX_BODY, InvalidBody, clean_body, render_markdown

ALLOWED_TAGS = {"p", "br", "em", "strong", "a", "blockquote", "code", "pre"}
SAFE_SCHEMES = ("http:", "https:", "mailto:")
DANGEROUS_SCHEMES = ("javascript:", "data:", "vbscript:")
REL = "nofollow ugc noopener"
HAS_LINKIFY = importlib.util.find_spec("linkify_it") is not None


class Page(HTMLParser):
    """Every tag, attribute and piece of text in an HTML fragment."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.other: list[str] = []  # comments, declarations, processing instructions
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        self.other.append(data)

    def handle_decl(self, decl: str) -> None:
        self.other.append(decl)

    def handle_pi(self, data: str) -> None:
        self.other.append(data)

    def unknown_decl(self, data: str) -> None:
        self.other.append(data)

    @property
    def visible(self) -> str:
        return "".join(self.text)

    @property
    def hrefs(self) -> list[str]:
        return [attrs.get("href") or "" for tag, attrs in self.tags if tag == "a"]


def scheme_of(url: str) -> str:
    """The scheme a browser would read: case, whitespace and control characters ignored."""
    return re.sub(r"[\x00-\x20\x7f]", "", url).lower()


def assert_safe(html: str) -> Page:
    """Only allowed tags and attributes, and only http(s)/mailto links."""
    page = Page(html)
    assert page.other == []
    for tag, attrs in page.tags:
        assert tag in ALLOWED_TAGS, html
        if tag == "a":
            assert set(attrs) <= {"href", "rel"}, html
            assert attrs.get("rel") == REL, html
        else:
            assert attrs == {}, html
        for value in attrs.values():
            assert not scheme_of(value or "").startswith(DANGEROUS_SCHEMES), html
    for href in page.hrefs:
        assert scheme_of(href).startswith(SAFE_SCHEMES), html
    return page


# ---------------------------------------------------------------------------------------------
# Allowed constructs
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param("plain words", "<p>plain words</p>", id="paragraph"),
        pytest.param("one\n\ntwo", "<p>one</p>\n<p>two</p>", id="paragraphs"),
        pytest.param("line one\nline two", "<p>line one<br>\nline two</p>", id="line-break"),
        pytest.param("*soft* and _soft_", "<em>soft</em> and <em>soft</em>", id="emphasis"),
        pytest.param("**loud** __loud__", "<strong>loud</strong> <strong>loud</strong>",
                     id="strong"),
        pytest.param(
            "[the article](https://news.example/a?b=1&c=2)",
            f'<a href="https://news.example/a?b=1&amp;c=2" rel="{REL}">the article</a>',
            id="link",
        ),
        pytest.param(
            '[titled](http://news.example "Title")',
            f'<a href="http://news.example" rel="{REL}">titled</a>',
            id="link-title-dropped",
        ),
        pytest.param(
            "[write](mailto:desk@news.example)",
            f'<a href="mailto:desk@news.example" rel="{REL}">write</a>',
            id="mailto",
        ),
        pytest.param(
            "<https://news.example>",
            f'<a href="https://news.example" rel="{REL}">https://news.example</a>',
            id="autolink",
        ),
        pytest.param("> quoted\n> text", "<blockquote>\n<p>quoted<br>\ntext</p>\n</blockquote>",
                     id="blockquote"),
        pytest.param("use `a < b` here", "<p>use <code>a &lt; b</code> here</p>", id="inline-code"),
        pytest.param("```python\nif a < b:\n    pass\n```",
                     "<pre><code>if a &lt; b:\n    pass\n</code></pre>", id="fenced-code"),
        pytest.param("    indented <code>", "<pre><code>indented &lt;code&gt;\n</code></pre>",
                     id="indented-code"),
        pytest.param(r"\*not emphasis\*", "<p>*not emphasis*</p>", id="backslash-escape"),
    ],
)  # fmt: skip
def test_allowed_constructs_render(body: str, expected: str) -> None:
    html = render_markdown(body)
    assert expected in html
    assert_safe(html)


@pytest.mark.skipif(HAS_LINKIFY, reason="linkify-it-py is installed, bare URLs become links")
def test_bare_urls_stay_text_without_linkify() -> None:
    assert render_markdown("see https://news.example") == "<p>see https://news.example</p>\n"


@pytest.mark.skipif(not HAS_LINKIFY, reason="linkify-it-py is not installed")
def test_bare_urls_become_links_with_linkify() -> None:
    html = render_markdown("see https://news.example")
    assert assert_safe(html).hrefs == ["https://news.example"]


def test_every_link_gets_rel() -> None:
    html = render_markdown("[a](https://a.example) <https://b.example> [c](mailto:c@d.example)")
    page = assert_safe(html)
    assert [attrs["rel"] for tag, attrs in page.tags if tag == "a"] == [REL, REL, REL]


# ---------------------------------------------------------------------------------------------
# Everything else is shown as typed
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("![a chart](https://img.example/chart.png)", id="image"),
        pytest.param('look ![x](https://img.example/x.png "t") here', id="image-inline"),
        pytest.param("# Headline", id="heading"),
        pytest.param("Headline\n===", id="setext-heading"),
        pytest.param("<script>alert(1)</script>", id="script"),
        pytest.param("<b>bold</b> <i>it</i>", id="raw-html"),
        pytest.param('<img src="x" onerror="alert(1)">', id="raw-img"),
        pytest.param("<!-- hidden -->", id="html-comment"),
        pytest.param('<a href="javascript:alert(1)">x</a>', id="raw-link"),
        pytest.param("| a | b |\n|---|---|\n| 1 | 2 |", id="table"),
        pytest.param("- one\n- two", id="list"),
        pytest.param("1. one", id="ordered-list"),
        pytest.param("~~struck~~", id="strikethrough"),
        pytest.param("---", id="rule"),
        pytest.param("[ref]\n\n[ref]: https://a.example", id="reference"),
        pytest.param("&copy; &amp; &#60;", id="entities"),
        pytest.param("[relative](/admin)", id="relative-link"),
        pytest.param("<http://exa mple.com> <http://a:b:c>", id="unparseable-autolinks"),
    ],
)
def test_disallowed_constructs_come_out_as_text(body: str) -> None:
    page = assert_safe(render_markdown(body))
    assert {tag for tag, _ in page.tags} <= {"p", "br"}
    # every character the author typed is still visible (line breaks become <br>)
    assert page.visible.replace("\n", "") == body.replace("\n", "")


def test_image_inside_a_link_is_text() -> None:
    page = assert_safe(render_markdown("[![logo](https://img.example/l.png)](https://a.example)"))
    assert page.hrefs == ["https://a.example"]
    assert page.visible.strip() == "![logo](https://img.example/l.png)"


# ---------------------------------------------------------------------------------------------
# Dangerous links
# ---------------------------------------------------------------------------------------------

PAYLOADS = {
    "javascript": "[x](javascript:alert(1))",
    "mixed-case": "[x](JaVaScRiPt:alert(1))",
    "hex-entity": "[x](jav&#x61;script:alert(1))",
    "hex-entity-first": "[x](&#x6A;avascript:alert(1))",
    "decimal-entities": "[x](&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;:alert(1))",
    "named-colon": "[x](javascript&colon;alert(1))",
    "tab-inside": "[x](java\tscript:alert(1))",
    "newline-inside": "[x](java\nscript:alert(1))",
    "leading-spaces": "[x](  javascript:alert(1))",
    "angle-brackets": "[x](<javascript:alert(1)>)",
    "percent-encoded": "[x](%6A%61%76%61script:alert(1))",
    "control-prefix": "[x](\x01javascript:alert(1))",
    "vbscript": "[x](vbscript:msgbox(1))",
    "data-base64": "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "data-upper": "[x](DATA:text/html,<script>alert(1)</script>)",
    "autolink-javascript": "<javascript:alert(1)>",
    "autolink-data": "<data:text/html,x>",
    "autolink-port-javascript": "<http://javascript:alert(1)>",
    "reference-definition": "[x][r]\n\n[r]: javascript:alert(1)",
    "raw-anchor": '<a href="javascript:alert(1)">x</a>',
    "image": "![x](javascript:alert(1))",
}


@pytest.mark.parametrize("body", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_dangerous_schemes_never_become_links(body: str) -> None:
    html = render_markdown(body)
    page = assert_safe(html)
    assert page.hrefs == []
    assert "alert" in page.visible or "msgbox" in page.visible or "data:" in page.visible


def test_quotes_in_a_url_cannot_break_out_of_href() -> None:
    page = assert_safe(render_markdown('[x](https://a.example/"onmouseover="alert(1))'))
    assert [attrs for tag, attrs in page.tags if tag == "a"] == [
        {"href": "https://a.example/%22onmouseover=%22alert(1)", "rel": REL}
    ]


FRAGMENTS = [
    "javascript:",
    "JaVaScRiPt:",
    "jav&#x61;script:",
    "&#x6A;",
    "&#106;",
    "&colon;",
    "data:",
    "vbscript:",
    "alert(1)",
    "http://",
    "https://a.example",
    "mailto:",
    "<",
    ">",
    '"',
    "'",
    "`",
    "```",
    "&",
    "[",
    "]",
    "(",
    ")",
    "![",
    "](",
    "*",
    "_",
    "\\",
    "\t",
    "\n",
    "\n\n",
    "> ",
    "    ",
    "<script>",
    "</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="',
    " onclick=",
    "<!--",
    "-->",
]
markdownish = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=4), max_size=30).map("".join)


@settings(deadline=None, max_examples=400)
@given(markdownish)
def test_any_text_renders_to_allowed_html_only(body: str) -> None:
    assert_safe(render_markdown(body))


@settings(deadline=None, max_examples=200)
@given(st.text(alphabet="<>\"'&;: abcjavscript", max_size=60))
def test_markup_characters_stay_visible(body: str) -> None:
    # "x" first, so that a leading ">" is text rather than the (allowed) blockquote marker
    page = assert_safe(render_markdown(f"x {body}"))
    # markdown trims leading and trailing spaces of lines; nothing else may go missing
    assert page.visible.replace(" ", "").replace("\n", "") == "x" + body.replace(" ", "")


# ---------------------------------------------------------------------------------------------
# clean_body
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param("   \n\t\r\n  ", id="whitespace"),
        pytest.param("\x00\x07\u202e\u2066", id="only-invisible"),
    ],
)
def test_empty_bodies_are_refused(raw: str) -> None:
    with pytest.raises(InvalidBody, match=r"^comment is empty$"):
        clean_body(raw)


def test_too_long_bodies_are_refused() -> None:
    with pytest.raises(InvalidBody, match=r"^comment is 5,001 characters; the limit is 5,000$"):
        clean_body("a" * (MAX_BODY + 1))


def test_limit_counts_the_cleaned_text() -> None:
    body = "a" * MAX_BODY
    assert clean_body(f"  \n{body}\x00\x00 \n") == body


def test_invalid_body_is_a_value_error() -> None:
    assert issubclass(InvalidBody, ValueError)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        pytest.param("  hello  ", "hello", id="trimmed"),
        pytest.param("a\x00b", "ab", id="nul"),
        pytest.param("a\x07\x1b[31mb\x7f", "a[31mb", id="c0-controls"),
        pytest.param("a\x85b\x9fc", "abc", id="c1-controls"),
        pytest.param("a\ud800b\udfffc", "abc", id="lone-surrogates"),
        pytest.param("one\r\ntwo\rthree", "one\ntwo\nthree", id="line-endings"),
        pytest.param("one\u2028two\u2029three", "one\ntwo\nthree", id="unicode-separators"),
        pytest.param("a\u202ab\u202bc\u202cd\u202de\u202ef", "abcdef", id="bidi-overrides"),
        pytest.param("a\u2066b\u2067c\u2068d\u2069e", "abcde", id="bidi-isolates"),
        pytest.param("line\n\n\tindented", "line\n\n\tindented", id="newlines-and-tabs-kept"),
        pytest.param("👩\u200d💻 café", "👩\u200d💻 café", id="emoji-joiner-kept"),
        pytest.param("اَلسَّلَامُ עִבְרִית", "اَلسَّلَامُ עִבְרִית", id="rtl-text-kept"),
    ],
)
def test_clean_body(raw: str, clean: str) -> None:
    assert clean_body(raw) == clean


# controls other than \n and \t, line/paragraph separators, bidi controls, surrogates
FORBIDDEN = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


@settings(deadline=None, max_examples=200)
@given(st.text(min_size=1, max_size=200))
def test_clean_body_output_has_no_forbidden_characters(raw: str) -> None:
    try:
        clean = clean_body(raw)
    except InvalidBody:
        return
    assert clean == clean.strip()
    assert 1 <= len(clean) <= MAX_BODY
    assert not FORBIDDEN.search(clean)
    clean.encode("utf-8")  # storable: no lone surrogates
    assert clean_body(clean) == clean
