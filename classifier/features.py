"""Feature steps of the pipelines: text preparation, word and character n-grams, text statistics.

All steps are stateless or fitted by scikit-learn, and every one of them lives inside the saved
pipeline, so training and serving cannot drift apart.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin

from classifier.normalize import PLACEHOLDERS, Entity, Normalized, normalize_with_entities

# Domains of URL shorteners and of message apps spammers send readers to.
_SHORTENERS = frozenset(
    [
        "bit.ly",
        "tinyurl.com",
        "goo.gl",
        "t.co",
        "ow.ly",
        "is.gd",
        "buff.ly",
        "rebrand.ly",
        "cutt.ly",
        "shorturl.at",
        "tiny.cc",
        "rb.gy",
        "t.me",
        "wa.me",
    ]
)
_MONEY = re.compile(
    r"(?:[$€£¥]\s?\d[\d,.]*|\d[\d,.]*\s?(?:\$|€|£|usd|eur|gbp|dollars?|bucks|euros?|pounds)\b)",
    re.IGNORECASE,
)
_REPEAT = re.compile(r"(.)\1{2,}")
_WORD = re.compile(r"\w+")


class Prepared(NamedTuple):
    """A comment prepared once for every feature step: raw, normalised, and what it links to."""

    raw: str
    text: str
    domains: tuple[str, ...]
    counts: tuple[int, int, int, int]  # urls, emails, phones, mentions


def prepare(raw: str) -> Prepared:
    """Normalise one comment and collect its links, e-mails, phones and mentions."""
    return _prepared(raw, *normalize_with_entities(raw))


def prepared_from(raw: str, normalized: Normalized) -> Prepared:
    """A :class:`Prepared` record from an already normalised comment."""
    return _prepared(raw, normalized.text, normalized.entities)


def _prepared(raw: str, text: str, entities: list[Entity]) -> Prepared:
    counts = {kind: 0 for kind in PLACEHOLDERS}
    domains = []
    for entity in entities:
        counts[entity.kind] += 1
        if entity.domain:
            domains.append(entity.domain)
    return Prepared(
        raw,
        text,
        tuple(domains),
        (counts["url"], counts["email"], counts["phone"], counts["mention"]),
    )


class TextPreparer(TransformerMixin, BaseEstimator):
    """First pipeline step: raw strings in, :class:`Prepared` records out."""

    def fit(self, X: object, y: object = None) -> TextPreparer:
        """Nothing to learn."""
        return self

    def __sklearn_is_fitted__(self) -> bool:
        """Stateless, so always ready."""
        return True

    def transform(self, X: list[str]) -> list[Prepared]:
        """Prepare every text."""
        return [x if isinstance(x, Prepared) else prepare(x) for x in X]


class WordNgrams:
    """Word n-grams of the normalised text plus one token per linked domain."""

    def __init__(self, max_n: int = 2) -> None:
        self.max_n = max_n

    def __call__(self, doc: Prepared) -> list[str]:
        words = _WORD.findall(doc.text)
        grams = list(words)
        for n in range(2, self.max_n + 1):
            grams.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
        grams.extend("domain:" + domain for domain in doc.domains)
        return grams


@lru_cache(maxsize=200_000)
def _word_char_ngrams(word: str, min_n: int, max_n: int) -> tuple[str, ...]:
    padded = f" {word} "
    size = len(padded)
    return tuple(
        padded[i : i + n] for n in range(min_n, min(max_n, size) + 1) for i in range(size - n + 1)
    )


class CharNgrams:
    """Character n-grams inside word boundaries (like ``char_wb``), cached per word for speed."""

    def __init__(self, min_n: int = 2, max_n: int = 5) -> None:
        self.min_n = min_n
        self.max_n = max_n

    def __call__(self, doc: Prepared) -> list[str]:
        grams: list[str] = []
        for word in doc.text.split():
            grams.extend(_word_char_ngrams(word, self.min_n, self.max_n))
        return grams


STAT_NAMES: tuple[str, ...] = (
    "log_length",
    "log_words",
    "urls",
    "emails",
    "phones",
    "mentions",
    "distinct_domains",
    "shortener_links",
    "money",
    "caps_ratio",
    "digit_ratio",
    "punct_ratio",
    "exclamations",
    "repeated_runs",
    "non_ascii_ratio",
    "mean_word_length",
)


def text_stats(doc: Prepared) -> list[float]:
    """Numeric features of one comment, each on a scale near 0..3."""
    raw = doc.raw
    length = max(len(raw), 1)
    letters = sum(c.isalpha() for c in raw)
    upper = sum(c.isupper() for c in raw)
    digits = sum(c.isdigit() for c in raw)
    punct = sum(not c.isalnum() and not c.isspace() for c in raw)
    words = raw.split()
    urls, emails, phones, mentions = doc.counts
    return [
        math.log1p(len(raw)) / 5,
        math.log1p(len(words)) / 4,
        math.log1p(urls),
        math.log1p(emails),
        math.log1p(phones),
        math.log1p(mentions),
        math.log1p(len(set(doc.domains))),
        math.log1p(sum(d in _SHORTENERS for d in doc.domains)),
        math.log1p(len(_MONEY.findall(raw))),
        upper / max(letters, 1),
        digits / length,
        punct / length,
        math.log1p(raw.count("!")),
        math.log1p(len(_REPEAT.findall(raw))),
        sum(ord(c) > 127 for c in raw) / length,
        min(sum(map(len, words)) / max(len(words), 1), 20) / 10,
    ]


class TextStats(TransformerMixin, BaseEstimator):
    """Numeric features (links, domains, capitals, digits, punctuation, money, phones, length)."""

    def fit(self, X: object, y: object = None) -> TextStats:
        """Nothing to learn: every feature has a fixed scale."""
        return self

    def __sklearn_is_fitted__(self) -> bool:
        """Stateless, so always ready."""
        return True

    def transform(self, X: list[Prepared]) -> sparse.csr_matrix:
        """One row of :data:`STAT_NAMES` per comment."""
        rows = np.asarray([text_stats(doc) for doc in X], dtype=np.float64).reshape(
            -1, len(STAT_NAMES)
        )
        return sparse.csr_matrix(rows)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Names of the statistics, for explanations."""
        return np.asarray([f"stat:{name}" for name in STAT_NAMES], dtype=object)
