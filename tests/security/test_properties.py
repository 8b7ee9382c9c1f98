"""Properties of the comment sanitiser and the moderation policy, for any input (hypothesis).

The sanitiser (moderation/render.py: markdown-it, then nh3) gets text built from a grammar of
HTML and Markdown fragments: tags, attributes, event handlers, javascript:/data: URLs spelled
with entities and controls, brackets, backticks and line breaks. Parsed as a browser does
(html5lib), its output holds only the allowed tags and attributes, no handler and no link but
http(s) and mailto; sanitising the output again changes nothing.

The policy (moderation/policy.decide) gets a banned word disguised the ways the policy claims
to see through (case, punctuation, letters spaced apart, leetspeak, look-alike letters,
invisible characters, accents, full-width letters, elongation): the comment is always
rejected. Scores at or above the site's thresholds never publish; below every threshold, with
no other rule applying, the comment is published.
"""

from __future__ import annotations

import math

import nh3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moderation.policy import AuthorStanding, Scores, SiteSettings, count_links, decide
from moderation.render import ALLOWED_SCHEMES, ALLOWED_TAGS, LINK_REL, clean_body, render_markdown
from moderation.status import Status
from tests.security.htmlcheck import parse, sanitised_problems

# Reproducible in CI, and bounded: both files of this suite stay well under the time budget.
PROPERTY = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# --- the sanitiser ------------------------------------------------------------------------------

TAGS = (
    "script", "img", "a", "iframe", "svg", "math", "style", "object", "embed", "form", "input",
    "button", "details", "video", "audio", "body", "base", "meta", "link", "textarea", "table",
    "noscript", "template", "p", "em", "strong", "code", "pre", "blockquote", "br", "div", "span",
    "marquee", "xmp", "plaintext", "title", "select", "option", "frameset", "isindex", "animate",
)  # fmt: skip
ATTRIBUTES = (
    "href", "src", "onerror", "onload", "onclick", "onmouseover", "onfocus", "autofocus",
    "style", "srcdoc", "formaction", "action", "xlink:href", "data", "background", "poster",
    "title", "rel", "target", "id", "class", "lang", "dir", "open", "ontoggle", "to", "values",
)  # fmt: skip
URLS = (
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", "java\tscript:alert(1)", "java\nscript:x",
    " javascript:x", "\x01javascript:x", "&#106;avascript:x", "&#x6A;avascript:x",
    "javascript&colon;x", "jav&#x09;ascript:x", "data:text/html;base64,PHNjcmlwdD4=",
    "data:image/svg+xml,<svg onload=alert(1)>", "vbscript:msgbox(1)", "livescript:x",
    "http://example.org/a?b=c&d=e", "https://example.org/", "mailto:a@example.org",
    "//evil.example/", "/relative", "#top", "ftp://example.org/", "file:///etc/passwd",
    "https://example.org/\"onmouseover=alert(1)", "http://[::1]/", "https://ex ample.org/",
)  # fmt: skip
PIECES = (
    "<", ">", "</", "/>", '"', "'", "`", "```", "~~~", "=", "&", "&lt;", "&gt;", "&amp;",
    "&quot;", "&#0;", "&#x3c;", "&#60;", "&colon;", "&Tab;", "&NewLine;", "&#128512;", "[", "]",
    "(", ")", "](", "![", "*", "**", "_", "\\", "!", "<!--", "-->", "<![CDATA[", "]]>", " ",
    "\t", "\n", "\n\n", "> ", "    ", "- ", "1. ", "# ", "---", "\u202e", "\u200b", "\x00",
    "<http://example.org>", "<javascript:alert(1)>", "<mailto:a@example.org>", "alert(1)",
)  # fmt: skip
_NAMES = st.sampled_from(TAGS) | st.sampled_from(TAGS).map(str.upper)
_QUOTES = st.sampled_from(['"', "'", ""])


@st.composite
def _attribute(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(ATTRIBUTES))
    value = draw(st.sampled_from(URLS) | st.sampled_from(("alert(1)", "x", "")))
    quote = draw(_QUOTES)
    return f" {name}={quote}{value}{quote}"


@st.composite
def _tag(draw: st.DrawFn) -> str:
    name = draw(_NAMES)
    attributes = "".join(draw(st.lists(_attribute(), max_size=3)))
    closing = draw(st.sampled_from(["", f"</{name}>", "/"]))
    return f"<{name}{attributes}>{draw(st.text(max_size=5))}{closing}"


@st.composite
def _markdown_link(draw: st.DrawFn) -> str:
    url = draw(st.sampled_from(URLS))
    text = draw(st.sampled_from(["x", "", "<b>x</b>", "[y](javascript:x)", "`c`"]))
    form = draw(st.sampled_from(["[{t}]({u})", "![{t}]({u})", "<{u}>", '[{t}]({u} "t")']))
    return form.format(t=text, u=url)


# Text as an attacker would type it: fragments of HTML and Markdown, joined at random.
comment_text = st.lists(
    _tag()
    | _markdown_link()
    | st.sampled_from(PIECES)
    | st.sampled_from(URLS)
    | st.text(max_size=4),
    max_size=25,
).map("".join)


def _attributes(html: str) -> list[tuple[str, dict[str, str]]]:
    """(tag, attributes) of every element of ``html`` as a browser parses it."""
    root = parse(html)
    return [(e.tag, dict(e.attrib)) for e in root.iter() if isinstance(e.tag, str)]


@PROPERTY
@given(comment_text)
def test_rendered_comments_hold_only_allowed_markup(body: str) -> None:
    html = render_markdown(body)
    # Allowed tags and attributes only, no handler, no active URL, nothing a browser would run.
    assert sanitised_problems(html) == [], (body, html)
    for tag, attributes in _attributes(html):
        assert not any(name.lower().startswith("on") for name in attributes), (body, html)
        if tag == "a":
            assert attributes.get("rel") == LINK_REL, (body, html)
            scheme = attributes["href"].partition(":")[0].lower()
            assert scheme in ALLOWED_SCHEMES, (body, html)


@PROPERTY
@given(comment_text)
def test_stored_comments_render_safely(body: str) -> None:
    # What the service does: the cleaned body is stored and rendered.
    try:
        cleaned = clean_body(body)
    except ValueError:
        return  # empty once cleaned: refused before rendering
    assert sanitised_problems(render_markdown(cleaned)) == []


@PROPERTY
@given(comment_text)
def test_sanitising_the_output_again_changes_nothing(body: str) -> None:
    html = render_markdown(body)
    # The same policy as the renderer's, with rel kept as written: the output is a fixed point.
    again = nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        attributes={"a": {"href", "rel"}, "*": set()},
        url_schemes=set(ALLOWED_SCHEMES),
        link_rel=None,
        strip_comments=True,
    )
    assert again == html, body
    assert render_markdown(body) == html  # and rendering is deterministic


# --- the policy: banned words -------------------------------------------------------------------

BANNED = ("idiot", "moron", "stupid", "loser", "scum", "clown", "parasite", "bigot", "traitor")
LEET = {"a": "4@", "e": "3", "i": "1!", "o": "0", "s": "5$", "t": "7"}
# Cyrillic letters that look like Latin ones.
LOOKALIKES = {
    "a": "\u0430",
    "e": "\u0435",
    "o": "\u043e",
    "p": "\u0440",
    "c": "\u0441",
    "i": "\u0456",
}
INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")
MARKS = ("\u0301", "\u0308", "\u0336", "\u0317")  # accents and strokes, at most three a letter
SEPARATORS = (" ", ".", "-", "_", "*", "/", "|", "+", "~", ",", " . ", "..", ". ", " - ")
DISGUISES = (
    "case", "leet", "lookalike", "invisible", "marks", "fullwidth", "elongated", "spaced",
)  # fmt: skip


def _fullwidth(char: str) -> str:
    return chr(ord(char) + 0xFEE0) if char.isascii() and char.isalpha() else char


@st.composite
def disguised(draw: st.DrawFn, word: str) -> str:
    """``word`` disguised one or two of the ways the policy claims to see through."""
    letters = list(word)
    chosen = draw(st.lists(st.sampled_from(DISGUISES), min_size=1, max_size=2))
    for disguise in chosen:
        positions = range(len(letters))
        if disguise == "case":
            letters = [c.upper() if draw(st.booleans()) else c for c in letters]
        elif disguise == "leet":
            # Not the last letter: digits only at the end read as a code ("mp3", "covid19").
            picked = [i for i in positions[:-1] if letters[i] in LEET and draw(st.booleans())]
            for i in picked:
                letters[i] = draw(st.sampled_from(LEET[letters[i]]))
        elif disguise == "lookalike":
            for i in positions:
                if letters[i] in LOOKALIKES and draw(st.booleans()):
                    letters[i] = LOOKALIKES[letters[i]]
        elif disguise == "invisible":
            letters = [c + draw(st.sampled_from(("", *INVISIBLE))) for c in letters]
        elif disguise == "marks":
            letters = [
                c + "".join(draw(st.lists(st.sampled_from(MARKS), max_size=3))) for c in letters
            ]
        elif disguise == "fullwidth":
            letters = ["".join(_fullwidth(c) for c in letter) for letter in letters]
        elif disguise == "elongated" and "spaced" not in chosen:  # spacing spaces letters
            i = draw(st.sampled_from(positions))
            letters[i] = letters[i] * draw(st.integers(3, 6))
    if "spaced" in chosen:
        return draw(st.sampled_from(SEPARATORS)).join(letters)
    return "".join(letters)


@st.composite
def comment_with_banned_word(draw: st.DrawFn) -> str:
    word = draw(st.sampled_from(BANNED))
    before = draw(st.sampled_from(("", "You ", "What a ", "Honestly, the mayor is a ", "(", '"')))
    after = draw(st.sampled_from(("", "!", "!!!", ".", ",", "?", ")", '"', " and proud of it.")))
    return f"{before}{draw(disguised(word))}{after}"


scores = st.builds(Scores, st.floats(0, 1), st.floats(0, 1))
authors = st.builds(
    AuthorStanding,
    approved=st.integers(0, 50),
    rejected=st.integers(0, 5),
    trusted=st.booleans(),
    premoderate=st.booleans(),
    guest=st.booleans(),
)


@PROPERTY
@given(
    text=comment_with_banned_word(),
    scores=st.none() | scores,
    author=authors,
    mode=st.sampled_from(("post", "pre")),
)
def test_a_disguised_banned_word_always_rejects(
    text: str, scores: Scores | None, author: AuthorStanding, mode: str
) -> None:
    site = SiteSettings(mode=mode, banned_words=BANNED, suspect_words=("budget",))
    verdict = decide(text, scores, site, author)
    assert verdict.status is Status.REJECTED, text
    assert verdict.reasons[0].code == "banned_word", text


# --- the policy: scores and thresholds -----------------------------------------------------------


@st.composite
def site_thresholds(draw: st.DrawFn) -> SiteSettings:
    """A site with any valid thresholds (holds at or below rejections), nothing else held."""
    spam_reject = draw(st.floats(0.05, 1))
    abuse_reject = draw(st.none() | st.floats(0.05, 1))
    return SiteSettings(
        spam_hold=draw(st.floats(0.01, spam_reject)),
        spam_reject=spam_reject,
        abuse_hold=draw(st.floats(0.01, 1 if abuse_reject is None else abuse_reject)),
        abuse_reject=abuse_reject,
        trusted_relax=draw(st.sampled_from((0.0, 0.1, 0.25))),
        first_comments_held=0,
    )


def _hold_threshold(hold: float, reject: float | None, trusted: bool, relax: float) -> float:
    """The threshold the documented contract gives: raised by trusted_relax for trusted
    authors, never past the rejection threshold (or 1)."""
    if not trusted:
        return hold
    return max(hold, min(hold + relax, 1.0 if reject is None else reject))


plain_text = st.text(alphabet=st.characters(categories=["L", "Zs"]), max_size=40)


@PROPERTY
@given(
    text=plain_text,
    site=site_thresholds(),
    spam=st.floats(0, 1),
    abuse=st.floats(0, 1),
    trusted=st.booleans(),
)
def test_scores_at_or_above_a_threshold_never_publish(
    text: str, site: SiteSettings, spam: float, abuse: float, trusted: bool
) -> None:
    # Past the first-comment hold; trusted by a moderator, or with a rejection (no earned trust).
    author = AuthorStanding(approved=10, rejected=0 if trusted else 1, trusted=trusted)
    verdict = decide(text, Scores(spam, abuse), site, author)
    spam_hold = _hold_threshold(site.spam_hold, site.spam_reject, trusted, site.trusted_relax)
    abuse_hold = _hold_threshold(site.abuse_hold, site.abuse_reject, trusted, site.trusted_relax)
    # The relaxed threshold is rounded to nine places by the policy (0.8 + 0.1 is 0.9).
    above_hold = spam >= spam_hold + 1e-9 or abuse >= abuse_hold + 1e-9
    if above_hold or spam >= site.spam_reject:
        assert verdict.status is not Status.PUBLISHED, (spam, abuse, site, verdict)
    if spam >= site.spam_reject:
        assert verdict.status is Status.SPAM
    elif site.abuse_reject is not None and abuse >= site.abuse_reject:
        assert verdict.status is Status.REJECTED
    below_all = spam < site.spam_hold and abuse < site.abuse_hold
    if below_all and count_links(text) <= site.max_links:
        # No other rule applies: an established author, post-moderation, no words, few links.
        assert verdict.status is Status.PUBLISHED, (text, spam, abuse, verdict)
        assert verdict.reasons == ()


@PROPERTY
@given(
    text=plain_text,
    site=site_thresholds(),
    spam=st.floats(allow_nan=True, allow_infinity=True),
    abuse=st.floats(allow_nan=True, allow_infinity=True),
    author=authors,
)
def test_unusable_scores_never_publish(
    text: str, site: SiteSettings, spam: float, abuse: float, author: AuthorStanding
) -> None:
    verdict = decide(text, Scores(spam, abuse), site, author)
    usable = all(math.isfinite(s) and 0 <= s <= 1 for s in (spam, abuse))
    if not usable:
        assert verdict.status is not Status.PUBLISHED
        assert "classifier_unavailable" in {reason.code for reason in verdict.reasons}
    assert decide(text, None, site, author).status is not Status.PUBLISHED


def test_spaced_out_words_are_joined_only_for_word_lists() -> None:
    """The separator rule is wide ("i . d . i . o . t"): it must not join ordinary prose."""
    site = SiteSettings(banned_words=("idiot",), first_comments_held=0)
    author = AuthorStanding(approved=10)
    for text in ("I did it, I do it.", "a . b . c", "Point 1 . 2 . 3", "i d e a s"):
        assert decide(text, Scores(0.1, 0.1), site, author).status is Status.PUBLISHED, text
