"""Obfuscation does not buy an abusive comment a free pass with the shipped model."""

from __future__ import annotations

import random

import numpy as np
import pytest

from classifier import default_model
from classifier.obfuscate import KINDS, obfuscate

ABUSIVE = [
    "You are a complete idiot and everyone knows it",
    "Shut up you stupid moron",
    "What a pathetic loser, go crawl back under your rock",
    "The author is a brainless imbecile",
    "Only a retard would believe this garbage",
    "You dumb bitch, nobody asked you",
    "Go fuck yourself, you worthless piece of shit",
    "This mayor is a lying scumbag and a fool",
    "Get lost, idiot troll",
    "Anyone who votes for him is a stupid asshole",
]


@pytest.mark.parametrize("kind", KINDS)
def test_obfuscated_abuse_keeps_its_score(kind: str) -> None:
    model = default_model()
    rng = random.Random(7)
    variants = [obfuscate(text, kind, rng) for text in ABUSIVE for _ in range(3)]
    originals = [text for text in ABUSIVE for _ in range(3)]
    base = np.asarray([s["abuse"] for s in model.score(originals)])
    scores = np.asarray([s["abuse"] for s in model.score(variants)])
    hold = model.thresholds["abuse"]["hold"]
    assert float(np.mean(base >= hold)) == 1.0, "the plain phrases must be held to begin with"
    assert float(np.mean(base - scores)) < 0.10, list(zip(variants, scores, strict=True))
    assert float(np.mean(scores >= hold)) >= 0.9, list(zip(variants, scores, strict=True))


def test_links_hidden_by_unicode_tricks_still_count() -> None:
    model = default_model()
    plain = "Earn money fast at http://cash-now.example.biz/offer"
    hidden = "Earn money fast at h\u200bttp://cash-now\u200b.example.biz/offer"
    fullwidth = "Earn money fast at ｈｔｔｐ://cash-now.example.biz/offer"
    scores = model.score([plain, hidden, fullwidth])
    assert abs(scores[1]["spam"] - scores[0]["spam"]) < 0.1
    assert abs(scores[2]["spam"] - scores[0]["spam"]) < 0.1
