"""Loaders for the training sets in ``shared/data`` and for a newsroom's own labelled files.

Every loader returns :class:`Example` records labelled for two binary tasks, ``spam`` and
``abuse``; a task a source says nothing about is ``None`` (unlabelled), never 0.
How each source's labels map to the tasks is written next to its loader and in
``docs/classifier.md``.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import ftfy

# Some corpora (Reddit, Wikipedia talk) hold single fields far larger than csv's default limit.
csv.field_size_limit(sys.maxsize)

TASKS: tuple[str, ...] = ("spam", "abuse")


@dataclass(frozen=True)
class Example:
    """One labelled text; ``spam``/``abuse`` are 1, 0 or None (not labelled for that task)."""

    text: str
    source: str
    spam: int | None = None
    abuse: int | None = None
    group: str = ""  # finer unit inside a source (a YouTube video, a forum post) for splits
    weight: float = 1.0

    def label(self, task: str) -> int | None:
        """The label for ``task`` (``"spam"`` or ``"abuse"``)."""
        return self.spam if task == "spam" else self.abuse


@dataclass(frozen=True)
class Source:
    """A training set: where it lives, how to read it, and whether we may ship a model of it."""

    name: str
    folder: str
    tasks: tuple[str, ...]
    licence: str
    redistributable: bool
    attribution: str
    loader: Callable[[Path], Iterator[Example]] = field(repr=False)
    positives_only: bool = False


_TAG = re.compile(r"<[^>]{0,200}>")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|[nrt'\"\\])")


def clean_text(text: str) -> str:
    """Repair encoding damage (mojibake, HTML entities) and trim; keeps the words as written."""
    text = ftfy.fix_text(text, unescape_html=True, normalization="NFC")
    return text.replace("\ufeff", "").strip()


def strip_html(text: str) -> str:
    """Turn an HTML snippet (YouTube comments) into plain text."""
    text = _BR.sub("\n", text)
    return html.unescape(_TAG.sub(" ", text))


def decode_escaped(text: str) -> str:
    """Decode the Kaggle insults file's backslash escapes, which are sometimes applied twice."""
    for _ in range(3):
        if not _ESCAPE.search(text):
            break
        raw = text.encode("latin-1", "backslashreplace")
        text = raw.decode("unicode_escape", "replace")
    # Double escapes leave UTF-8 bytes as Latin-1 characters ("\xc2\xa0"); ftfy re-reads them.
    return text


def _rows(path: Path, **kwargs: object) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle, **kwargs)  # type: ignore[arg-type]


# --- SPAM sources -------------------------------------------------------------------------


def load_youtube(folder: Path) -> Iterator[Example]:
    """UCI YouTube Spam Collection: ``CLASS`` 1 = spam; no abuse labels. Group = video."""
    for path in sorted(folder.glob("Youtube*.csv")):
        video = path.stem.split("-", 1)[-1]
        for row in _rows(path):
            text = clean_text(strip_html(row["CONTENT"]))
            yield Example(text, "youtube-spam-collection", spam=int(row["CLASS"]), group=video)


def load_youtube_extra(folder: Path) -> Iterator[Example]:
    """TubeSpam authors' three extra videos: ``TAG`` 1 = spam; deduplicated on ``COMMENT_ID``."""
    seen: set[str] = set()
    paths = sorted(folder.glob("*.csv")) + sorted(folder.glob("*.original"))
    for path in paths:
        video = path.stem.split("_")[0].split("-")[0]
        for row in _rows(path):
            if row["COMMENT_ID"] in seen:
                continue
            seen.add(row["COMMENT_ID"])
            text = clean_text(strip_html(row["CONTENT"]))
            yield Example(text, "youtube-spam-extra", spam=int(row["TAG"]), group=video)


def load_sms(folder: Path) -> Iterator[Example]:
    """SMS Spam Collection: ``spam``/``ham`` per tab-separated line."""
    with (folder / "SMSSpamCollection").open(encoding="utf-8") as handle:
        for line in handle:
            label, _, text = line.rstrip("\n").partition("\t")
            if label in ("spam", "ham"):
                yield Example(clean_text(text), "sms-spam-collection", spam=int(label == "spam"))


# --- ABUSE sources ------------------------------------------------------------------------


def load_kaggle_insults(folder: Path) -> Iterator[Example]:
    """Kaggle "Detecting Insults in Social Commentary": ``Insult`` 1 = abuse; text is escaped."""
    for row in _rows(folder / "train.csv"):
        text = row["Comment"]
        if len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1]
        yield Example(clean_text(decode_escaped(text)), "kaggle-insults", abuse=int(row["Insult"]))


def load_davidson(folder: Path) -> Iterator[Example]:
    """Davidson et al. tweets: ``class`` 0 (hate) or 1 (offensive) = abuse, 2 (neither) = not."""
    for row in _rows(folder / "labeled_data.csv"):
        yield Example(
            clean_text(row["tweet"]),
            "davidson-hate-offensive",
            abuse=int(row["class"] in ("0", "1")),
        )


def load_olid(folder: Path) -> Iterator[Example]:
    """OLID v1.0 tweets: ``subtask_a`` OFF = abuse, NOT = not. Its ``URL`` token is a link."""
    path = folder / "olid-training-v1.0.tsv"
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            # OLID replaced every link with the bare word URL; give it back a link shape so the
            # normaliser treats it like any other link, not as a word only tweets contain.
            text = re.sub(r"\bURL\b", "http://example.com", row["tweet"])
            yield Example(clean_text(text), "olid", abuse=int(row["subtask_a"] == "OFF"))


def load_trac1(folder: Path) -> Iterator[Example]:
    """TRAC-1 English Facebook comments: OAG = abuse, NAG = not; CAG (covert) is dropped."""
    for name in ("agr_en_train.csv", "agr_en_dev.csv"):
        with (folder / name).open(newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle):
                if len(row) != 3 or row[2] not in ("OAG", "NAG"):
                    continue
                yield Example(clean_text(row[1]), "trac1-aggression", abuse=int(row[2] == "OAG"))


def load_stormfront(folder: Path) -> Iterator[Example]:
    """Stormfront sentences: ``hate`` = abuse, ``noHate`` = not; relation and idk/skip dropped."""
    for row in _rows(folder / "annotations_metadata.csv"):
        if row["label"] not in ("hate", "noHate"):
            continue
        text = (folder / "all_files" / f"{row['file_id']}.txt").read_text(encoding="utf-8")
        post = row["file_id"].rsplit("_", 1)[0]
        yield Example(
            clean_text(text),
            "stormfront-hate-speech",
            abuse=int(row["label"] == "hate"),
            group=post,
        )


_JIGSAW_COLUMNS = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")


def load_jigsaw_sample(folder: Path) -> Iterator[Example]:
    """Jigsaw toxic sample (300 rows): any of the six columns = abuse."""
    for row in _rows(folder / "train_sample.csv"):
        abuse = int(any(row[column] == "1" for column in _JIGSAW_COLUMNS))
        yield Example(clean_text(row["comment_text"]), "jigsaw-toxic-train-sample", abuse=abuse)


# Comments that duplicate the public SOCC evaluation corpus (see shared/data/README.md).
_UCC_DROP = {
    "1739459648",
    "1739456658",
    "1739457648",
    "2327210798",
    "1739451939",
    "1739440799",
    "2297539899",
}


def load_ucc(folder: Path) -> Iterator[Example]:
    """Globe and Mail unhealthy comments: ``hostile`` or ``antagonize`` = abuse, else not."""
    for name in ("val.csv", "test.csv"):
        for row in _rows(folder / name):
            if row["_unit_id"] in _UCC_DROP:
                continue
            abuse = int(float(row["hostile"]) >= 1 or float(row["antagonize"]) >= 1)
            yield Example(clean_text(row["comment"]), "ucc-unhealthy-comments", abuse=abuse)


def load_civil_spans(folder: Path) -> Iterator[Example]:
    """Civil Comments toxic spans: every comment was rated toxic, so every row is abuse.

    Positives only: the recipe gives this source's mass to its positives and leaves the
    negatives to the other comment sources. (Negatives made by cutting the annotated toxic
    spans out of these comments were tried and made leave-one-source-out worse; see
    docs/classifier.md.)
    """
    for row in _rows(folder / "comments.csv"):
        yield Example(clean_text(row["comment_text"]), "civil-comments-toxic-spans", abuse=1)


def load_reddit(folder: Path) -> Iterator[Example]:
    """Reddit incivility: ``correction`` 1 = uncivil = abuse."""
    for row in _rows(folder / "incivility_coded_0302.csv"):
        yield Example(clean_text(row["comment"]), "reddit-incivility", abuse=int(row["correction"]))


def load_wikipedia(folder: Path) -> Iterator[Example]:
    """Wikipedia talk (CAT-LARGE): ``label`` 1 = toxic = abuse; the ``api`` score is ignored."""
    for name in ("gn.csv", "gc.csv"):
        for row in _rows(folder / name):
            yield Example(
                clean_text(row["text"]), "wikipedia-talk-context-toxicity", abuse=int(row["label"])
            )


SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source(
            "youtube-spam-collection",
            "youtube-spam-collection",
            ("spam",),
            "not stated; authors ask for a citation (Alberto et al., ICMLA 2015)",
            True,
            "T.C. Alberto, J.V. Lochter, T.A. Almeida, TubeSpam, ICMLA 2015",
            load_youtube,
        ),
        Source(
            "youtube-spam-extra",
            "youtube-spam-extra",
            ("spam",),
            "not stated; authors ask for a citation (Alberto et al., ICMLA 2015)",
            True,
            "T.C. Alberto et al., youtube-spam-experiment",
            load_youtube_extra,
        ),
        Source(
            "sms-spam-collection",
            "sms-spam-collection",
            ("spam",),
            "free use, copyright kept by the authors, no warranty",
            True,
            "T.A. Almeida, J.M. Gómez Hidalgo, A. Yamakami, DocEng 2011",
            load_sms,
        ),
        Source(
            "kaggle-insults",
            "kaggle-insults",
            ("abuse",),
            "not stated (Kaggle competition data, Impermium 2012)",
            True,
            "Impermium, Detecting Insults in Social Commentary (Kaggle 2012)",
            load_kaggle_insults,
        ),
        Source(
            "davidson-hate-offensive",
            "davidson-hate-offensive",
            ("abuse",),
            "MIT",
            True,
            "T. Davidson et al., ICWSM 2017",
            load_davidson,
        ),
        Source(
            "olid",
            "olid",
            ("abuse",),
            "not stated; citation requested",
            True,
            "M. Zampieri et al., NAACL 2019 (OLID)",
            load_olid,
        ),
        Source(
            "trac1-aggression",
            "trac1-aggression",
            ("abuse",),
            "not stated; distributed for research on request",
            True,
            "R. Kumar et al., TRAC 2018",
            load_trac1,
        ),
        Source(
            "stormfront-hate-speech",
            "stormfront-hate-speech",
            ("abuse",),
            "CC BY-SA 3.0 ES",
            True,
            "O. de Gibert et al., ALW2 2018",
            load_stormfront,
        ),
        Source(
            "jigsaw-toxic-train-sample",
            "jigsaw-toxic-train-sample",
            ("abuse",),
            "CC0 (labels), text CC BY-SA 3.0 (Wikipedia)",
            True,
            "Jigsaw/Conversation AI, Toxic Comment Classification (Kaggle 2018)",
            load_jigsaw_sample,
        ),
        Source(
            "ucc-unhealthy-comments",
            "ucc-unhealthy-comments",
            ("abuse",),
            "CC BY-NC-SA 4.0 (non-commercial)",
            False,
            "I. Price et al., WOAH 2020 (Unhealthy Comments Corpus)",
            load_ucc,
        ),
        Source(
            "civil-comments-toxic-spans",
            "civil-comments-toxic-spans",
            ("abuse",),
            "CC0 1.0",
            True,
            "J. Pavlopoulos et al., SemEval 2021 Task 5",
            load_civil_spans,
            positives_only=True,
        ),
        Source(
            "reddit-incivility",
            "reddit-incivility",
            ("abuse",),
            "BSD 3-Clause",
            True,
            "S. Davidson, Q. Sun, M. Wojcieszak, WOAH 2020",
            load_reddit,
        ),
        Source(
            "wikipedia-talk-context-toxicity",
            "wikipedia-talk-context-toxicity",
            ("abuse",),
            "Apache-2.0 (text from Wikipedia, CC BY-SA)",
            True,
            "J. Pavlopoulos et al., ACL 2020 (CAT-LARGE)",
            load_wikipedia,
        ),
    )
}


def default_data_dir() -> Path:
    """``shared/data`` beside the project checkout, or ``$CLASSIFIER_DATA``."""
    import os

    env = os.environ.get("CLASSIFIER_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def load_source(name: str, data_dir: Path) -> list[Example]:
    """All usable examples of one named source, in file order, empty texts dropped."""
    source = SOURCES[name]
    folder = data_dir / source.folder
    if not folder.is_dir():
        raise FileNotFoundError(f"training set {name!r} not found at {folder}")
    return [example for example in source.loader(folder) if example.text]


def available_sources(data_dir: Path, shippable_only: bool = False) -> list[str]:
    """Names of the known sources present in ``data_dir``."""
    return [
        name
        for name, source in SOURCES.items()
        if (data_dir / source.folder).is_dir() and (source.redistributable or not shippable_only)
    ]


def load_sources(names: Iterable[str], data_dir: Path) -> list[Example]:
    """Examples of several sources, cleaned of duplicates and conflicting labels."""
    examples: list[Example] = []
    for name in names:
        examples.extend(load_source(name, data_dir))
    return deduplicate(examples)


def _key(text: str) -> str:
    return " ".join(text.casefold().split())


def deduplicate(examples: Sequence[Example]) -> list[Example]:
    """Drop exact repeats (same folded text) and, per task, texts labelled both ways."""
    labels: dict[tuple[str, str], set[int]] = {}
    for example in examples:
        key = _key(example.text)
        for task in TASKS:
            value = example.label(task)
            if value is not None:
                labels.setdefault((task, key), set()).add(value)
    seen: set[tuple[str, int | None, int | None]] = set()
    kept: list[Example] = []
    for example in examples:
        key = _key(example.text)
        spam, abuse = example.spam, example.abuse
        if spam is not None and len(labels[("spam", key)]) > 1:
            spam = None
        if abuse is not None and len(labels[("abuse", key)]) > 1:
            abuse = None
        if spam is None and abuse is None:
            continue
        identity = (key, spam, abuse)
        if identity in seen:
            continue
        seen.add(identity)
        kept.append(replace(example, spam=spam, abuse=abuse))
    return kept


_TRUE = {"1", "true", "yes", "spam", "abuse", "toxic", "1.0"}
_FALSE = {"0", "false", "no", "ham", "ok", "clean", "0.0"}


def _parse_label(value: object, where: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    text = str(value).strip().casefold()
    if text in _TRUE:
        return 1
    if text in _FALSE:
        return 0
    raise ValueError(f"{where}: label {value!r} is not 0/1 (or true/false)")


def load_labelled_file(
    path: Path, source: str | None = None, task: str = "abuse", weight: float = 1.0
) -> list[Example]:
    """Read a newsroom's own labelled CSV or JSONL file.

    Each record has ``text`` and any of ``spam``/``abuse`` (0/1; missing = unlabelled for that
    task); a generic ``label`` column is read as the label for ``task``.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    name = source or path.stem
    records: Iterable[tuple[str, dict[str, object]]]
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        records = _jsonl_records(path)
    elif path.suffix.lower() in (".csv", ".tsv"):
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        records = (
            (f"{path}:{number}", dict(row))
            for number, row in enumerate(_rows(path, delimiter=delimiter), start=2)
        )
    else:
        raise ValueError(f"{path}: expected a .csv, .tsv or .jsonl file")
    examples = []
    for where, record in records:
        text = record.get("text")
        if not isinstance(text, str):
            raise ValueError(f"{where}: record has no 'text' string")
        labels = {t: _parse_label(record.get(t), where) for t in TASKS}
        if "label" in record and labels[task] is None:
            labels[task] = _parse_label(record["label"], where)
        text = clean_text(text)
        if text and (labels["spam"] is not None or labels["abuse"] is not None):
            examples.append(Example(text, name, labels["spam"], labels["abuse"], weight=weight))
    return examples


def _jsonl_records(path: Path) -> Iterator[tuple[str, dict[str, object]]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{where}: not valid JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise ValueError(f"{where}: expected a JSON object")
            yield where, record


def fingerprint(examples: Sequence[Example]) -> str:
    """A content hash of a training set (texts, labels, sources, weights), order-independent."""
    digest = hashlib.sha256()
    for line in sorted(
        json.dumps([e.source, e.text, e.spam, e.abuse, e.weight], ensure_ascii=False)
        for e in examples
    ):
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]
