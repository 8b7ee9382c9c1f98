"""Tests for classifier.normalize: evasions undone, placeholders, offset map, properties."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from classifier.normalize import (
    PLACEHOLDERS,
    Entity,
    find_entities,
    normalize,
    normalize_full,
)

ZALGO = "\u0337\u0336\u0315\u0334"

CASES = [
    # Unicode tricks
    ("𝐢𝐝𝐢𝐨𝐭", "idiot"),
    ("𝘴𝘵𝘶𝘱𝘪𝘥", "stupid"),
    ("ｉｄｉｏｔ", "idiot"),
    ("ïdïöt", "idiot"),
    ("".join(c + ZALGO for c in "idiot"), "idiot"),
    ("id\u200bi\u200co\u200dt", "idiot"),
    ("\u202eidiot\u202c \ufeffmoron", "idiot moron"),
    ("id\u00adi\u2060o\u034ft", "idiot"),
    ("ﬁlthy", "filthy"),
    ("ⓘⓓⓘⓞⓣ", "idiot"),
    ("🅸🅳🅸🅾🆃", "idiot"),
    ("ɪᴅɪᴏᴛ", "idiot"),
    # homoglyphs
    ("іdіоt", "idiot"),
    ("ѕtuріd", "stupid"),
    ("ιdιοτ", "idiot"),
    ("ЅТUРІD", "stupid"),
    ("ΗΕLLO ЕVЕRYОNE", "hello everyone"),
    ("как дела fuсk", "как дела fuck"),
    # leetspeak
    ("1d10t", "idiot"),
    ("@ss", "ass"),
    ("$h1t", "shit"),
    ("5tupid", "stupid"),
    ("l0s3r", "loser"),
    ("ki11 yourself", "kill yourself"),
    ("b!tch", "bitch"),
    ("y()u", "you"),
    ("dum6 @$$", "dumb ass"),
    # masks
    ("f*ck", "fuck"),
    ("sh!t", "shit"),
    ("b#tch", "bitch"),
    ("a**hole", "asshole"),
    ("f__k", "fuck"),
    ("f***ing", "fucking"),
    ("a*hole", "asshole"),
    ("bl*rgh", "blrgh"),
    # spaced and punctuated letters
    ("i d i o t", "idiot"),
    ("s.t.u.p.i.d", "stupid"),
    ("f-u-c-k", "fuck"),
    ("i|d|i|o|t", "idiot"),
    ("i_d_i_o_t f u c k", "idiot fuck"),
    ("you 1 d 1 0 t!", "you idiot!"),
    ("you are a s t u p i d bitch", "you are a stupid bitch"),
    ("i d i o t s.t.u.p.i.d", "idiot stupid"),
    ("id.iot stu-pid mor*on", "idiot stupid moron"),
    # elongation and punctuation runs
    ("stuuuupid", "stupid"),
    ("loooser", "loser"),
    ("asssss", "ass"),
    ("soooo goood", "so good"),
    ("wow!!!!!! what?????", "wow!!! what???"),
    # placeholders
    ("visit bit.ly/xyz now", "visit xxurl now"),
    ("see https://example.com/a?b=1.", "see xxurl ."),
    ("go to example.com", "go to xxurl"),
    ("www.google.com rocks", "xxurl rocks"),
    ("example dot com", "xxurl"),
    ("hxxp://evil.example/x", "xxurl"),
    ("b\u200bi\u200bt.ly/abc", "xxurl"),
    ("ｂｉｔ．ｌｙ／ａｂｃ", "xxurl"),
    ("gооgle.com", "xxurl"),
    ("mail john.doe@gmail.com", "mail xxemail"),
    ("john at gmail dot com", "xxemail"),
    ("name [at] example [dot] org", "xxemail"),
    ("call +1 555 123 4567", "call xxphone"),
    ("(555) 123-4567", "xxphone"),
    ("@USER you are a URL", "xxuser you are a url"),
    ("@john_doe hi", "xxuser hi"),
    # ordinary text stays readable
    (
        "The 2nd meeting is at 10am on 4th street, call 555-123-4567",
        "the 2nd meeting is at 10am on 4th street, call xxphone",
    ),
    ("I paid $5 for 100mg at 3pm on 2024-01-15", "i paid $5 for 100mg at 3pm on 2024-01-15"),
    ("covid19 and mp3 files, 5k runs, 21st", "covid19 and mp3 files, 5k runs, 21st"),
    ("the years 1999 2000 and 3.14", "the years 1999 2000 and 3.14"),
    ("a well-known self-esteem issue", "a well-known self-esteem issue"),
    ("I am a teacher, and I love it.", "i am a teacher, and i love it."),
    ("Café naïve résumé", "cafe naive resume"),
    ("  hello \n\t world  ", "hello world"),
    ("aaab\n\n\n", "ab"),
    ("", ""),
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_evasion_table(raw: str, expected: str) -> None:
    assert normalize(raw) == expected
    assert normalize_full(raw).text == expected


def highlight(raw: str, word: str) -> str:
    """The part of ``raw`` that the normalised ``word`` comes from."""
    n = normalize_full(raw)
    i = n.text.index(word)
    start, end = n.span(i, i + len(word))
    return raw[start:end]


@pytest.mark.parametrize(
    ("raw", "word", "source"),
    [
        ("you 1 d 1 0 t!", "idiot", "1 d 1 0 t"),
        ("what a f*cking id.iot", "fucking", "f*cking"),
        ("what a f*cking id.iot", "idiot", "id.iot"),
        ("so stuuuupid.", "stupid", "stuuuupid"),
        ("𝐢𝐝𝐢𝐨𝐭 here", "idiot", "𝐢𝐝𝐢𝐨𝐭"),
        ("an id\u200biot", "idiot", "id\u200biot"),
        ("Visit bit.ly/abc now", "xxurl", "bit.ly/abc"),
        ("mail me: john at gmail dot com!", "xxemail", "john at gmail dot com"),
        ("ïdïöt", "idiot", "ïdïöt"),
        ("hey @USER", "xxuser", "@USER"),
        ("s.t.u.p.i.d people", "people", "people"),
    ],
)
def test_offsets_highlight_the_source(raw: str, word: str, source: str) -> None:
    assert highlight(raw, word) == source


def test_span_edges() -> None:
    n = normalize_full("  ab  ")
    assert n.text == "ab"
    assert n.span(0, 2) == (2, 4)
    assert n.span(1, 1) == (3, 3)
    assert n.span(2, 2) == (4, 4)
    with pytest.raises(IndexError):
        n.span(1, 3)
    assert normalize_full("").span(0, 0) == (0, 0)


def test_entities() -> None:
    raw = "Mail a.b@Mail.com or visit WWW.Example.org/x, call 555-123-4567 @bob"
    entities = find_entities(raw)
    assert [(e.kind, e.value, e.domain) for e in entities] == [
        ("email", "a.b@Mail.com", "mail.com"),
        ("url", "WWW.Example.org/x", "example.org"),
        ("phone", "555-123-4567", None),
        ("mention", "@bob", None),
    ]
    for e in entities:
        assert raw[e.start : e.end] == e.value
    assert normalize_full(raw).entities == entities
    assert normalize(raw) == "mail xxemail or visit xxurl , call xxphone xxuser"


def test_hidden_link_domain() -> None:
    (entity,) = find_entities("free stuff at bіt\u200b.ly/x")
    assert entity == Entity("url", 14, 23, "bіt\u200b.ly/x", "bit.ly")


def test_placeholders() -> None:
    assert PLACEHOLDERS == {
        "url": "xxurl",
        "email": "xxemail",
        "phone": "xxphone",
        "mention": "xxuser",
    }


@pytest.mark.parametrize(
    "raw",
    ["the URL is broken", "a 1999 2000 2001 list", "prices $1,000,000 and 10.000.000", "v1.2.3"],
)
def test_no_false_entities(raw: str) -> None:
    assert find_entities(raw) == []


# --- properties -------------------------------------------------------------------------------

FRAGMENTS = [
    *"abcdefghijklmnopqrstuvwxyzAIOSTXZ0123456789",
    *" .-_*#@$!|+/,:()[]<>\\'\"~^%&€£·•\n\t",
    "\u200b", "\u200d", "\ufeff", "\u00ad", "\u202e", "\u0301", "\u0336", "\u034f", "\x00",
    "\ud800", "\udfff", "а", "е", "о", "і", "ӏ", "Η", "η", "ι", "к", "д", "ı", "ß", "ﬁ", "𝐢", "ｉ",
    "Ǆ", "İ", "ΐ", "ⓐ", "🅰", "⒜", "😡", "中",
    "idiot", "stupid", "ass", "http://", "hxxp://", "www.", "bit.ly/", ".com", "@user", "@USER",
    " dot ", " at ", "gmail", "[.]", "[at]", "555-123-4567", "+44 ", "2nd", "10am", "1999 ",
    "f*ck", "1d10t", "i d i o t ", "s.t.u", "!!!!", "aaaa", "xxurl",
]  # fmt: skip
evasive_text = st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join)
any_text = st.text(
    alphabet=st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=200
)


def check_map(raw: str) -> None:
    n = normalize_full(raw)
    assert normalize(raw) == n.text
    assert len(n.starts) == len(n.ends) == len(n.text)
    for i in range(len(n.text)):
        assert 0 <= n.starts[i] <= n.ends[i] <= len(raw)
        if i:
            assert n.starts[i - 1] <= n.starts[i]
            assert n.ends[i - 1] <= n.ends[i]
    previous_end = 0
    for e in n.entities:
        assert previous_end <= e.start < e.end <= len(raw)
        assert raw[e.start : e.end] == e.value
        assert e.kind in PLACEHOLDERS
        previous_end = e.end


@settings(max_examples=300, deadline=None)
@given(evasive_text)
def test_fast_path_and_offset_map_on_evasive_text(raw: str) -> None:
    check_map(raw)


@settings(max_examples=200, deadline=None)
@given(any_text)
def test_fast_path_and_offset_map_on_any_text(raw: str) -> None:
    check_map(raw)


WORDS = [
    "the", "council", "meeting", "is", "good", "idea", "really", "don't", "think", "so",
    "people", "it's", "2nd", "10am", "$5", "4th", "email", "hello", "world", "Thanks", "yes",
    "no", "we", "can", "do", "better", "than", "that", "all", "year", "road", "2024", "U.S.",
    "residents", "were", "told", "about", "this", "plan", "and", "they", "said", "it", "is",
    "fine", "3.5", "well-known", "e.g.", "Café", "naïve", "don’t",
]  # fmt: skip


def sentences(words: list[str]) -> st.SearchStrategy[str]:
    marks = st.sampled_from(["", "", "", ",", ".", "!", "?", "!!!!"])
    return st.lists(st.tuples(st.sampled_from(words), marks), max_size=30).map(
        lambda pairs: " ".join(word + mark for word, mark in pairs)
    )


@settings(max_examples=150, deadline=None)
@given(sentences([*WORDS, "I", "a"]))
def test_idempotent_on_ordinary_text(raw: str) -> None:
    once = normalize(raw)
    assert normalize(once) == once


@settings(max_examples=150, deadline=None)
@given(sentences([w for w in WORDS if w not in ("U.S.", "e.g.", "Café", "naïve")]))
def test_ordinary_words_come_through(raw: str) -> None:
    assert normalize(raw).split() == raw.lower().replace("!!!!", "!!!").split()


@pytest.mark.parametrize(
    "raw",
    [
        # each about 40,000 characters: a regex that backtracks quadratically would take minutes
        "a" * 40_000,
        "1 " * 20_000,
        "*" * 40_000,
        "@" * 40_000 + "x",
        "a." * 20_000,
        "a-" * 20_000,
        "x@" * 20_000,
        "1." * 20_000,
        "5 " * 20_000,
        "www." * 10_000,
        "dot " * 10_000,
        "a [at] b " * 5_000,
        "\u200b" * 40_000,
        "i d " * 10_000,
        "$1 " * 10_000,
        "f*" * 20_000,
        "9" * 40_000,
        "а" * 40_000,
        "ab" * 20_000 + "\u0430",
        "\ud800" * 10_000,
    ],
    ids=lambda raw: repr(raw[:6]),
)
def test_huge_inputs_are_fast(raw: str) -> None:
    started = time.perf_counter()
    n = normalize_full(raw)
    assert normalize(raw) == n.text
    assert time.perf_counter() - started < 2.0
