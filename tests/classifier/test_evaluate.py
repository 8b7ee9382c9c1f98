"""The evaluation runs end to end on small data sets written in the sources' own formats."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from classifier.evaluate import evaluate, format_table, metrics
from tests.classifier.conftest import TINY, make_corpus


def write_sources(root: Path) -> None:
    examples = make_corpus(900, seed=11)
    spam_rows = [e for e in examples if e.abuse == 0]
    abuse_rows = [e for e in examples if e.spam == 0]
    for index, video in enumerate(["Youtube01-Psy", "Youtube02-KatyPerry"]):
        path = root / "youtube-spam-collection" / f"{video}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["COMMENT_ID", "AUTHOR", "DATE", "CONTENT", "CLASS"])
            for k, e in enumerate(spam_rows[index::3]):
                writer.writerow([f"{video}{k}", "a", "", e.text, e.spam])
    sms = root / "sms-spam-collection" / "SMSSpamCollection"
    sms.parent.mkdir(parents=True)
    sms.write_text("".join(f"{'spam' if e.spam else 'ham'}\t{e.text}\n" for e in spam_rows[2::3]))
    kaggle = root / "kaggle-insults" / "train.csv"
    kaggle.parent.mkdir(parents=True)
    with kaggle.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Insult", "Date", "Comment"])
        writer.writerows([e.abuse, "", f'"{e.text}"'] for e in abuse_rows[0::2])
    olid = root / "olid" / "olid-training-v1.0.tsv"
    olid.parent.mkdir(parents=True)
    lines = ["id\ttweet\tsubtask_a\tsubtask_b\tsubtask_c"]
    lines += [
        f"{k}\t{e.text}\t{'OFF' if e.abuse else 'NOT'}\tNULL\tNULL"
        for k, e in enumerate(abuse_rows[1::2])
    ]
    olid.write_text("\n".join(lines) + "\n")


def test_evaluate_reports_every_view(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_sources(data)
    messages: list[str] = []
    report = evaluate(
        data,
        TINY,
        out_dir=tmp_path / "out",
        with_peer=False,
        robustness_limit=30,
        progress=messages.append,
    )
    loso = report["leave_one_source_out"]
    assert set(loso["spam"]) == {"youtube:Psy", "youtube:KatyPerry", "sms-spam-collection"}
    assert set(loso["abuse"]) == {"kaggle-insults", "olid"}
    for task in ("spam", "abuse"):
        assert report["held_out"][task]["all"]["roc_auc"] > 0.8
    assert 0 <= loso["abuse_mean_roc_auc"] <= 1
    assert set(report["baseline"]["measured"]) == {"kaggle-insults", "olid"}
    assert report["baseline"]["measured"]["kaggle-insults"] > 0.5
    assert set(report["robustness"]["kinds"]) >= {"leet", "homoglyph", "zero_width"}
    assert [Path(p).name for p in report["curves"]] == ["spam-curves.png", "abuse-curves.png"]
    assert all(Path(p).stat().st_size > 10_000 for p in report["curves"])
    table = format_table(report)
    assert "Leave-one-source-out, abuse" in table and "kaggle-insults" in table
    json.dumps(report)  # the report is plain JSON
    assert any("left out" in m for m in messages)


def test_metrics_at_thresholds() -> None:
    result = metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], [0.5])
    assert result["roc_auc"] == 0.75
    assert result["at"]["0.5"] == {"precision": 0.5, "recall": 0.5, "flagged": 2}
    assert "roc_auc" not in metrics([1, 1], [0.2, 0.3], [0.5])
