"""Loaders, on small files written here in each source's own format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from classifier.data import (
    SOURCES,
    Example,
    decode_escaped,
    deduplicate,
    fingerprint,
    load_labelled_file,
    load_source,
)


def write(path: Path, text: str, newline: str = "\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace("\n", newline), encoding="utf-8")


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    write(
        root / "youtube-spam-collection/Youtube01-Psy.csv",
        "COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS\n"
        'a1,x,2013-11-07T06:20:48,"check out my channel<br />please &amp; subscribe\ufeff",1\n'
        "a2,y,,great song,0\n",
    )
    write(
        root / "youtube-spam-extra/Avengers_NPoHPNeU9fc.csv",
        '"COMMENT_ID","CONTENT","TAG"\n"z1","buy &lt;3 http://x.example.com","1"\n"z2","nice","0"\n',
    )
    write(
        root / "youtube-spam-extra/PewDiePie-gRyPjRrjS34.original",
        'COMMENT_ID,AUTHOR,DATE,CONTENT,TAG\nz1,"a","2013","buy &lt;3 http://x.example.com",1\n'
        'z3,"b","2014","lol",0\n',
    )
    write(
        root / "sms-spam-collection/SMSSpamCollection",
        "ham\tOk lar... Joking wif u oni...\nspam\tFree entry in 2 a wkly comp\n",
    )
    write(
        root / "kaggle-insults/train.csv",
        'Insult,Date,Comment\n1,20120618192155Z,"""You fuck your dad."""\n'
        '0,,"""A\\\\xc2\\\\xa0majority of Canadians\\\\n\\\\nwill be.\\xa0 Yes"""\n',
        newline="\r\n",
    )
    write(
        root / "davidson-hate-offensive/labeled_data.csv",
        ",count,hate_speech,offensive_language,neither,class,tweet\n"
        "0,3,0,0,3,2,!!! RT @mayasolovely: As a woman &amp; a man\n"
        "1,3,0,3,0,1,boy dats cold hoe\n2,3,3,0,0,0,hateful tweet\n",
    )
    write(
        root / "olid/olid-training-v1.0.tsv",
        "id\ttweet\tsubtask_a\tsubtask_b\tsubtask_c\n"
        '1\t@USER She "should" ask URL\tOFF\tUNT\tNULL\n'
        "2\t@USER nice day\tNOT\tNULL\tNULL\n",
        newline="\r\n",
    )
    write(
        root / "trac1-aggression/agr_en_train.csv",
        'f1,Well said sonu,OAG\nf2,"Banks, ATMs are out",NAG\nf3,"hmm, sure",CAG\n',
    )
    write(root / "trac1-aggression/agr_en_dev.csv", "f4,They are thugs,OAG\n")
    write(
        root / "stormfront-hate-speech/annotations_metadata.csv",
        "file_id,user_id,subforum_id,num_contexts,label\n1_1,5,1,0,noHate\n1_2,5,1,0,hate\n"
        "2_1,6,1,0,relation\n",
    )
    for name, text in [("1_1", "A sentence ."), ("1_2", "A hateful sentence ."), ("2_1", "Rel .")]:
        write(root / f"stormfront-hate-speech/all_files/{name}.txt", text)
    write(
        root / "jigsaw-toxic-train-sample/train_sample.csv",
        "id,comment_text,toxic,severe_toxic,obscene,threat,insult,identity_hate\n"
        'a,"Fine edit\nthanks",0,0,0,0,0,0\nb,you suck,0,0,1,0,0,0\n',
    )
    header = (
        '"_unit_id","_trusted_judgments","comment","antagonize","antagonize:confidence",'
        '"condescending","condescending:confidence","dismissive","dismissive:confidence",'
        '"generalisation","generalisation:confidence","generalisation_unfair",'
        '"generalisation_unfair:confidence","healthy","healthy:confidence","hostile",'
        '"hostile:confidence","sarcastic","sarcastic:confidence"\n'
    )
    row = '{id},3,"{text}",{ant},1,0,1,0,1,0,1,0.0,1,1,1,{hos},1,0,1\n'
    write(
        root / "ucc-unhealthy-comments/val.csv",
        header
        + row.format(id=1, text="Taxis are licensed.", ant=0, hos=0)
        + row.format(id=2, text="You are a fool.", ant=1, hos=0)
        + row.format(id=1739459648, text="dropped SOCC duplicate", ant=0, hos=0),
    )
    write(
        root / "ucc-unhealthy-comments/test.csv",
        header + row.format(id=3, text="Get lost, troll.", ant=0, hos=1),
    )
    write(
        root / "civil-comments-toxic-spans/comments.csv",
        'comment_id,comment_text\n7,"This idiot mayor should resign now, the budget is a mess."\n'
        "8,You're an idiot.\n",
    )
    write(
        root / "civil-comments-toxic-spans/annotations.csv",
        "annotation,comment_id,worker,country,all toxic,not toxic\n0,7,1,USA,False,False\n"
        "1,7,2,USA,False,False\n2,8,1,USA,True,False\n",
    )
    write(
        root / "civil-comments-toxic-spans/spans.csv",
        "annotation,type,start,end\n0,Insult,5,10\n1,Insult,5,10\n",
    )
    write(
        root / "reddit-incivility/incivility_coded_0302.csv",
        'comment,correction\n"\n\nWhat do you do?\n*secret*\n",0\n"weren‚Äôt you the jerk",1\n',
        newline="\r\n",
    )
    write(
        root / "wikipedia-talk-context-toxicity/gn.csv",
        "id,text,label,api,parent\n1,Fine edit,0,0.04,\n2,you are a vandal idiot,1,0.9,\n",
    )
    write(
        root / "wikipedia-talk-context-toxicity/gc.csv",
        "id,text,parent,label,api\n3,I agree,Above,0,0.01\n",
    )
    return root


def test_every_source_loads_with_both_tasks_mapped(data_dir: Path) -> None:
    for name, source in SOURCES.items():
        examples = load_source(name, data_dir)
        assert examples, name
        for example in examples:
            assert example.text == example.text.strip() and example.text
            for task in ("spam", "abuse"):
                label = example.label(task)
                assert label in ((0, 1) if task in source.tasks else (None,)), (name, example)


def test_youtube_html_is_stripped_and_extra_deduplicated(data_dir: Path) -> None:
    collection = load_source("youtube-spam-collection", data_dir)
    assert collection[0].text == "check out my channel\nplease & subscribe"
    assert collection[0].spam == 1 and collection[0].group == "Psy"
    extra = load_source("youtube-spam-extra", data_dir)
    assert [e.text for e in extra].count("buy <3 http://x.example.com") == 1
    assert len(extra) == 3


def test_kaggle_escapes_are_decoded(data_dir: Path) -> None:
    insults = load_source("kaggle-insults", data_dir)
    assert insults[0].text == "You fuck your dad." and insults[0].abuse == 1
    assert "\\" not in insults[1].text
    assert "majority of Canadians\n\nwill be." in insults[1].text
    assert "Â" not in insults[1].text


def test_decode_escaped_handles_double_escapes() -> None:
    assert decode_escaped("a\\\\nb") == "a\nb"
    assert decode_escaped("plain text") == "plain text"


def test_label_mappings(data_dir: Path) -> None:
    davidson = load_source("davidson-hate-offensive", data_dir)
    assert [e.abuse for e in davidson] == [0, 1, 1]
    assert "&amp;" not in davidson[0].text
    olid = load_source("olid", data_dir)
    assert [e.abuse for e in olid] == [1, 0]
    assert "URL" not in olid[0].text and '"should"' in olid[0].text
    trac = load_source("trac1-aggression", data_dir)
    assert [e.abuse for e in trac] == [1, 0, 1]  # CAG dropped
    storm = load_source("stormfront-hate-speech", data_dir)
    assert [e.abuse for e in storm] == [0, 1] and storm[0].group == "1"
    ucc = load_source("ucc-unhealthy-comments", data_dir)
    assert [e.abuse for e in ucc] == [0, 1, 1]
    assert all("SOCC" not in e.text for e in ucc)
    reddit = load_source("reddit-incivility", data_dir)
    assert reddit[1].text == "weren't you the jerk"  # mojibake repaired, quotes uncurled
    assert [e.abuse for e in load_source("wikipedia-talk-context-toxicity", data_dir)] == [0, 1, 0]
    assert [e.abuse for e in load_source("jigsaw-toxic-train-sample", data_dir)] == [0, 1]


def test_civil_spans_are_all_positive(data_dir: Path) -> None:
    civil = load_source("civil-comments-toxic-spans", data_dir)
    assert [e.abuse for e in civil] == [1, 1]


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="olid"):
        load_source("olid", tmp_path)


def test_deduplicate_drops_repeats_and_conflicts() -> None:
    examples = [
        Example("Same text", "a", abuse=1),
        Example("same   TEXT", "b", abuse=1),
        Example("conflict", "a", abuse=1),
        Example("Conflict", "b", abuse=0),
        Example("conflict", "c", spam=1),
    ]
    kept = deduplicate(examples)
    assert [(e.text, e.spam, e.abuse) for e in kept] == [
        ("Same text", None, 1),
        ("conflict", 1, None),
    ]


def test_generic_loader_reads_csv_and_jsonl(tmp_path: Path) -> None:
    csv_path = tmp_path / "mine.csv"
    csv_path.write_text("text,label\nhello there,0\nyou idiot,1\n", encoding="utf-8")
    examples = load_labelled_file(csv_path, task="abuse")
    assert [(e.text, e.abuse, e.spam) for e in examples] == [
        ("hello there", 0, None),
        ("you idiot", 1, None),
    ]
    jsonl = tmp_path / "decisions.jsonl"
    jsonl.write_text(
        json.dumps({"text": "buy now", "spam": 1})
        + "\n\n"
        + json.dumps({"text": "fine", "spam": 0, "abuse": False})
        + "\n",
        encoding="utf-8",
    )
    decisions = load_labelled_file(jsonl, weight=3.0)
    assert [(e.spam, e.abuse, e.weight) for e in decisions] == [(1, None, 3.0), (0, 0, 3.0)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"text": "x", "abuse": 7}\n', "not 0/1"),
        ("not json\n", "not valid JSON"),
        ('{"body": "x"}\n', "no 'text'"),
        ("[1]\n", "JSON object"),
    ],
)
def test_generic_loader_rejects_bad_records(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_labelled_file(path)


def test_fingerprint_is_order_independent_and_content_sensitive() -> None:
    a = [Example("one", "s", abuse=1), Example("two", "s", abuse=0)]
    assert fingerprint(a) == fingerprint(list(reversed(a)))
    assert fingerprint(a) != fingerprint([Example("one", "s", abuse=0), a[1]])
