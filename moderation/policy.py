"""The moderation policy: scores, site settings and author standing in, a status and reasons out.

Pure functions and frozen data only (no Flask, no database, no I/O), so that every routing
decision can be replayed and tested from its inputs. Every ``Reason.message`` is shown to
moderators as written.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from types import MappingProxyType
from typing import Any, ClassVar

from classifier.normalize import PLACEHOLDERS, find_entities, normalize
from moderation.status import Status

__all__ = [
    "LOGIN_PROVIDERS",
    "REASON_CODES",
    "AuthorStanding",
    "InvalidSettings",
    "Reason",
    "Scores",
    "SiteSettings",
    "Verdict",
    "count_links",
    "decide",
    "match_words",
]

# Most severe first; reasons in a verdict follow this order. Rejections come in the order of
# their precedence, so the first reason is always the one that chose the status.
REASON_CODES: tuple[str, ...] = (
    "banned_word",
    "spam_reject",
    "abuse_reject",
    "abuse_score",
    "spam_score",
    "suspect_word",
    "too_many_links",
    "classifier_unavailable",
    "premoderated_author",
    "guest",
    "first_comment",
    "pre_moderation",
)
_SEVERITY = {code: rank for rank, code in enumerate(REASON_CODES)}

_MODES = ("post", "pre")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_NONE = frozenset({"", "none", "null", "off"})
_INTEGER = re.compile(r"[+-]?[0-9]+")
_MAX_WORD = 100


class InvalidSettings(ValueError):
    """Site settings that cannot be used; the message says which and why."""


# ---------------------------------------------------------------------------------------------
# Site settings
# ---------------------------------------------------------------------------------------------


def _quote(value: object) -> str:
    return f"“{value}”" if isinstance(value, str) else repr(value)


def _probability(name: str, value: Any, errors: list[str]) -> Any:
    # bool is an int subclass, but "spam_hold": true is a mistake, not 1.0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        errors.append(f"{name} must be a number from 0 to 1, not {_quote(value)}.")
        return value
    if not 0 <= value <= 1:
        errors.append(f"{name} must be a number from 0 to 1, not {value}.")
    return float(value)


def _optional_probability(name: str, value: Any, errors: list[str]) -> Any:
    return None if value is None else _probability(name, value, errors)


def _count(minimum: int) -> Callable[[str, Any, list[str]], Any]:
    def check(name: str, value: Any, errors: list[str]) -> Any:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON from some clients turns 3 into 3.0
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{name} must be a whole number, not {_quote(value)}.")
        elif value < minimum:
            errors.append(f"{name} must be {minimum} or more, not {value}.")
        return value

    return check


def _flag(name: str, value: Any, errors: list[str]) -> Any:
    if not isinstance(value, bool):
        errors.append(f"{name} must be true or false, not {_quote(value)}.")
    return value


def _mode(name: str, value: Any, errors: list[str]) -> Any:
    if value not in _MODES:
        errors.append(f"{name} must be “post” or “pre”, not {_quote(value)}.")
    return value


_DELETION_CHOICES = ("anonymise", "remove")


def _deletion(name: str, value: Any, errors: list[str]) -> Any:
    if value not in _DELETION_CHOICES:
        errors.append(f"{name} must be “anonymise” or “remove”, not {_quote(value)}.")
    return value


def _words(name: str, value: Any, errors: list[str]) -> Any:
    # A bare string would otherwise be read as a list of single letters.
    if not isinstance(value, list | tuple):
        errors.append(f"{name} must be a list of words, not {_quote(value)}.")
        return value
    words: list[str] = []
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, str):
            errors.append(f"{name} must contain only words, not {_quote(item)}.")
            continue
        word = " ".join(item.split())
        if not word:
            continue
        if len(word) > _MAX_WORD:
            errors.append(f"{name} entries must be at most {_MAX_WORD} characters long.")
        elif not any(ch.isalnum() for ch in word):
            errors.append(f"{name} entry {_quote(word)} has no letters or digits.")
        elif word.casefold() not in seen:
            seen.add(word.casefold())
            words.append(word)
    return tuple(words)


def _parse_probability(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text  # left as a string so the checker reports it


def _parse_optional_probability(text: str) -> Any:
    return None if text.lower() in _NONE else _parse_probability(text)


def _parse_count(text: str) -> Any:
    return int(text) if _INTEGER.fullmatch(text) else text


def _parse_flag(text: str) -> Any:
    lowered = text.lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else text


def _parse_words(text: str) -> Any:
    return tuple(text.split(","))


# Ways a reader can log in to comment, as auth/ names them (auth.oauth.PROVIDERS and "email").
LOGIN_PROVIDERS: tuple[str, ...] = ("email", "x", "facebook")
_PROVIDER_ALIASES = {"e-mail": "email", "mail": "email", "twitter": "x"}


def _providers(name: str, value: Any, errors: list[str]) -> Any:
    # A bare string would otherwise be read as a list of single letters.
    if not isinstance(value, list | tuple):
        errors.append(f"{name} must be a list of login providers, not {_quote(value)}.")
        return value
    chosen: set[str] = set()
    for item in value:
        key = str(item).strip().lower()
        key = _PROVIDER_ALIASES.get(key, key)
        if isinstance(item, str) and key in LOGIN_PROVIDERS:
            chosen.add(key)
        else:
            known = ", ".join(LOGIN_PROVIDERS)
            errors.append(f"{name} may only name {known}, not {_quote(item)}.")
    # One canonical order, so that equal choices compare (and cache) equal.
    return tuple(provider for provider in LOGIN_PROVIDERS if provider in chosen)


def _parse_providers(text: str) -> Any:
    return tuple(part for part in (p.strip() for p in text.split(",")) if part)


# name -> (checker for typed values, parser for strings from the CLI)
_Checker = Callable[[str, Any, list[str]], Any]
_KINDS: dict[str, tuple[_Checker, Callable[[str], Any]]] = {
    "mode": (_mode, str.lower),
    "spam_hold": (_probability, _parse_probability),
    "spam_reject": (_probability, _parse_probability),
    "abuse_hold": (_probability, _parse_probability),
    "abuse_reject": (_optional_probability, _parse_optional_probability),
    "banned_words": (_words, _parse_words),
    "suspect_words": (_words, _parse_words),
    "max_links": (_count(0), _parse_count),
    "first_comments_held": (_count(0), _parse_count),
    "trusted_after": (_count(0), _parse_count),
    "trusted_relax": (_probability, _parse_probability),
    "flood_seconds": (_count(0), _parse_count),
    "duplicate_minutes": (_count(0), _parse_count),
    "nudge": (_optional_probability, _parse_optional_probability),
    "allow_guests": (_flag, _parse_flag),
    "edit_minutes": (_count(0), _parse_count),
    # 0 would send every comment, reported or not, to the queue
    "reports_to_queue": (_count(1), _parse_count),
    "reports_to_hide": (_count(0), _parse_count),
    "new_account_days": (_count(0), _parse_count),
    "new_account_report_weight": (_probability, _parse_probability),
    "deleted_account_comments": (_deletion, str.lower),
    "notify_authors": (_flag, _parse_flag),
    "digest_pending": (_count(0), _parse_count),
    "digest_minutes": (_count(0), _parse_count),
    "close_after_days": (_count(0), _parse_count),
    "login_providers": (_providers, _parse_providers),
}


@dataclass(frozen=True)
class SiteSettings:
    """A site's moderation settings, validated on construction."""

    mode: str = "post"
    # The shipped model's recommended thresholds (classifier.model.DEFAULT_THRESHOLDS): its
    # probabilities are calibrated on corpora that disagree about abuse, so plain insults
    # score 0.6-0.8 and clean comments 0.3-0.45; even odds is where a human should look.
    spam_hold: float = 0.50
    spam_reject: float = 0.98
    abuse_hold: float = 0.50
    abuse_reject: float | None = None
    banned_words: tuple[str, ...] = ()
    suspect_words: tuple[str, ...] = ()
    max_links: int = 2
    first_comments_held: int = 1
    trusted_after: int = 5
    trusted_relax: float = 0.10
    flood_seconds: int = 10
    duplicate_minutes: int = 10
    nudge: float | None = None
    allow_guests: bool = False
    edit_minutes: int = 5
    reports_to_queue: int = 3
    reports_to_hide: int = 5
    new_account_days: int = 7
    new_account_report_weight: float = 0.5
    deleted_account_comments: str = "anonymise"
    notify_authors: bool = True
    digest_pending: int = 20
    digest_minutes: int = 60
    close_after_days: int = 0
    login_providers: tuple[str, ...] = ()

    FIELDS: ClassVar[Mapping[str, str]] = MappingProxyType(
        {
            "mode": "“post” publishes unless a rule holds the comment; “pre” holds every comment.",
            "spam_hold": "Spam score (0 to 1) at or above which a comment is held for review.",
            "spam_reject": "Spam score (0 to 1) at or above which a comment goes to the spam "
            "folder.",
            "abuse_hold": "Abuse score (0 to 1) at or above which a comment is held for review.",
            "abuse_reject": "Abuse score (0 to 1) at or above which a comment is rejected; "
            "none: abuse is never rejected automatically.",
            "banned_words": "Words or phrases that reject a comment, even when obfuscated "
            "(comma-separated on the command line).",
            "suspect_words": "Words or phrases that hold a comment for review.",
            "max_links": "Comments with more links than this are held.",
            "first_comments_held": "Hold an author's comments until this many were approved "
            "(0: off).",
            "trusted_after": "Approved comments (with no recent rejection) after which an author "
            "is trusted (0: only authors a moderator marked trusted).",
            "trusted_relax": "How much the hold thresholds rise for trusted authors (never to "
            "the reject threshold's level or above it).",
            "flood_seconds": "Minimum seconds between two comments of one author (0: off).",
            "duplicate_minutes": "The same text from the same author within this many minutes "
            "is refused (0: off).",
            "nudge": "Abuse score (0 to 1) from which a signed-in author is first asked to "
            "reconsider (edit or post anyway) before the comment is routed; none: never.",
            "allow_guests": "Whether people who are not logged in may comment.",
            "edit_minutes": "Minutes during which an author may edit a comment.",
            "reports_to_queue": "Reader reports (weighted) that put a published comment in the "
            "Reported queue; it stays visible.",
            "reports_to_hide": "Reader reports (weighted) that hide a published comment until a "
            "moderator reviews it, and put it in the Reported queue (0: never hide).",
            "new_account_days": "Accounts younger than this many days are new: their reports "
            "count less.",
            "new_account_report_weight": "What one report from a new account counts (0 to 1).",
            "deleted_account_comments": "When a commenter deletes their account: “anonymise” "
            "keeps their comments as “deleted user”; “remove” takes them down.",
            "notify_authors": "E-mail an author when a moderator approves or rejects their held "
            "comment.",
            "digest_pending": "E-mail the site's moderators a digest when this many comments wait "
            "in the Pending queue (0: off).",
            "digest_minutes": "E-mail the digest when the oldest pending comment waited this many "
            "minutes; also the least time between two digests (0: off; digests then come at "
            "most hourly).",
            "close_after_days": "Close an article's comments this many days after its first "
            "comment (0: never).",
            "login_providers": "How readers may log in to comment: email, x, facebook "
            "(comma-separated on the command line; empty: every provider this server offers).",
        }
    )

    def __post_init__(self) -> None:
        errors: list[str] = []
        for name, (check, _) in _KINDS.items():
            # frozen: validation may replace a value by its canonical form (list -> tuple)
            object.__setattr__(self, name, check(name, getattr(self, name), errors))
        if not errors:
            for kind, reject in (("spam", self.spam_reject), ("abuse", self.abuse_reject)):
                hold = getattr(self, f"{kind}_hold")
                if reject is not None and hold > reject:
                    errors.append(
                        f"{kind}_hold ({hold}) must not be above {kind}_reject ({reject})."
                    )
        if errors:
            raise InvalidSettings(" ".join(errors))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SiteSettings:
        """Settings from a mapping of typed values; unknown keys and bad values raise ValueError."""
        if not isinstance(data, Mapping):
            raise InvalidSettings(f"settings must be a mapping, not {type(data).__name__}.")
        _check_names(data)
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict that ``from_dict`` reads back."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in asdict(self).items()
        }

    def allows_login(self, provider: str) -> bool:
        """Whether readers may log in with ``provider`` here (no list: every provider)."""
        return not self.login_providers or provider in self.login_providers

    def with_updates(self, updates: Mapping[str, str | Any]) -> SiteSettings:
        """A copy with some settings changed; string values (from the CLI) are parsed by type."""
        _check_names(updates)
        merged = {field.name: getattr(self, field.name) for field in fields(self)}
        for name, value in updates.items():
            merged[name] = _KINDS[name][1](value.strip()) if isinstance(value, str) else value
        return type(self)(**merged)


def _check_names(data: Mapping[str, Any]) -> None:
    unknown = sorted(str(name) for name in data if name not in _KINDS)
    if unknown:
        label = "setting" if len(unknown) == 1 else "settings"
        raise InvalidSettings(
            f"Unknown {label} {', '.join(map(_quote, unknown))}; "
            f"known settings are {', '.join(_KINDS)}."
        )


# ---------------------------------------------------------------------------------------------
# Inputs and outputs of a decision
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthorStanding:
    """What the site knows about a comment's author, computed by the caller."""

    approved: int = 0
    rejected: int = 0
    trusted: bool = False
    premoderate: bool = False
    guest: bool = False


@dataclass(frozen=True)
class Scores:
    """Classifier probabilities for one comment."""

    spam: float
    abuse: float
    model_version: str = ""


@dataclass(frozen=True)
class Reason:
    """Why a comment was held or refused: a stable code and a sentence for moderators."""

    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """The reason as a JSON-able dict."""
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Verdict:
    """The policy's routing of one comment."""

    status: Status
    reasons: tuple[Reason, ...] = ()

    @property
    def held(self) -> bool:
        """Whether the comment waits in the moderation queue."""
        return self.status is Status.PENDING

    def to_dict(self) -> dict[str, Any]:
        """The verdict as a JSON-able dict."""
        return {"status": str(self.status), "reasons": [r.to_dict() for r in self.reasons]}


# ---------------------------------------------------------------------------------------------
# Content rules
# ---------------------------------------------------------------------------------------------

_PLACEHOLDER_TOKENS = frozenset(PLACEHOLDERS.values())


@lru_cache(maxsize=4096)
def _word_patterns(word: str) -> tuple[re.Pattern[str], ...]:
    """Whole-word patterns for a listed word: as written (casefolded) and normalised."""
    forms = [word.casefold()]
    normalised = normalize(word)
    # A listed "@bob" or "spam.com" normalises to a placeholder that every mention or URL
    # shares; only its written form may match.
    if not _PLACEHOLDER_TOKENS.intersection(normalised.split()):
        forms.append(normalised)
    patterns = []
    for form in dict.fromkeys(forms):
        parts = form.split()
        if parts:
            body = r"\s+".join(map(re.escape, parts))
            patterns.append(re.compile(rf"(?<!\w){body}(?!\w)"))
    return tuple(patterns)


# Single letters or digits apart by the same run of up to three separators ("i . d . i . o . t",
# "s..t..u..p..i..d"): the normaliser only joins letters apart by one separator. The same run
# throughout, so that "a i . d . i . o . t" joins "idiot", not "aidiot".
_SPACED_OUT = re.compile(r"(?<![^\W_])[^\W_]([^\w\n]{1,3})[^\W_](?:\1[^\W_])+(?![^\W_])")
_SEPARATORS = re.compile(r"[^\w\n]+")


def _text_forms(text: str) -> tuple[str, ...]:
    # The plain form catches words the normaliser would rewrite; the normalised form catches
    # obfuscations ("1d10t", "i d i o t", zero-width characters, look-alike letters).
    forms = (text.casefold(), normalize(text))
    # Invisible characters (zero-width, soft hyphens) would lengthen the separators.
    visible = "".join(c for c in text if unicodedata.category(c) != "Cf")
    joined = _SPACED_OUT.sub(lambda m: _SEPARATORS.sub("", m[0]), visible)
    return forms if joined == visible else (*forms, normalize(joined))


def _match_forms(forms: tuple[str, ...], words: Iterable[str]) -> list[str]:
    found: list[str] = []
    for word in words:
        if word not in found and any(
            pattern.search(form) for pattern in _word_patterns(word) for form in forms
        ):
            found.append(word)
    return found


def match_words(text: str, words: Iterable[str]) -> list[str]:
    """The listed words that occur in ``text`` as whole words, also through obfuscation."""
    words = [w for w in words if w.strip()]
    return _match_forms(_text_forms(text), words) if words else []


# Dots that browsers read as the "." between host labels (UTS #46) but NFKC keeps apart.
_LABEL_DOTS = str.maketrans({"\u3002": ".", "\uff61": "."})
# A host with a label in another script ("дешевые-часы.рф/x", "часы.com"): the entity finder
# knows only ASCII hosts, so such a host is checked again in its punycode (xn--) form.
_IDN_HOST = re.compile(r"(?<![\w.@-])(?:[^\W_][\w-]*\.)+[^\W\d_]{2,}(?:[/\\][^\s<>\"']*)?")
# A bare IPv4 address with a port or a path ("192.0.2.4/deal"); without either it is a number.
_BARE_IP = re.compile(r"(?<![\w.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?::[0-9]{1,5}|[/\\])")


def _is_idn_link(candidate: str) -> bool:
    """Whether a host written in another script is a link once spelled in punycode."""
    host, *path = re.split(r"[/\\]", candidate, maxsplit=1)
    if path:
        return True  # with a path any TLD counts, as for ASCII hosts ("bit.ly/x")
    labels = [
        label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii")
        for label in unicodedata.normalize("NFKC", host).lower().split(".")
    ]
    return any(entity.kind == "url" for entity in find_entities(".".join(labels)))


def count_links(text: str) -> int:
    """How many URLs ``text`` contains, including ones disguised with Unicode tricks."""
    text = text.translate(_LABEL_DOTS)
    found = [(e.start, e.end) for e in find_entities(text) if e.kind == "url"]
    extra = list(_BARE_IP.finditer(text)) if "." in text else []
    if not text.isascii():
        extra += [m for m in _IDN_HOST.finditer(text) if not m[0].isascii() and _is_idn_link(m[0])]
    for m in extra:
        if not any(a < m.end() and m.start() < b for a, b in found):  # not counted yet
            found.append(m.span())
    return len(found)


# ---------------------------------------------------------------------------------------------
# The decision
# ---------------------------------------------------------------------------------------------


def _is_trusted(settings: SiteSettings, author: AuthorStanding) -> bool:
    earned = (
        settings.trusted_after > 0  # 0 turns automatic trust off
        and author.approved >= settings.trusted_after
        and author.rejected == 0
    )
    return author.trusted or earned


def _hold_threshold(hold: float, reject: float | None, relax: float) -> float:
    if relax <= 0:
        return hold
    # Rounded so that 0.80 + 0.10 is 0.90, not 0.9000000000000001 (which 0.90 would not reach).
    return max(hold, min(round(hold + relax, 9), 1.0 if reject is None else reject))


def _listing(words: list[str]) -> str:
    quoted = [_quote(w) for w in words]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _score_hold(kind: str, score: float, hold: float, threshold: float) -> Reason:
    verb = "is above" if score > threshold else "reaches"
    if threshold == hold:
        where = f"the site's hold threshold {threshold:.2f}"
    else:
        where = f"the hold threshold {threshold:.2f} for trusted authors (the site's is {hold:.2f})"
    return Reason(f"{kind}_score", f"{kind} score {score:.2f} {verb} {where}")


def _score_reasons(
    scores: Scores, settings: SiteSettings, trusted: bool
) -> tuple[list[Reason], list[Reason]]:
    """Rejections and holds from the classifier's scores."""
    rejects: list[Reason] = []
    holds: list[Reason] = []
    relax = settings.trusted_relax if trusted else 0.0
    for kind, score, hold, reject in (
        ("spam", scores.spam, settings.spam_hold, settings.spam_reject),
        ("abuse", scores.abuse, settings.abuse_hold, settings.abuse_reject),
    ):
        if reject is not None and score >= reject:
            verb = "is above" if score > reject else "reaches"
            limit = "spam threshold" if kind == "spam" else "rejection threshold"
            rejects.append(
                Reason(
                    f"{kind}_reject",
                    f"{kind} score {score:.2f} {verb} the site's {limit} {reject:.2f}",
                )
            )
        else:
            threshold = _hold_threshold(hold, reject, relax)
            if score >= threshold:
                holds.append(_score_hold(kind, score, hold, threshold))
    return rejects, holds


def _usable(scores: Scores) -> bool:
    # NaN compares false with every threshold and would publish: treat it as no score at all.
    return all(
        isinstance(s, int | float) and math.isfinite(s) and 0 <= s <= 1
        for s in (scores.spam, scores.abuse)
    )


def _first_comment_message(approved: int, needed: int) -> str:
    until = "one is approved" if needed == 1 else f"{needed} are approved"
    have = "no approved comments yet" if approved == 0 else _plural(approved, "approved comment")
    return f"the author has {have}; the site holds an author's comments until {until}"


def decide(
    text: str, scores: Scores | None, settings: SiteSettings, author: AuthorStanding
) -> Verdict:
    """Route a comment: published, pending, spam or rejected, with every reason that applied."""
    trusted = _is_trusted(settings, author)
    rejects: list[Reason] = []
    holds: list[Reason] = []

    if settings.banned_words or settings.suspect_words:
        forms = _text_forms(text)
        banned = _match_forms(forms, settings.banned_words)
        if banned:
            noun = "the banned word" if len(banned) == 1 else "the banned words"
            rejects.append(Reason("banned_word", f"contains {noun} {_listing(banned)}"))
        reported = {w.casefold() for w in banned}
        suspect = [
            w for w in _match_forms(forms, settings.suspect_words) if w.casefold() not in reported
        ]
        if suspect:
            noun = "the word" if len(suspect) == 1 else "the words"
            holds.append(
                Reason(
                    "suspect_word",
                    f"contains {noun} {_listing(suspect)}, which the site holds for review",
                )
            )

    if scores is not None and _usable(scores):
        score_rejects, score_holds = _score_reasons(scores, settings, trusted)
        rejects += score_rejects
        holds += score_holds
    else:
        # Fail closed: an unscored comment is never published automatically.
        problem = (
            "could not score this comment"
            if scores is None
            else f"returned unusable scores (spam {scores.spam!r}, abuse {scores.abuse!r})"
        )
        holds.append(
            Reason(
                "classifier_unavailable", f"the classifier {problem}, so it waits for a moderator"
            )
        )

    links = count_links(text)
    if links > settings.max_links:
        limit = "any links" if settings.max_links == 0 else f"more than {settings.max_links}"
        holds.append(
            Reason(
                "too_many_links",
                f"contains {_plural(links, 'link')}; the site holds comments with {limit}",
            )
        )

    if author.premoderate:
        holds.append(
            Reason(
                "premoderated_author",
                "a moderator set this author's comments to always be reviewed first",
            )
        )
    if author.guest and author.approved < 1:
        holds.append(
            Reason(
                "guest",
                "posted as a guest, and no earlier comment from this e-mail address was approved",
            )
        )
    if not trusted and author.approved < settings.first_comments_held:
        holds.append(
            Reason(
                "first_comment",
                _first_comment_message(author.approved, settings.first_comments_held),
            )
        )
    if settings.mode == "pre":
        holds.append(Reason("pre_moderation", "the site reviews every comment before it appears"))

    reasons = tuple(sorted(rejects + holds, key=lambda r: _SEVERITY[r.code]))
    codes = {r.code for r in rejects}
    if "banned_word" in codes:
        status = Status.REJECTED
    elif "spam_reject" in codes:
        status = Status.SPAM
    elif "abuse_reject" in codes:
        status = Status.REJECTED
    elif holds:
        status = Status.PENDING
    else:
        status = Status.PUBLISHED
    return Verdict(status, reasons)


def nudge_reason(text: str, scores: Scores | None, settings: SiteSettings) -> Reason | None:
    """Why to ask the author to reconsider before routing the comment, or None (pure)."""
    if settings.nudge is None or scores is None or not _usable(scores):
        return None
    if scores.abuse < settings.nudge:
        return None
    # Certain rejection is not softened into a question.
    if settings.abuse_reject is not None and scores.abuse >= settings.abuse_reject:
        return None
    if settings.banned_words and _match_forms(_text_forms(text), settings.banned_words):
        return None
    return Reason(
        "nudge",
        f"abuse score {scores.abuse:.2f} reaches the site's nudge threshold {settings.nudge:.2f}",
    )
