"""Tests for classifier.obfuscate, and how much of each obfuscation the normaliser undoes."""

from __future__ import annotations

import random
import re
from functools import cache

import pytest

from classifier.normalize import normalize
from classifier.obfuscate import KINDS, obfuscate, variants

SENTENCE = "You are a complete idiot and everyone here knows it"

# Abusive words and phrases for the recovery check.
ABUSIVE = [
    "you are an idiot",
    "shut up you stupid bitch",
    "fuck you",
    "go fuck yourself",
    "kill yourself",
    "you are a worthless piece of shit",
    "what a pathetic loser",
    "dumb ass moron",
    "you ugly fat pig",
    "I hate you",
    "go to hell",
    "you are disgusting trash",
    "stupid retard",
    "what an asshole",
    "son of a bitch",
    "you are so dumb",
    "nobody likes you loser",
    "die in a fire",
    "this is bullshit",
    "what the fuck is wrong with you",
    "eat shit",
    "you suck",
    "get lost idiot",
    "shut your mouth",
    "you are garbage",
    "piece of crap",
    "stupid jackass",
    "you dickhead",
    "you scumbag",
    "useless moron",
]
SEEDS = range(10)
MINIMUM = {kind: 0.8 if kind == "mixed" else 0.9 for kind in KINDS}


@cache
def recovery_rate(kind: str) -> float:
    """Share of obfuscated phrases whose normalised form still contains the original's."""
    hits = 0
    for k, phrase in enumerate(ABUSIVE):
        target = normalize(phrase)
        for seed in SEEDS:
            disguised = obfuscate(phrase, kind, random.Random(seed * 1000 + k))
            hits += target in normalize(disguised)
    return hits / (len(ABUSIVE) * len(SEEDS))


@pytest.mark.parametrize("kind", KINDS)
def test_normaliser_undoes_most_obfuscation(kind: str) -> None:
    rate = recovery_rate(kind)
    print(f"recovery {kind}: {rate:.3f}")
    assert rate >= MINIMUM[kind], f"{kind}: only {rate:.3f} recovered"


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_changes_the_text(kind: str) -> None:
    for seed in range(20):
        assert obfuscate(SENTENCE, kind, random.Random(seed)) != SENTENCE


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic_for_a_seed(kind: str) -> None:
    for seed in range(5):
        first = obfuscate(SENTENCE, kind, random.Random(seed))
        assert obfuscate(SENTENCE, kind, random.Random(seed)) == first
    outputs = {obfuscate(SENTENCE, kind, random.Random(seed)) for seed in range(20)}
    assert len(outputs) > 5  # and random across seeds


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "mixed"])
def test_rewrites_a_third_to_a_half_of_the_words(kind: str) -> None:
    words = SENTENCE.split()
    eligible = [w for w in words if len(w) >= 3]
    for seed in range(20):
        disguised = obfuscate(SENTENCE, kind, random.Random(seed))
        kept = sum(1 for w in disguised.split() if w in eligible)
        changed = len(eligible) - kept
        assert 1 <= changed <= len(eligible) // 2 + 1, disguised


@pytest.mark.parametrize("kind", KINDS)
def test_stays_readable(kind: str) -> None:
    for seed in range(20):
        disguised = obfuscate(SENTENCE, kind, random.Random(seed))
        assert len(disguised) <= 3 * len(SENTENCE)
        # words shorter than three letters are never touched, nor is the word order
        assert " a " in disguised
        assert disguised.endswith(" it")
        # and a reader (or the normaliser) still gets most of the sentence back
        recovered = normalize(disguised).split()
        assert sum(w in recovered for w in normalize(SENTENCE).split()) >= 7


def test_kinds_look_like_what_evaders_write() -> None:
    rng = random.Random(7)
    word = "idiot"
    assert re.fullmatch(r"[idot1!l|07+()]+", obfuscate(word, "leet", rng))
    assert re.fullmatch(r"i(.)d\1i\1o\1t", obfuscate(word, "spacing", rng))
    assert re.fullmatch(r"i+d+i+o+t+", obfuscate(word, "elongation", rng))
    assert not obfuscate(word, "homoglyph", rng).isascii()
    assert obfuscate(word, "zero_width", rng).isprintable() is False
    assert re.fullmatch(r"\w+[.\-_*]\w+", obfuscate(word, "punctuation", rng))
    assert re.fullmatch(r"id[*#]ot|idi[*#]t", obfuscate(word, "mask", rng))


def test_leaves_mentions_links_and_placeholders_alone() -> None:
    text = "@USER you moron URL http://example.com/page"
    for seed in range(20):
        disguised = obfuscate(text, "spacing", random.Random(seed))
        assert disguised.startswith("@USER ")
        assert disguised.endswith(" URL http://example.com/page")


def test_text_without_long_words_is_unchanged() -> None:
    assert obfuscate("ok, go!", "leet", random.Random(0)) == "ok, go!"
    assert obfuscate("", "mixed", random.Random(0)) == ""


def test_variants() -> None:
    result = variants(SENTENCE, random.Random(3))
    assert list(result) == list(KINDS)
    assert variants(SENTENCE, random.Random(3)) == result
    assert list(variants(SENTENCE, random.Random(3), ["mask", "leet"])) == ["mask", "leet"]


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown obfuscation kind"):
        obfuscate(SENTENCE, "rot13", random.Random(0))
