"""Text normalisation that undoes common moderation evasions, with a map back to the original.

``normalize`` is the fast path; ``normalize_full`` returns the same text plus, for every output
character, the span of the original it comes from (for highlighting) and the entities found.

Stages, in order (each relies on the ones before):

1. Per-character Unicode cleanup: NFKC, combining marks stripped (Zalgo, accents), format,
   control and invisible characters dropped, casefold. Look-alike letters of other scripts
   keep their form until stage 2, because e.g. Greek "Η" looks like "H" but its lower case
   "η" looks like "n", and NFKC would turn the lunate sigma "ϲ" (looks like "c") into "ς".
2. Homoglyphs: Cyrillic, Greek, Armenian, Cherokee, Lisu and Canadian syllabics letters that
   look like Latin ones. If the comment is really written in one of those scripts (it has
   letters that look like no Latin letter), only words that also contain Latin letters are
   mapped, so "как дела" stays as it is while "fuсk" (Cyrillic "с") is caught.
3. Entities (URLs, e-mails, phones, @mentions) become placeholder tokens. This runs on the
   cleaned text so that links hidden with zero-width or look-alike characters are found, but
   before leetspeak, which would damage digits and "@".
4. Letters drawn with symbols ("y()u", "b/\\stard"), then letters spaced apart ("i d i o t",
   "s.t.u.p.i.d"), joined. Spacing precedes leetspeak because "|" and "+" are separators there
   but letters in leetspeak, and spaced runs may hold leet digits ("1 d 1 0 t").
5. Leetspeak in tokens that mix letters with digits or symbols ("1d10t", "$h1t"). Numbers,
   prices, times, ordinals and units ("2nd", "10am", "5k", "100mg") stay; so do codes whose
   digits are a suffix ("covid19", "mp3") unless they spell a listed word ("a55").
   "1" and "|" read as "i", except next to an "i" or doubled ("1ike", "ki11" -> "like",
   "kill"), or when another reading is a listed word ("1oser" -> "loser").
6. Elongation: a run of three or more of a letter becomes one letter ("stuuupid" -> "stupid",
   "loooser" -> "loser"), or two where only that spells a listed word ("asssss" -> "ass",
   "goooood" -> "good"). Then masked words and punctuation inside words ("f*ck", "a**hole",
   "id.iot"), then elongation again, then runs of a punctuation mark cut to three.
7. Whitespace collapsed to single spaces.

The word list ``_UNMASK_WORDS`` (profanity, insults, then the most common English words) only
chooses between readings of an obfuscated token; it never adds, flags or replaces a word that
was written plainly.

Known false positives, all cheap: "e.g." -> "eg.", "U.S." -> "us.", "I I I" -> "i", accents are
dropped ("café" -> "cafe", and Cyrillic "й" -> "и"), "x-ray" and "e-mail" lose the hyphen
(hyphens next to a fragment of one or two letters are read as inserted), a masked common word
can read as profanity ("sh*t up" -> "shit up"), "f()" -> "fo", and single letters around a
spaced word join it ("y o u s t u p i d" -> "youstupid").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import product

__all__ = [
    "PLACEHOLDERS",
    "Entity",
    "Normalized",
    "find_entities",
    "normalize",
    "normalize_full",
]

PLACEHOLDERS: dict[str, str] = {
    "url": "xxurl",
    "email": "xxemail",
    "phone": "xxphone",
    "mention": "xxuser",
}


@dataclass(frozen=True)
class Entity:
    """A URL, e-mail address, phone number or @mention found in a text."""

    kind: str
    start: int
    end: int
    value: str
    domain: str | None


@dataclass(frozen=True)
class Normalized:
    """Normalised text with, for each of its characters, the source span in the original."""

    text: str
    starts: list[int] = field(repr=False)
    ends: list[int] = field(repr=False)
    entities: list[Entity]

    def span(self, i: int, j: int) -> tuple[int, int]:
        """The original ``(start, end)`` that the normalised slice ``[i, j)`` comes from."""
        if not 0 <= i <= j <= len(self.text):
            raise IndexError(f"slice [{i}, {j}) outside normalised text of length {len(self.text)}")
        if i == j:
            if i < len(self.starts):
                return self.starts[i], self.starts[i]
            edge = self.ends[-1] if self.ends else 0
            return edge, edge
        return self.starts[i], self.ends[j - 1]


# ---------------------------------------------------------------------------------------------
# Word list used ONLY to choose between readings of an obfuscated token: which word a mask
# stands for ("f*ck", "a**hole"), whether "1" is "i" or "l", whether "@ss" is leet or a mention,
# whether a "." or "-" inside a word is an evasion or punctuation, and whether an elongated
# letter was double ("asssss" -> "ass"). It never flags, adds or replaces a word on its own.
# Order matters: when several words fit a mask, the earliest wins, so the most common
# profanity comes first, then slurs and insults, then very common English words.
# ---------------------------------------------------------------------------------------------
# fmt: off
_UNMASK_WORDS: tuple[str, ...] = (
    # profanity
    "fuck", "shit", "bitch", "ass", "asshole", "cunt", "dick", "cock", "pussy", "slut",
    "whore", "bastard", "damn", "hell", "crap", "piss", "twat", "wanker", "prick", "fucking",
    "fucker", "fuckers", "fucked", "fucks", "motherfucker", "shitty", "bullshit", "bitches",
    "bitchy", "assholes", "arse", "arsehole", "dickhead", "douche", "douchebag", "jackass",
    "dumbass", "fatass", "bollocks", "bugger", "bloody", "tosser", "bellend", "knob", "tits",
    "boobs", "penis", "vagina", "porn", "sex", "butt", "suck", "sucks", "sucker", "pissed",
    # slurs (masked slurs are a classic evasion)
    "nigger", "nigga", "faggot", "fag", "dyke", "tranny", "kike", "spic", "chink", "retard",
    "retarded",
    # insults
    "idiot", "idiots", "idiotic", "stupid", "moron", "morons", "moronic", "dumb", "loser",
    "losers", "imbecile", "cretin", "fool", "freak", "creep", "pervert", "scum", "scumbag",
    "trash", "garbage", "worthless", "pathetic", "useless", "ugly", "disgusting", "hoe",
    "skank", "jerk", "fat", "nazi", "lame", "clown", "pig", "rat", "coward", "liar", "parasite",
    # threats
    "kill", "die", "rape", "rapist", "hate", "murder",
    # The most frequent English words of three letters or more (function words, then common
    # verbs with their usual forms, nouns and adjectives), last so they never shadow the above.
    "the", "and", "that", "have", "for", "not", "with", "you", "this", "but", "his", "from",
    "they", "say", "her", "she", "will", "one", "all", "would", "there", "their", "what", "out",
    "about", "who", "get", "which", "when", "make", "can", "like", "time", "just", "him",
    "know", "take", "people", "into", "year", "your", "good", "some", "could", "them", "see",
    "other", "than", "then", "now", "look", "only", "come", "its", "over", "think", "also",
    "back", "after", "use", "two", "how", "our", "work", "first", "well", "way", "even", "new",
    "want", "because", "any", "these", "give", "day", "most", "are", "was", "were", "been",
    "has", "had", "did", "does", "doing", "done", "said", "says", "got", "gets", "getting",
    "made", "makes", "went", "goes", "going", "gone", "came", "comes", "coming", "took",
    "takes", "taken", "gave", "gives", "given", "knew", "knows", "known", "thought", "thinks",
    "looked", "looks", "looking", "wanted", "wants", "used", "uses", "using", "found", "find",
    "finds", "tell", "told", "tells", "ask", "asked", "seem", "seems", "feel", "feels", "felt",
    "try", "tried", "trying", "leave", "left", "call", "called", "keep", "kept", "let", "begin",
    "help", "talk", "talking", "turn", "start", "show", "hear", "heard", "play", "run", "move",
    "live", "lives", "believe", "hold", "bring", "happen", "write", "wrote", "sit", "stand",
    "lose", "lost", "loses", "pay", "paid", "meet", "learn", "lead", "understand", "watch",
    "follow", "stop", "speak", "read", "allow", "add", "spend", "grow", "open", "walk", "win",
    "offer", "remember", "love", "loves", "loved", "hate", "hates", "hated", "likes", "liked",
    "consider", "appear", "buy", "wait", "serve", "die", "dies", "died", "send", "expect",
    "build", "stay", "fall", "cut", "reach", "remain", "suggest", "raise", "pass", "sell",
    "require", "report", "decide", "pull", "eat", "eats", "drink", "sleep", "shut", "shoot",
    "hope", "need", "needs", "mean", "means", "put", "puts", "set", "sure", "should", "must",
    "might", "shall", "may", "yes", "yeah", "why", "where", "here", "more", "very", "much",
    "many", "such", "own", "same", "still", "never", "ever", "always", "again", "off", "too",
    "down", "why", "each", "every", "both", "few", "those", "while", "before", "through",
    "under", "around", "without", "against", "between", "really", "maybe", "please", "thanks",
    "nothing", "something", "anything", "everything", "nobody", "somebody", "anybody",
    "everybody", "everyone", "someone", "anyone", "yourself", "yourselves", "himself",
    "herself", "myself", "themselves", "yours", "mine", "ours", "theirs", "man", "men",
    "woman", "women", "child", "children", "kid", "kids", "boy", "girl", "guy", "guys",
    "friend", "friends", "family", "mother", "father", "mom", "dad", "son", "daughter",
    "brother", "sister", "wife", "husband", "life", "world", "school", "state", "country",
    "city", "home", "house", "room", "place", "thing", "things", "part", "hand", "head", "face",
    "eye", "eyes", "mouth", "body", "mind", "heart", "name", "word", "words", "story", "fact",
    "idea", "money", "job", "business", "government", "law", "police", "war", "water", "food",
    "car", "book", "game", "team", "week", "month", "night", "morning", "today", "tomorrow",
    "hour", "minute", "moment", "end", "side", "line", "point", "case", "problem", "question",
    "reason", "result", "change", "number", "group", "company", "party", "power", "news",
    "comment", "comments", "post", "article", "website", "internet", "video", "picture",
    "fire", "piece", "bit", "lot", "kind", "sort", "great", "little", "long", "old", "big",
    "high", "small", "large", "next", "early", "young", "important", "public", "bad", "same",
    "able", "last", "late", "real", "best", "better", "worse", "worst", "free", "true",
    "false", "whole", "clear", "hard", "easy", "wrong", "right", "dead", "full", "nice",
    "happy", "sad", "sorry", "poor", "rich", "sick", "crazy", "funny", "serious", "simple",
    "entire", "total", "black", "white", "red", "blue", "green", "lost",
)
# fmt: on
_UNMASK_SET = frozenset(_UNMASK_WORDS)
_UNMASK_RANK = {w: rank for rank, w in reversed(list(enumerate(_UNMASK_WORDS)))}
_UNMASK_BY_LEN: dict[int, list[str]] = {}
_UNMASK_BY_LEN_START: dict[tuple[int, str], list[str]] = {}
for _w in dict.fromkeys(_UNMASK_WORDS):
    _UNMASK_BY_LEN.setdefault(len(_w), []).append(_w)
    _UNMASK_BY_LEN_START.setdefault((len(_w), _w[0]), []).append(_w)


def _fits(pieces: Sequence[str], word: str, slack: int, at: int = 0) -> bool:
    """Whether ``word`` is the letter ``pieces`` with each other piece read as letters.

    A non-letter piece of n characters stands for n letters, give or take ``slack`` (but at
    least one).
    """
    if not pieces:
        return at == len(word)
    piece, rest = pieces[0], pieces[1:]
    if piece[0].isalpha():
        return word.startswith(piece, at) and _fits(rest, word, slack, at + len(piece))
    low, high = max(1, len(piece) - slack), len(piece) + slack
    return any(_fits(rest, word, slack, at + k) for k in range(low, high + 1))


def _listed_word(pieces: Sequence[str], slack: int) -> str | None:
    """The first listed word that the masked token ``pieces`` can stand for."""
    if not slack:
        size = sum(map(len, pieces))
        if pieces[0][0].isalpha():
            candidates = _UNMASK_BY_LEN_START.get((size, pieces[0][0]), [])
        else:
            candidates = _UNMASK_BY_LEN.get(size, [])
    else:
        size = sum(map(len, pieces))
        masks = sum(1 for p in pieces if not p[0].isalpha())
        candidates = [
            w for n, ws in _UNMASK_BY_LEN.items() if abs(n - size) <= slack * masks for w in ws
        ]
        candidates.sort(key=_UNMASK_RANK.__getitem__)
    return next((w for w in candidates if _fits(pieces, w, slack)), None)


# ---------------------------------------------------------------------------------------------
# Stage 1: per-character cleanup
# ---------------------------------------------------------------------------------------------

# Invisible letters and fillers used to split words without showing anything.
_INVISIBLE = frozenset("\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u3164\uffa0")
_BLANKS = frozenset("\u2800")  # braille blank: shown as a space

# Combining marks that decorate letters (accents, Zalgo). Marks that are part of other scripts'
# spelling (Devanagari vowel signs, Hebrew points, ...) are kept.
_STRIP_MARK_RANGES = (
    (0x0300, 0x036F),  # combining diacritical marks
    (0x0483, 0x0489),  # combining Cyrillic
    (0x1AB0, 0x1AFF),  # combining diacritical marks extended
    (0x1DC0, 0x1DFF),  # combining diacritical marks supplement
    (0x20D0, 0x20FF),  # combining marks for symbols
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFE20, 0xFE2F),  # combining half marks
    (0xE0100, 0xE01EF),  # variation selectors supplement
)

# Latin-script look-alikes that NFKC keeps: from Unicode confusables.txt (ɑ ɡ ɩ ɪ ı ʋ ...) and
# letters with a stroke or hook that evaders use for the plain letter (ø ł đ ʐ ...).
# fmt: off
_LATIN_LOOKALIKES: dict[str, str] = {
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɡ": "g", "ɣ": "y", "ɩ": "i", "ɪ": "i", "ʋ": "u",
    "ʏ": "y", "ɯ": "w", "ƽ": "s", "ᴄ": "c", "ᴏ": "o", "ᴑ": "o", "ᴜ": "u", "ᴠ": "v",
    "ᴡ": "w", "ᴢ": "z", "ᶃ": "g", "℮": "e", "ø": "o", "ł": "l", "đ": "d", "ħ": "h",
    "ŧ": "t", "ƀ": "b", "ɨ": "i", "ƶ": "z", "ɵ": "o", "ɓ": "b", "ɗ": "d", "ƙ": "k",
    "ƴ": "y", "ɦ": "h", "ʂ": "s", "ɱ": "m", "ɲ": "n", "ɾ": "r", "æ": "ae", "œ": "oe",
    "ꜱ": "s", "ᴦ": "r", "ꭇ": "r", "ƈ": "c", "ɠ": "g", "ƭ": "t", "ʈ": "t", "ɖ": "d",
    "ɳ": "n", "ɭ": "l", "ʐ": "z", "ȥ": "z", "ɀ": "z", "ƒ": "f", "ɋ": "q", "ʠ": "q",
}
# fmt: on

# Enclosed and small-capital Latin letters without a useful NFKC form (🅰, ⒜, ᴀ ...).
_LETTER_NAME = re.compile(
    r"(?:NEGATIVE |PARENTHESIZED )?(?:SQUARED |CIRCLED )?LATIN (?:CAPITAL|SMALL) LETTER ([A-Z])"
    r"|LATIN LETTER SMALL CAPITAL ([A-Z])"
)

# Stage 2 table: letters of other scripts that look like a Latin letter, mapped to that letter
# in lower case. Built from Unicode confusables.txt (UTS #39) for Cyrillic, Greek, Armenian,
# Cherokee and Lisu; additions beyond it are marked "+": lower-case forms of small-capital
# look-alikes (в н м т к), п for n, Greek letters evaders use (ε η μ ω β κ τ), and the palochka (ӏ),
# which confusables.txt reads as "i" but is drawn without a dot, like "l".
_HOMOGLYPH_PAIRS = (
    # Cyrillic lower case
    "аa вb+ еe іi јj кk+ мm+ нh+ оo рp сc тt+ уy хx ѕs һh ԁd ԛq ԝw ѡw ѵv үy ӏl+ гr ҽe ьb пn+ "
    # Cyrillic upper case
    "АA ВB ЕE КK МM НH ОO РP СC ТT УY ХX ЅS ІI ӀL+ ЈJ ҺH ԚQ ԜW ҮY ѴV ԌG ЬB "
    # Greek lower case
    "αa γy ιi νv οo ρp σo υu ϲc ϳj ϱp κk+ τt+ εe+ ϵe+ ηn+ μu+ ωw+ βb+ χx "
    # Greek upper case
    "ΑA ΒB ΕE ΖZ ΗH ΙI ΚK ΜM ΝN ΟO ΡP ΤT ΥY ΧX ϹC ͿJ ϜF ϺM ϒY "
    # Armenian
    "աw գq զq հh ոn ռn սu ցg քf օo ՍU ՏS ՕO "
    # Cherokee (upper case is the casefolded form)
    "ᎠD ᎡR ᎢT ᎥI ᎩY ᎪA ᎫJ ᎬE ᏔW ᎳW ᎷM ᎻH ᏀG ᏂH ᏃZ ᏏB ᏒR ᏚS ᏕS ᏙV ᏞL ᏟC ᏢP ᏦK ᏧD ᏳG ᏴB "
    # Lisu
    "ꓐB ꓑP ꓒD ꓓD ꓔT ꓖG ꓗK ꓙJ ꓚC ꓜZ ꓝF ꓟM ꓠN ꓡL ꓢS ꓣR ꓦV ꓧH ꓪW ꓫX ꓬY ꓮA ꓰE ꓲI ꓳO ꓴU "
    # Canadian syllabics
    "ᖯb ᑯd ᗅA ᗞD ᗪD ᗰM ᗷB ᕼH ᖇR ᖴF ᑌU ᑭP ᒍJ ᒪL ᐯV "
    # the "small caps" F of text generators
    "ғf+"
)
_HOMOGLYPHS: dict[str, str] = {pair[0]: pair[1].lower() for pair in _HOMOGLYPH_PAIRS.split()}
assert all(value.isascii() and len(value) == 1 for value in _HOMOGLYPHS.values())
_HOMOGLYPH_TABLE = str.maketrans(_HOMOGLYPHS)
# Upper-case keys whose lower case would read as a different letter (Η "H" vs η "n").
_CASED_HOMOGLYPHS = frozenset(c for c in _HOMOGLYPHS if c.casefold() != c)
_CASEFOLD_HOMOGLYPHS = str.maketrans({c: c.casefold() for c in _CASED_HOMOGLYPHS})
_HOMOGLYPH_CLASS = "".join(sorted(_HOMOGLYPHS))
_HOMOGLYPH_CHAR = re.compile(f"[{_HOMOGLYPH_CLASS}]")
_I_OR_L_CHARS = "ιӏӀІ"
_I_OR_L = re.compile(f"[{_I_OR_L_CHARS}]")
_HOMOGLYPH_TOKEN = re.compile(rf"(?<![^\W_])[^\W_]*[{_HOMOGLYPH_CLASS}][^\W_]*")
# A letter of one of those scripts that looks like no Latin letter: the text is really written
# in that script, so only mixed-script tokens are mapped.
_FOREIGN_LETTER = re.compile(
    "["
    + "".join(
        chr(code)
        for lo, hi in ((0x370, 0x52F), (0x531, 0x58F), (0x13A0, 0x13FF), (0xA4D0, 0xA4FF))
        for code in range(lo, hi + 1)
        if unicodedata.category(chr(code)).startswith("L") and chr(code) not in _HOMOGLYPHS
    )
    + "]"
)
_ASCII_LETTER = re.compile(r"[a-z]")


def _strippable_mark(ch: str) -> bool:
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _STRIP_MARK_RANGES)


def _clean_char(ch: str) -> str:
    """What one character becomes in stage 1 (possibly several characters, or none)."""
    category = unicodedata.category(ch)
    if category == "Cs":
        return ""
    if category == "Cc":
        return " " if ch.isspace() else ""
    if category == "Cf" or ch in _INVISIBLE or _strippable_mark(ch):
        return ""
    if ch in _BLANKS:
        return " "
    if ch in _HOMOGLYPHS:
        return ch  # stage 2 decides, per word (NFKC would turn lunate "ϲ" into "ς")
    if ch in _LATIN_LOOKALIKES:
        return _LATIN_LOOKALIKES[ch]
    named = _LETTER_NAME.fullmatch(unicodedata.name(ch, ""))
    if named:
        return (named.group(1) or named.group(2)).lower()
    decomposed = "".join(c for c in unicodedata.normalize("NFKD", ch) if not _strippable_mark(c))
    composed = unicodedata.normalize("NFKC", decomposed)
    if len(composed) == 1 and composed in _HOMOGLYPHS:
        return composed
    result = composed.casefold()
    if result == ch:
        return result
    # A compatibility form can itself need cleaning (e.g. "ǅ" -> "dž" -> "dz").
    return "".join(_CLEAN[ord(c)] if c != ch else c for c in result)


class _CleanTable(dict):
    """``str.translate`` table for stage 1, filled lazily for the characters actually seen."""

    def __missing__(self, code: int) -> str:
        value = _clean_char(chr(code))
        if len(self) < 65_536:  # caps memory if someone sends every code point
            self[code] = value
        return value


class _WidthTable(dict):
    """Maps a character to ``chr(n)``, n being how many characters it becomes in stage 1."""

    def __missing__(self, code: int) -> str:
        value = chr(len(_CLEAN[code]))
        if len(self) < 65_536:
            self[code] = value
        return value


_CLEAN = _CleanTable()
_WIDTH = _WidthTable()
for _code in range(128):
    _CLEAN[_code] = _clean_char(chr(_code))


# ---------------------------------------------------------------------------------------------
# Offset-tracking substitution helper
# ---------------------------------------------------------------------------------------------

# A replacement: the new text, and for each of its characters the (lo, hi) span relative to the
# match it comes from; None means every character maps to the whole match, and _SAME that the
# text has the match's length and maps one to one.
_Replacement = tuple[str, Sequence[tuple[int, int]] | None]
_Replacer = Callable[[re.Match[str], bool], _Replacement]
_Maps = tuple[str, list[int] | None, list[int] | None]
_SAME: Sequence[tuple[int, int]] = ((-1, -1),)  # a marker, compared by identity


def _apply(
    matches: Iterable[re.Match[str]],
    fn: _Replacer,
    s: str,
    st: list[int] | None,
    en: list[int] | None,
) -> _Maps:
    """Replace each match by ``fn(match)``, carrying the offset maps along when they are given.

    Both paths build the text the same way, so ``normalize`` and ``normalize_full`` agree.
    """
    track = st is not None and en is not None
    parts: list[str] = []
    new_st: list[int] = []
    new_en: list[int] = []
    pos = 0
    for m in matches:
        a, b = m.span()
        text, spans = fn(m, track)
        if text == m.group():
            continue
        parts += (s[pos:a], text)
        if st is not None and en is not None:
            new_st += st[pos:a]
            new_en += en[pos:a]
            if spans is None:
                new_st += [st[a]] * len(text)
                new_en += [en[b - 1]] * len(text)
            elif spans is _SAME:
                new_st += st[a:b]
                new_en += en[a:b]
            else:
                for x, y in spans:
                    new_st.append(st[a + x])
                    new_en.append(en[a + y - 1])
        pos = b
    if not parts:
        return s, st, en
    parts.append(s[pos:])
    if st is None or en is None:
        return "".join(parts), None, None
    return "".join(parts), new_st + st[pos:], new_en + en[pos:]


def _in_words(pattern: re.Pattern[str], hint: re.Pattern[str], s: str) -> Iterator[re.Match[str]]:
    """Matches of ``pattern`` inside the space-delimited words where ``hint`` matches.

    Scanning a whole comment with a pattern that starts with a look-behind costs more than
    finding the few suspicious characters first (the hint starts with a character class, which
    the regex engine skips to quickly).
    """
    done = 0
    for h in hint.finditer(s):
        at = h.start()
        if at < done:
            continue
        start = max(s.rfind(" ", 0, at) + 1, done)
        end = s.find(" ", at)
        if end < 0:
            end = len(s)
        yield from pattern.finditer(s, start, end)
        done = max(end, at + 1)


# ---------------------------------------------------------------------------------------------
# Stages 1-2
# ---------------------------------------------------------------------------------------------


def _map_homoglyph_token(m: re.Match[str], want: bool) -> _Replacement:
    token = m.group()
    mapped = token.translate(_HOMOGLYPH_TABLE)
    if mapped not in _UNMASK_SET and _I_OR_L.search(token):
        # "ι", "ӏ" and "І" pass for both "i" and "l": "yourseιf", "ιoser"
        places = [i for i, c in enumerate(token) if c in _I_OR_L_CHARS][:4]
        for letters in product("il", repeat=len(places)):
            chars = list(mapped)
            for i, c in zip(places, letters, strict=True):
                chars[i] = c
            if "".join(chars) in _UNMASK_SET:
                mapped = "".join(chars)
                break
    return mapped, _SAME


def _map_homoglyph_token_in_foreign_text(m: re.Match[str], want: bool) -> _Replacement:
    token = m.group()
    if _ASCII_LETTER.search(token):
        return _map_homoglyph_token(m, want)
    return token.translate(_CASEFOLD_HOMOGLYPHS), _SAME


def _clean(text: str, track: bool) -> _Maps:
    """Stages 1 and 2."""
    s = text.translate(_CLEAN)
    st: list[int] | None = None
    en: list[int] | None = None
    if track:
        n = len(text)
        if len(s) == n and text.isascii():
            st, en = list(range(n)), list(range(1, n + 1))
        else:
            st, en = _expand(text.translate(_WIDTH))
    if s.isascii() or not _HOMOGLYPH_CHAR.search(s):
        return s, st, en
    if _FOREIGN_LETTER.search(s):
        # Text in those scripts: only words that also have Latin letters are disguised.
        fn = _map_homoglyph_token_in_foreign_text
    elif _I_OR_L.search(s):
        fn = _map_homoglyph_token
    else:
        # Every look-alike is an evasion, and the mapping is 1:1.
        return s.translate(_HOMOGLYPH_TABLE), st, en
    return _apply(_in_words(_HOMOGLYPH_TOKEN, _HOMOGLYPH_CHAR, s), fn, s, st, en)


_NOT_ONE = re.compile("[^\x01]")


def _expand(widths: str) -> tuple[list[int], list[int]]:
    """Offset maps for stage 1, from each original character's output width."""
    st: list[int] = []
    en: list[int] = []
    pos = 0
    for m in _NOT_ONE.finditer(widths):
        i = m.start()
        st += range(pos, i)
        en += range(pos + 1, i + 1)
        width = ord(widths[i])
        st += [i] * width
        en += [i + 1] * width
        pos = i + 1
    st += range(pos, len(widths))
    en += range(pos + 1, len(widths) + 1)
    return st, en


# ---------------------------------------------------------------------------------------------
# Stage 3: entities
# ---------------------------------------------------------------------------------------------

# Labels, and the number of them in a host, are bounded and matched possessively, so that an
# attempt at any position costs a bounded amount of work ("dot dot dot ..." would otherwise
# make matching quadratic).
_LABEL = r"[a-z0-9][a-z0-9-]{0,62}+"
# TLDs accepted for a bare "name.tld" without a path; English words like "in", "it", "me",
# "so" are left out so that a missing space after a full stop is not read as a link.
# Endings of ordinary words ("real.ly", "bit.ch", "ma.de") are left out too: with a path
# ("bit.ly/x") any TLD counts.
_TLD_BARE = (
    "com|net|org|edu|gov|mil|info|biz|xyz|io|co|gg|tv|ru|uk|cn|tk|ml|cc|ws|su|ai|app|dev|"
    "onion|online|site|shop|store|top"
)
# "name. com": spammers break a link with a space after the dot; only for the commonest TLDs.
_DOT = r"(?:\s*[\[({<]\s*(?:dot|\.)\s*[\])}>]\s*|\s+dot\s+|\.\s(?=(?:com|net|org)\b))"
_DOT_OR_PERIOD = rf"(?:\.|{_DOT})"
# a path ends before trailing sentence punctuation
# A backslash starts a path too: "bit.ly\\Kw769F" is a link typed to slip past filters.
_PATH = r"(?:[/?#\\][^\s<>\"']*(?<![.,;:!?)\]}]))?"
_PORT = r"(?::[0-9]{1,5})?"
_HOST_END = r"(?![a-z0-9-]|\.[a-z0-9])"
_PHONE = (
    r"(?<![\w$€£¥+.,/:-])(?:\+\s?)?(?:\([0-9]{1,4}\)\s?)?[0-9]{1,5}"
    r"(?:[ .-][0-9]{2,5}){1,5}(?![0-9a-z%]|[.,][0-9])"
    r"|(?<![\w$€£¥+.,/:-])\+?[0-9]{10,15}(?![0-9a-z%]|[.,][0-9])"
)
_MAIL_HOSTS = (
    "gmail|googlemail|yahoo|hotmail|outlook|live|msn|aol|icloud|protonmail|proton|gmx|"
    "yandex|mail|zoho|fastmail|tutanota|qq"
)
# Words that precede "dot com" or "at gmail" in ordinary prose.
_PROSE = r"(?:the|a|an|this|that|of|and|or|old|big|new|my|your|his|her|our|their|its|look|me|"
_PROSE += r"him|them|us|you|it|is|was|be|are|stare|laugh|laughing|home|work|mad|good|bad)\b"
_EMAIL_LOCAL = r"[a-z0-9][a-z0-9._%+-]*+"
_NAME_START = r"(?<![a-z0-9._%+-])"
_ENTITY = re.compile(
    # e-mail: name@host.tld, name [at] host [dot] tld, name at gmail dot com
    rf"(?P<email>{_NAME_START}{_EMAIL_LOCAL}"
    rf"(?:@|\s*[\[({{<]\s*at\s*[\])}}>]\s*){_LABEL}(?:{_DOT_OR_PERIOD}{_LABEL}){{0,8}}"
    rf"{_DOT_OR_PERIOD}[a-z]{{2,24}}{_HOST_END}"
    rf"|{_NAME_START}(?!{_PROSE}){_EMAIL_LOCAL}\s+at\s+(?:{_MAIL_HOSTS}){_DOT_OR_PERIOD}(?:{_TLD_BARE})"
    rf"{_HOST_END})"
    # URL with a scheme (also defanged hxxp:// and http[:]//)
    r"|(?P<url>(?<![a-z0-9])(?:h[tx]{2}ps?|ftp)(?::|\[:\]|\(:\))//[^\s<>\"']*(?<![.,;:!?)\]}])"
    # www.host...
    rf"|(?<![a-z0-9.-])www{_DOT_OR_PERIOD}{_LABEL}(?:{_DOT_OR_PERIOD}{_LABEL}){{0,8}}{_PORT}{_PATH}"
    # bare host with a path, any TLD: bit.ly/xyz
    rf"|(?<![a-z0-9.@-]){_LABEL}(?:\.{_LABEL}){{0,8}}\.[a-z]{{2,24}}(?=[/\\]){_PATH}"
    # bare host with a common TLD: example.com, example dot com, example[.]com
    rf"|(?<![a-z0-9.@-])(?!{_PROSE}){_LABEL}(?:{_DOT_OR_PERIOD}{_LABEL}){{0,8}}"
    rf"{_DOT_OR_PERIOD}(?:{_TLD_BARE}){_HOST_END}{_PORT}{_PATH})"
    # phone: +44 20 7946 0958, (555) 123-4567, 555.123.4567, 5551234567
    rf"|(?P<phone>{_PHONE})"
    # @mention
    r"|(?P<mention>(?<![\w@])@[a-z0-9_]{1,30}(?![\w@$€|+]))"
)
# Anchors around which the entity regex is tried (scanning every position costs too much).
_TLD_HINT = re.compile(rf"\.\s?(?:{_TLD_BARE}|[a-z]{{2,24}}[/\\])")
_DIGITS_HINT = re.compile(r"[0-9][0-9 ().-]{5,}[0-9]")
_SPELLED_DOT = re.compile(r"dot\b")
_BRACKETED = re.compile(r"[\[({<]\s*(?:dot|\.|at)\s*[\])}>]")
_SPELLED_AT = re.compile(rf" at (?:{_MAIL_HOSTS})\b")
_PHONE_ONLY = re.compile(_PHONE)
_PHONE_SEPARATOR = re.compile(r"(?<=[0-9])[ .-](?=[0-9])")
_SCHEME = re.compile(r"^[a-z]+(?::|\[:\]|\(:\))//")
_DOT_FORM = re.compile(_DOT)
_AT_FORM = re.compile(r"@|\s*[\[({<]\s*at\s*[\])}>]\s*|\s+at\s+")


def _host(raw: str, kind: str) -> str:
    """The lower-cased host of a URL or e-mail match, without "www."."""
    raw = _AT_FORM.split(raw, maxsplit=1)[-1] if kind == "email" else _SCHEME.sub("", raw)
    host = _DOT_FORM.sub(".", raw)
    host = re.split(r"[/\\?#:]", host, maxsplit=1)[0].strip(".")
    return host.removeprefix("www.")


def _valid_phone(raw: str) -> bool:
    groups = re.findall(r"[0-9]+", raw)
    digits = sum(map(len, groups))
    if not 7 <= digits <= 15:
        return False
    marked = raw.startswith("+") or "(" in raw
    if len(set(_PHONE_SEPARATOR.findall(raw))) > (2 if marked else 1):
        return False  # "3.14 2024-01-15" is not one number
    if marked:
        return True
    if len(groups) == 1:
        return digits >= 10
    sizes = [len(g) for g in groups]
    if len(groups) == 3 and sizes.count(4) == 1 and max(sizes) == 4 and sorted(sizes)[1] <= 2:
        return False  # a date: 2024-01-15, 15.01.2024
    if all(n == 4 and g[:2] in ("19", "20") for g, n in zip(groups, sizes, strict=True)):
        return False  # years: 1999 2000, 2010-2015
    if len(groups) >= 3 and sizes[0] <= 2 and all(n == 3 for n in sizes[1:]):
        return False  # thousands: 1 000 000, 10.000.000
    # numbers in a list: 100 200 300 (but 06 12 34 56 78 is a phone)
    return not (" " in raw and len(set(sizes)) == 1 and not groups[0].startswith("0"))


def _decodes_to_word(token: str) -> bool:
    return any(c in _UNMASK_SET for c in _leet_candidates(token[:12]))


def _is_mention(raw: str) -> bool:
    name = raw[1:]
    if name == "user":  # OLID writes every mention as @USER
        return True
    if len(name) < 3 or not _ASCII_LETTER.search(name):
        return False  # "@ss", "@re", "@5pm" are leetspeak or prose
    return not _decodes_to_word(raw)


def _word_start(s: str, i: int, words: int) -> int:
    """Start of the word ``words`` words before the one at ``i``."""
    for _ in range(words + 1):
        i = s.rfind(" ", 0, i)
        if i < 0:
            return 0
    return i + 1


def _word_end(s: str, i: int, words: int) -> int:
    """End of the word ``words`` words after the one at ``i``."""
    for _ in range(words + 1):
        i = s.find(" ", i + 1)
        if i < 0:
            return len(s)
    return i


def _entity_windows(s: str) -> list[tuple[int, int]]:
    """Merged regions of ``s`` that may hold an entity."""
    windows = []
    for anchor in ("@", "//", "www"):
        i = s.find(anchor)
        while i >= 0:
            windows.append((_word_start(s, i, 0), _word_end(s, i, 0)))
            i = s.find(anchor, i + 1)
    windows += [
        (_word_start(s, m.start(), 0), _word_end(s, m.start(), 0)) for m in _TLD_HINT.finditer(s)
    ]
    # "john at gmail dot com", "name [at] site [dot] org": a few words either side
    spelled = []
    if "dot" in s:
        spelled.append(_SPELLED_DOT)
    if "[" in s or "(" in s or "{" in s or "<" in s:
        spelled.append(_BRACKETED)
    if " at " in s:
        spelled.append(_SPELLED_AT)
    for hint in spelled:
        windows += [
            (_word_start(s, m.start(), 3), _word_end(s, m.end() - 1, 2)) for m in hint.finditer(s)
        ]
    windows += [
        (_word_start(s, m.start(), 0), _word_end(s, m.end() - 1, 0))
        for m in _DIGITS_HINT.finditer(s)
    ]
    windows.sort()
    merged: list[tuple[int, int]] = []
    for a, b in windows:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _entity_spans(s: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every entity in cleaned text, in order."""
    found = []
    for start, end in _entity_windows(s):
        pos = start
        while m := _ENTITY.search(s, pos, end):
            a, b = m.span()
            kind = m.lastgroup or ""
            if kind == "phone":
                b = _phone_end(s, a, b)
                if b < 0:
                    pos = a + 1
                    continue
            elif kind == "mention" and not _is_mention(m.group()):
                pos = b
                continue
            found.append((a, b, kind))
            pos = b
    return found


def _phone_end(s: str, a: int, b: int) -> int:
    """End of the longest valid phone number starting at ``a`` and ending by ``b``, or -1."""
    cuts = [b, *reversed([m.start() for m in _PHONE_SEPARATOR.finditer(s, a, b)])]
    for cut in cuts:
        if _PHONE_ONLY.fullmatch(s, a, cut) and _valid_phone(s[a:cut]):
            return cut
    return -1


def _entities(
    s: str, st: list[int] | None, en: list[int] | None, original: str | None
) -> tuple[str, list[int] | None, list[int] | None, list[Entity]]:
    """Stage 3: entities become " placeholder " tokens."""
    spans = _entity_spans(s)
    if not spans:
        return s, st, en, []
    parts: list[str] = []
    entities: list[Entity] = []
    new_st: list[int] = []
    new_en: list[int] = []
    pos = 0
    for a, b, kind in spans:
        token = f" {PLACEHOLDERS[kind]} "
        parts += (s[pos:a], token)
        if st is not None and en is not None and original is not None:
            lo, hi = st[a], en[b - 1]
            new_st += st[pos:a] + [lo] * len(token)
            new_en += en[pos:a] + [hi] * len(token)
        else:
            # Untracked (fast path): offsets and value refer to the cleaned text.
            lo, hi, original = a, b, s
        domain = _host(s[a:b], kind) if kind in ("url", "email") else None
        entities.append(Entity(kind, lo, hi, original[lo:hi], domain or None))
        pos = b
    parts.append(s[pos:])
    if st is None or en is None:
        return "".join(parts), None, None, entities
    return "".join(parts), new_st + st[pos:], new_en + en[pos:], entities


# ---------------------------------------------------------------------------------------------
# Stage 4: letters spaced apart
# ---------------------------------------------------------------------------------------------

_SPACED_LETTER = r"[a-z0-9@$€!*#]"
_SPACED_NOT_AFTER = r"(?![\w@$€*#]|!\w)"
# Runs with another separator first, so that in "i d i o t s.t.u.p.i.d" and
# "s|t|u|p|i|d b i t c h" the letter between two runs goes with the non-space one.
_SPACED_BY_SYMBOL = re.compile(
    rf"(?<![\w@$€!*#]){_SPACED_LETTER}(?P<sep>[.\-_*·•|/,+~]){_SPACED_LETTER}"
    rf"(?:(?P=sep){_SPACED_LETTER})+{_SPACED_NOT_AFTER}"
)
_SPACED_BY_SPACE = re.compile(
    rf"(?<![\w@$€!*#]){_SPACED_LETTER}(?: {_SPACED_LETTER}){{2,}}{_SPACED_NOT_AFTER}"
    r"(?![.\-_*·•|/,+~][a-z0-9])"  # "f u c k y-ou": the "y" starts the next word
)
_SPACED_SEP = r"[ .\-_*·•|/,+~]"
_SPACED_HINT = re.compile(rf"{_SPACED_SEP}{_SPACED_LETTER}{_SPACED_SEP}{_SPACED_LETTER}(?![^\W_])")


def _spaced_runs(pattern: re.Pattern[str], s: str) -> Iterator[re.Match[str]]:
    """Matches of ``pattern``, tried only where a run of single letters starts."""
    pos = 0
    while hint := _SPACED_HINT.search(s, pos):
        # the first hint in a run sits one letter after the run's start
        m = pattern.match(s, max(hint.start() - 1, 0))
        if m:
            yield m
            pos = m.end()
        else:
            pos = hint.start() + 1


def _join_spaced(m: re.Match[str], want: bool) -> _Replacement:
    run = m.group()
    letters = run[::2]
    if len(_ASCII_LETTER.findall(letters)) < 2:
        return run, None
    spans = [(k, k + 1) for k in range(0, len(run), 2)] if want else None
    # "a s t u p i d", "a r e a": the word "a" or "i" was caught in the run.
    if letters not in _UNMASK_SET:
        if letters[0] in "ai" and _RUN.sub(r"\1", letters[1:]) in _UNMASK_SET:
            if spans is not None:
                spans.insert(1, (1, 2))
            return f"{letters[0]} {letters[1:]}", spans
        if letters[-1] in "ai" and letters[:-1] in _UNMASK_SET:
            if spans is not None:
                spans.insert(-1, (len(run) - 2, len(run) - 1))
            return f"{letters[:-1]} {letters[-1]}", spans
    return letters, spans


# ---------------------------------------------------------------------------------------------
# Stage 5: leetspeak
# ---------------------------------------------------------------------------------------------

# fmt: off
_LEET = {
    "0": "o", "1": "i", "2": "z", "3": "e", "4": "a", "5": "s", "6": "g", "7": "t", "8": "b",
    "9": "g",
    "@": "a", "$": "s", "!": "i", "|": "l", "+": "t", "€": "e", "¡": "i", "¢": "c", "§": "s",
}
# fmt: on
_LEET_TABLE = str.maketrans(_LEET)
_LEET_OPTIONS = {**_LEET, "1": "il", "|": "li", "l": "li", "6": "gb"}
_LEET_LCLASS = "@$€!|+¡¢§"
_LEET_CHARS = "0-9" + _LEET_LCLASS
_LEET_TOKEN = re.compile(
    rf"(?<![\w{_LEET_LCLASS}])(?=[\w{_LEET_LCLASS}]*?[{_LEET_CHARS}])[\w{_LEET_LCLASS}]+"
)
# a leet character, but not "!" ending a word
_LEET_HINT = re.compile(rf"[{_LEET_CHARS}](?:(?<!!)|(?=\w))")
# "ii" is rare in English, "ll" and "li" are common: "ki11" is "kill", "1ike" is "like"
_ONES = re.compile(r"[1|]{2,}|(?<=i)[1|]|[1|](?=i)")
_NUMBER = re.compile(r"[$€]?[0-9]+")
_NUMBER_WORD = re.compile(r"[$€]?([0-9]+)([a-z]+)")
_DIMENSION = re.compile(r"[0-9]+[xv][0-9]+")  # 4x4, 1v1
_CODE_SUFFIX = re.compile(r"[a-z]+[0-9]+")  # covid19, mp3, win10
# fmt: off
_UNITS = frozenset((
    "k", "m", "b", "bn", "mil", "g", "kg", "mg", "mcg", "km", "cm", "mm", "ml", "l", "lb", "lbs",
    "oz", "ft", "mph", "kph", "kmh", "fps", "hz", "khz", "mhz", "ghz", "gb", "mb", "tb", "kb",
    "gbps", "mbps", "am", "pm", "h", "hr", "hrs", "min", "mins", "s", "sec", "secs", "ms", "d",
    "yo", "yr", "yrs", "y", "x", "p", "px", "pt", "v", "w", "kw", "kwh", "c", "f", "mo", "wk",
))
# fmt: on
_ORDINAL = {"1": "st", "2": "nd", "3": "rd"}


def _leet_candidates(token: str) -> Iterator[str]:
    """Readings of a leet token: the default first, then every other reading of "1", "|", "l"
    (i or l, which evaders swap too) and "6" (g or b)."""
    yield _ONES.sub(lambda m: "l" * len(m.group()), token).translate(_LEET_TABLE)
    options = [_LEET_OPTIONS.get(c, c) for c in token]
    if sum(len(o) > 1 for o in options) <= 5:
        yield from map("".join, product(*options))


# Letters drawn with two or three symbols, next to a letter: "y()u", "b/\\stard", "|\\|ice".
_GLYPHS = {
    "()": "o",
    "[]": "o",
    "/\\": "a",
    "\\/": "v",
    "|\\|": "n",
    "|)": "d",
    "|<": "k",
    "(_)": "u",
    "|_|": "u",
    "\\/\\/": "w",
}
_GLYPH_ALT = "|".join(re.escape(g) for g in sorted(_GLYPHS, key=len, reverse=True))
_GLYPH = re.compile(rf"(?<=[a-z0-9])(?:{_GLYPH_ALT})|(?:{_GLYPH_ALT})(?=[a-z0-9])")
_GLYPH_HINT = re.compile(r"[()\[\]/\\|]")


def _glyph(m: re.Match[str], want: bool) -> _Replacement:
    return _GLYPHS[m.group()], None


def _is_number_with_unit(core: str) -> bool:
    m = _NUMBER_WORD.fullmatch(core)
    if not m:
        return False
    digits, word = m.groups()
    if word in ("st", "nd", "rd", "th"):
        teen = len(digits) > 1 and digits[-2] == "1"
        return word == ("th" if teen else _ORDINAL.get(digits[-1], "th"))
    return word in _UNITS


def _decode_leet(m: re.Match[str], want: bool) -> _Replacement:
    token = m.group()
    if _NUMBER.fullmatch(token) or _is_number_with_unit(token):
        return token, None  # the common case: 2024, $5, 10am, 2nd, 5k
    start, end = 0, len(token)
    # Sentence punctuation around a word stays: "wow!", "c++", "+1"; a single "+" or "!"
    # glued to the front of a word, and "+" or "|" after a longer word, are letters.
    while start < end and token[start] in "!+":
        start += 1
    if start == 1 and start < end and token[start].isalpha():
        start = 0
    whole = token[start:]
    if not whole.isdigit():
        decoded = next((c for c in _leet_candidates(whole) if c in _UNMASK_SET), None)
        if decoded:  # "he||", "a$$"
            return token[:start] + decoded, _SAME
    while end > start and token[end - 1] in "!+|":
        end -= 1
    tail = token[end:]
    if len(tail) == 1 and tail in "+|" and end - start >= 2:
        end += 1
    core = token[start:end]
    if (
        core.isdigit()
        or not _LEET_HINT.search(core)
        or _is_number_with_unit(core)
        or _DIMENSION.fullmatch(core)
    ):
        return token, None
    decoded = next((c for c in _leet_candidates(core) if c in _UNMASK_SET), None)
    if decoded is None:
        if (
            _CODE_SUFFIX.fullmatch(core)
            or "2" in core
            or "6" in core
            or not _ASCII_LETTER.search(core)
        ):
            # covid19, mp3, b2b, x86, $$$: only a listed word makes "a55", "6itch", "@$$" leet
            return token, None
        decoded = next(_leet_candidates(core))
    return token[:start] + decoded + token[end:], _SAME


# ---------------------------------------------------------------------------------------------
# Stage 6: elongation, masks and punctuation inside words
# ---------------------------------------------------------------------------------------------

_TRIPLE = re.compile(r"(.)\1\1")  # hint for elongated letters and repeated punctuation
_ELONGATED = re.compile(r"(?<![a-z])[a-z]*([a-z])\1\1[a-z]*")
_RUN = re.compile(r"([a-z])\1{2,}")


def _collapse(m: re.Match[str], want: bool) -> _Replacement:
    """Runs of 3+ letters become one letter, or two when only that spells a listed word."""
    word = m.group()
    runs = [r.span() for r in _RUN.finditer(word)]
    best: tuple[int, ...] = (1,) * len(runs)
    if len(runs) <= 4:
        for keep in product((1, 2), repeat=len(runs)):
            if _keep_runs(word, runs, keep)[0] in _UNMASK_SET:
                best = keep
                break
    text, spans = _keep_runs(word, runs, best)
    return text, spans if want else None


def _keep_runs(
    word: str, runs: list[tuple[int, int]], keep: Sequence[int]
) -> tuple[str, list[tuple[int, int]]]:
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for (a, b), n in zip(runs, keep, strict=True):
        parts += (word[pos:a], word[a] * n)
        spans += [(k, k + 1) for k in range(pos, a)] + [(a, b)] * n
        pos = b
    parts.append(word[pos:])
    spans += [(k, k + 1) for k in range(pos, len(word))]
    return "".join(parts), spans


_PUNCT_RUN = re.compile(r"([^\w\s])\1{3,}")


def _cap_punct(m: re.Match[str], want: bool) -> _Replacement:
    return m.group(1) * 3, [(0, len(m.group()))] * 3 if want else None


_STRONG_MASK = re.compile(r"[*#_~^%&$@!·•]")
_INNER = r"(?:[*#_~^%&$@!·•]+|[.\-])"
# a run of symbols with at least one "*" or "#" (the lookahead keeps matching linear)
_EDGE = r"(?=[$@!%&]*[*#])[$@!%&*#]++"
_MASKED = re.compile(
    rf"(?<![\w*#$@!%&])(?:(?:{_EDGE})[a-z]+(?:{_INNER}[a-z]+)*(?:{_EDGE})?"
    rf"|[a-z]+(?:{_INNER}[a-z]+)+(?:{_EDGE})?|[a-z]+(?:{_EDGE}))(?![\w*#])"
)
# a mask character, or "." / "-" between letters
_MASK_HINT = re.compile(r"[.\-*#_~^%&$@!·•](?:(?<=[*#_~^%&$@·•])|(?<=[a-z].)(?=[a-z]))")
_PIECES = re.compile(r"[a-z]+|[^a-z]+")


def _unmask(m: re.Match[str], want: bool) -> _Replacement:
    token = m.group()
    pieces = _PIECES.findall(token)  # letters and symbols alternate
    letters = pieces[::2] if pieces[0][0].isalpha() else pieces[1::2]
    joined = "".join(letters)
    # "*" and "#" usually stand for letters; ".", "-" and "_" are usually inserted.
    censored = "*" in token or "#" in token
    # 1. one letter per mask character: f*ck, sh**, a**hole, f.ck
    word = _listed_word(pieces, 0) if censored else None
    if word:
        return word, _SAME
    # 2. characters inserted into a word: id.iot, stu-pid, mor*on
    if joined in _UNMASK_SET:
        return joined, None
    word = None if censored else _listed_word(pieces, 0)
    if word:
        return word, _SAME
    strong = _STRONG_MASK.search(token) is not None
    # 3. a mask of about another length: a*hole, f***ing
    if strong and len(joined) >= 2:
        word = _listed_word(pieces, 1)
        if word:
            return word, None
    # 4. no listed word: drop the mask characters. A "." or "-" between two real words is
    # punctuation ("well-known", "idiot.go", "thanks.i"), so it only goes next to a fragment
    # of one or two letters.
    if (
        not strong
        and min(map(len, letters)) >= 2
        and any(len(p) >= 3 and p in _UNMASK_SET for p in letters)
    ):
        return token, None
    last = len(pieces) - 1
    kept = [
        k
        for k, piece in enumerate(pieces)
        if piece[0].isalpha()
        or k in (0, last)  # leading/trailing symbols are not between letters
        or (
            piece in (".", "-")
            and (min(len(pieces[k - 1]), len(pieces[k + 1])) > 2 or pieces[k + 1] in ("a", "i"))
        )
    ]
    text = "".join(pieces[k] for k in kept)
    if not want:
        return text, None
    starts = [0]
    for piece in pieces:
        starts.append(starts[-1] + len(piece))
    spans = [(i, i + 1) for k in kept for i in range(starts[k], starts[k + 1])]
    return text, spans


# ---------------------------------------------------------------------------------------------
# Pipeline
# ---------------------------------------------------------------------------------------------

_WHITESPACE = re.compile(r"\s{2,}|[^\S ]")  # a lone " " is already what it becomes


def _space(m: re.Match[str], want: bool) -> _Replacement:
    return " ", None


def _run(text: str, track: bool) -> tuple[str, list[int] | None, list[int] | None, list[Entity]]:
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    s, st, en = _clean(text, track)
    s, st, en, entities = _entities(s, st, en, text if track else None)
    if _GLYPH_HINT.search(s):
        s, st, en = _apply(_GLYPH.finditer(s), _glyph, s, st, en)
    if _SPACED_HINT.search(s):
        s, st, en = _apply(_spaced_runs(_SPACED_BY_SYMBOL, s), _join_spaced, s, st, en)
        s, st, en = _apply(_spaced_runs(_SPACED_BY_SPACE, s), _join_spaced, s, st, en)
    s, st, en = _apply(_in_words(_LEET_TOKEN, _LEET_HINT, s), _decode_leet, s, st, en)
    repeated = _TRIPLE.search(s)
    if repeated:
        s, st, en = _apply(_in_words(_ELONGATED, _TRIPLE, s), _collapse, s, st, en)
    if _MASK_HINT.search(s):
        unmasked, st, en = _apply(_in_words(_MASKED, _MASK_HINT, s), _unmask, s, st, en)
        if unmasked is not s:
            # dropping a mask can join two runs of a letter: "aa*a"
            s = unmasked
            s, st, en = _apply(_in_words(_ELONGATED, _TRIPLE, s), _collapse, s, st, en)
    if repeated:
        s, st, en = _apply(_PUNCT_RUN.finditer(s), _cap_punct, s, st, en)
    if st is None or en is None:
        return " ".join(s.split()), None, None, entities
    s, st, en = _apply(_WHITESPACE.finditer(s), _space, s, st, en)
    assert st is not None and en is not None
    if s.startswith(" "):
        s, st, en = s[1:], st[1:], en[1:]
    if s.endswith(" "):
        s, st, en = s[:-1], st[:-1], en[:-1]
    return s, st, en, entities


def normalize(text: str) -> str:
    """Normalised text, the same as ``normalize_full(text).text`` but faster."""
    return _run(text, False)[0]


def normalize_with_entities(text: str) -> tuple[str, list[Entity]]:
    """Normalised text and its entities, fast: entity offsets refer to the cleaned text."""
    s, _, _, entities = _run(text, False)
    return s, entities


def normalize_full(text: str) -> Normalized:
    """Normalised text with the offset map back into ``text`` and the entities found."""
    s, st, en, entities = _run(text, True)
    assert st is not None and en is not None
    return Normalized(s, st, en, entities)


def find_entities(text: str) -> list[Entity]:
    """URLs, e-mail addresses, phone numbers and @mentions in ``text``, in order."""
    s, st, en = _clean(text, True)
    return _entities(s, st, en, text)[3]
