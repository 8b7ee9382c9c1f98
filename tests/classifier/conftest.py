"""Fixtures for the classifier tests: a small corpus and a tiny model trained in the test run."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from classifier.data import Example
from classifier.model import Model, Recipe, train
from classifier.persist import save_model

TOPICS = [
    "the council vote",
    "the new bridge",
    "school funding",
    "the harbour festival",
    "parking fees",
    "the library budget",
    "the mayor's plan",
    "bus routes",
    "the election",
    "housing prices",
    "the football club",
    "the water supply",
]
OPINIONS = [
    "I think {t} is a good idea",
    "Has anyone read the report on {t}?",
    "Thanks for covering {t}, very useful",
    "I disagree about {t}, the numbers look off",
    "My family has followed {t} for years",
    "Could the paper explain {t} in more detail",
    "Interesting piece on {t}",
    "The article about {t} misses the cost to residents",
]
INSULTS = [
    "idiot",
    "moron",
    "stupid",
    "loser",
    "scumbag",
    "pathetic",
    "dumb",
    "imbecile",
    "trash",
    "clown",
]
ABUSE = [
    "you are a {i} and so is everyone who agrees with you",
    "only a {i} would write this about {t}",
    "shut up you {i}",
    "what a {i}, go away",
    "the author is a {i}, {t} is none of your business",
    "get lost {i}, nobody cares",
]
SPAM = [
    "Make money fast from home, visit http://cash{n}.example.biz now",
    "Check out my channel and subscribe!!! http://youtu.be/{n}",
    "Cheap pills, no prescription, call 555-010-{n:04d}",
    "WIN a FREE iPhone!!! click www.prize{n}.example.com",
    "Earn $500 a day, email me at rich{n}@example.net",
]


def make_corpus(n: int, seed: int) -> list[Example]:
    """Labelled synthetic comments: clean, abusive and spam, from two "sources"."""
    rng = random.Random(seed)
    examples = []
    for k in range(n):
        topic = rng.choice(TOPICS)
        source = rng.choice(["site-a", "site-b"])
        roll = rng.random()
        if roll < 0.35:
            text = rng.choice(ABUSE).format(i=rng.choice(INSULTS), t=topic)
            examples.append(Example(text, source, spam=0, abuse=1))
        elif roll < 0.55:
            text = rng.choice(SPAM).format(n=rng.randrange(10000))
            examples.append(Example(text, source, spam=1, abuse=0))
        else:
            text = rng.choice(OPINIONS).format(t=topic) + rng.choice([".", "!", "", " :)"])
            examples.append(Example(f"{text} ({k})", source, spam=0, abuse=0))
    return examples


TINY = Recipe(word_bits=14, char_bits=15, calibration_folds=2)


@pytest.fixture(scope="session")
def corpus() -> list[Example]:
    """Training corpus."""
    return make_corpus(600, seed=1)


@pytest.fixture(scope="session")
def held_back() -> list[Example]:
    """Comments the tiny model never sees."""
    return make_corpus(200, seed=2)


@pytest.fixture(scope="session")
def tiny_model(corpus: list[Example]) -> Model:
    """A small model trained in the test run."""
    return train(corpus, TINY)


@pytest.fixture(scope="session")
def tiny_model_file(tiny_model: Model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model saved to disk."""
    path = tmp_path_factory.mktemp("models") / "tiny.skops"
    save_model(tiny_model, path)
    return path
