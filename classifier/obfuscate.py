"""Obfuscated variants of a text, written the way people evade word filters.

Used to measure how much a classifier's score drops when abusive comments are disguised. The
substitutions here come from what evaders do (leetspeak charts, homoglyph generators, invisible
characters, censoring with asterisks), not from the normaliser's tables, so the robustness
check also finds what the normaliser misses.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

__all__ = ["KINDS", "obfuscate", "variants"]

KINDS: tuple[str, ...] = (
    "leet",
    "spacing",
    "elongation",
    "homoglyph",
    "zero_width",
    "punctuation",
    "mask",
    "mixed",
)

# Whole words of three or more letters; not the name in an @mention, not part of a link or a
# number-letter code, and not OLID's "URL" placeholder.
_WORD = re.compile(r"(?<![\w@./:])(?!URL\b)[^\W\d_]{3,}(?![\w@]|[./:][\w/])")

# fmt: off
# Leetspeak as found in leet charts and evasion corpora; several spellings per letter.
_LEET: dict[str, tuple[str, ...]] = {
    "a": ("4", "@", "4", "@", "/\\"), "b": ("8", "6"), "e": ("3", "3", "€"),
    "g": ("9", "6"), "i": ("1", "!", "l", "1", "|"), "l": ("1", "|"), "o": ("0", "0", "()"),
    "s": ("5", "$", "$"), "t": ("7", "+"), "z": ("2",),
}

# Look-alikes used by homoglyph generators and spam: Cyrillic, Greek, Armenian, Cherokee,
# Latin small capitals and IPA letters, small Roman numerals, letterlike symbols.
_HOMOGLYPHS: dict[str, tuple[str, ...]] = {
    "a": ("а", "α", "ɑ", "а"), "b": ("Ь", "ᖯ", "в"), "c": ("с", "ϲ", "ⅽ", "с"),
    "d": ("ԁ", "ⅾ", "ɗ"), "e": ("е", "ҽ", "℮", "е", "ε"), "f": ("ք", "ғ"), "g": ("ɡ", "ց"),
    "h": ("һ", "հ", "н"), "i": ("і", "ı", "ɩ", "ι", "ⅰ", "і"), "j": ("ј", "ϳ"),
    "k": ("к", "κ", "ᴋ"), "l": ("ⅼ", "ӏ", "ℓ", "ι"), "m": ("м", "ⅿ", "ᴍ"),
    "n": ("ո", "η", "п"), "o": ("о", "ο", "օ", "ᴏ", "о"), "p": ("р", "ρ", "р"),
    "q": ("ԛ", "զ"), "r": ("г", "ꭇ", "ᴦ"), "s": ("ѕ", "ꜱ", "ѕ"), "t": ("т", "τ", "ţ"),
    "u": ("υ", "ս", "ᴜ", "μ"), "v": ("ν", "ѵ", "ᴠ"), "w": ("ԝ", "ѡ", "ᴡ", "ω"),
    "x": ("х", "χ", "ⅹ"), "y": ("у", "ү", "γ"), "z": ("ᴢ", "ʐ"),
    "A": ("А", "Α", "Ꭺ"), "B": ("В", "Β", "Ᏼ"), "C": ("С", "Ϲ", "Ꮯ"), "D": ("Ꭰ", "ꓓ"),
    "E": ("Е", "Ε", "Ꭼ"), "G": ("Ԍ", "Ꮐ"), "H": ("Н", "Η", "Ꮋ"), "I": ("І", "Ι", "Ӏ"),
    "J": ("Ј", "Ꭻ"), "K": ("К", "Κ", "Ꮶ"), "L": ("Ꮮ", "ꓡ"), "M": ("М", "Μ", "Ꮇ"),
    "N": ("Ν", "ꓠ"), "O": ("О", "Ο", "Օ"), "P": ("Р", "Ρ", "Ꮲ"), "S": ("Ѕ", "Ꮪ"),
    "T": ("Т", "Τ", "Ꭲ"), "V": ("Ѵ", "Ꮩ"), "W": ("Ԝ", "Ꮃ"), "X": ("Х", "Χ"),
    "Y": ("У", "Υ", "Ү"), "Z": ("Ζ", "Ꮓ"),
}
# fmt: on

# Invisible characters pasted inside words: zero-width space, non-joiner and joiner, word
# joiner, byte-order mark, soft hyphen.
_INVISIBLE = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad")
_SPACERS = (" ", " ", " ", ".", "-", "_", "*", "/", "|")
_INSERTED = (".", "-", "_", "*")
_MASKS = ("*", "*", "#")
_VOWELS = frozenset("aeiouyAEIOUY")


def _leet(word: str, rng: random.Random) -> str:
    places = [i for i, ch in enumerate(word) if ch.lower() in _LEET]
    chosen = _some(places, rng)
    return "".join(
        rng.choice(_LEET[ch.lower()]) if i in chosen else ch for i, ch in enumerate(word)
    )


def _spacing(word: str, rng: random.Random) -> str:
    return rng.choice(_SPACERS).join(word)


def _elongation(word: str, rng: random.Random) -> str:
    vowels = [i for i, ch in enumerate(word) if ch in _VOWELS]
    i = rng.choice(vowels) if vowels and rng.random() < 0.75 else rng.randrange(len(word))
    return word[:i] + word[i] * rng.randint(3, 6) + word[i + 1 :]


def _homoglyph(word: str, rng: random.Random) -> str:
    places = [i for i, ch in enumerate(word) if ch in _HOMOGLYPHS]
    chosen = _some(places, rng)
    return "".join(rng.choice(_HOMOGLYPHS[ch]) if i in chosen else ch for i, ch in enumerate(word))


def _zero_width(word: str, rng: random.Random) -> str:
    cuts = sorted(rng.sample(range(1, len(word)), k=min(len(word) - 1, rng.randint(1, 3))))
    pieces = [word[a:b] for a, b in zip([0, *cuts], [*cuts, len(word)], strict=True)]
    return "".join(piece + rng.choice(_INVISIBLE) for piece in pieces[:-1]) + pieces[-1]


def _punctuation(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word))
    return word[:i] + rng.choice(_INSERTED) + word[i:]


def _mask(word: str, rng: random.Random) -> str:
    inner = range(1, len(word) - 1)
    vowels = [i for i in inner if word[i] in _VOWELS]
    i = rng.choice(vowels or list(inner))
    return word[:i] + rng.choice(_MASKS) + word[i + 1 :]


def _some(places: Sequence[int], rng: random.Random) -> set[int]:
    """A random non-empty subset, each place kept with probability one half."""
    chosen = {i for i in places if rng.random() < 0.5}
    return chosen or {rng.choice(places)}


_REWRITE: dict[str, Callable[[str, random.Random], str]] = {
    "leet": _leet,
    "spacing": _spacing,
    "elongation": _elongation,
    "homoglyph": _homoglyph,
    "zero_width": _zero_width,
    "punctuation": _punctuation,
    "mask": _mask,
}


# Words a kind can rewrite: leetspeak and homoglyphs need a letter they have a stand-in for.
_CAN_REWRITE: dict[str, Callable[[str], bool]] = {
    "leet": lambda word: any(ch.lower() in _LEET for ch in word),
    "homoglyph": lambda word: any(ch in _HOMOGLYPHS for ch in word),
}


def _rewrite_words(text: str, kind: str, rng: random.Random) -> str:
    rewrite = _REWRITE[kind]
    can = _CAN_REWRITE.get(kind, bool)
    words = [m for m in _WORD.finditer(text) if can(m.group())]
    if not words:
        return text
    count = max(1, round(len(words) * rng.uniform(1 / 3, 1 / 2)))
    chosen = sorted(rng.sample(range(len(words)), k=min(count, len(words))))
    parts: list[str] = []
    pos = 0
    for k in chosen:
        m = words[k]
        parts += (text[pos : m.start()], rewrite(m.group(), rng))
        pos = m.end()
    parts.append(text[pos:])
    return "".join(parts)


def obfuscate(text: str, kind: str, rng: random.Random) -> str:
    """``text`` with some of its words disguised the way ``kind`` of evader would."""
    if kind == "mixed":
        first, second = rng.sample(tuple(_REWRITE), 2)
        return obfuscate(obfuscate(text, first, rng), second, rng)
    if kind not in _REWRITE:
        raise ValueError(f"unknown obfuscation kind {kind!r}; expected one of {KINDS}")
    return _rewrite_words(text, kind, rng)


def variants(text: str, rng: random.Random, kinds: Sequence[str] = KINDS) -> dict[str, str]:
    """One obfuscated variant of ``text`` per kind, drawn in order from ``rng``."""
    return {kind: obfuscate(text, kind, rng) for kind in kinds}
