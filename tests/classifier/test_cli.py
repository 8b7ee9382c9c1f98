"""The command-line contract other tools rely on (shared/ARCHITECTURE.md, contract 1 and 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "classifier", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )


def test_score_answers_line_for_line_in_order(tiny_model_file: Path) -> None:
    texts = [
        "shut up you idiot",
        "Thanks for covering the new bridge.",
        "line\nbreak \u202e é",
        "Check out my channel and subscribe!!! http://youtu.be/1",
    ] * 30
    stdin = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    result = run(["score", "--model", str(tiny_model_file)], stdin)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(texts)
    rows = [json.loads(line) for line in lines]
    for row in rows:
        assert 0 <= row["spam"] <= 1 and 0 <= row["abuse"] <= 1
    # Same text, same answer, wherever it stands in the stream.
    assert rows[0] == rows[4] == rows[-4]
    assert rows[0]["abuse"] > rows[1]["abuse"]
    assert rows[3]["spam"] > rows[1]["spam"]


def test_score_reports_bad_lines_in_place(tiny_model_file: Path) -> None:
    stdin = '{"text": "fine"}\nnot json\n{"body": 1}\n{"text": "also fine"}'
    result = run(["score", "--model", str(tiny_model_file)], stdin)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 4
    assert "abuse" in rows[0] and "abuse" in rows[3]
    assert "error" in rows[1] and "error" in rows[2]
    assert result.returncode == 1


def test_score_uses_the_shipped_model_by_default() -> None:
    result = run(["score"], '{"text": "hello"}\n')
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)
    assert 0 <= row["abuse"] <= 1 and row["model"]


def test_score_refuses_a_bad_model_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.skops"
    bad.write_bytes(b"junk")
    result = run(["score", "--model", str(bad)], '{"text": "hello"}\n')
    assert result.returncode == 2
    assert "not a readable model file" in result.stderr


def test_train_with_extra_and_explain(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "kaggle-insults").mkdir(parents=True)
    rows = ["Insult,Date,Comment"]
    for i in range(40):
        rows.append(f'1,,"""you are a stupid idiot number {i}"""')
        rows.append(f'0,,"""thanks for the report on the bridge, part {i}"""')
    (data / "kaggle-insults" / "train.csv").write_text("\n".join(rows) + "\n")
    extra = tmp_path / "decisions.jsonl"
    extra.write_text(
        "".join(
            json.dumps({"text": f"buy cheap pills at http://pills{i}.example.com", "spam": 1})
            + "\n"
            + json.dumps({"text": f"the council met on day {i}", "spam": 0, "abuse": 0})
            + "\n"
            for i in range(30)
        )
    )
    out = tmp_path / "model.skops"
    result = run(
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(out),
            "--extra",
            str(extra),
            "--extra-weight",
            "2",
        ]
    )
    assert result.returncode == 0, result.stderr
    assert "training abuse" in result.stderr  # progress is shown
    summary = json.loads(result.stdout)
    assert summary["version"] and out.exists()
    explained = run(["explain", "--model", str(out), "you stupid idiot"])
    assert explained.returncode == 0, explained.stderr
    report = json.loads(explained.stdout)
    words = [item["feature"] for item in report["explanation"]["abuse"]]
    assert "idiot" in words or "stupid" in words


def test_compare_refuses_a_worse_candidate(tmp_path: Path, tiny_model_file: Path) -> None:
    from classifier.model import train
    from classifier.persist import save_model
    from tests.classifier.conftest import TINY, make_corpus

    flipped = [e.__class__(e.text, e.source, e.spam, 1 - e.abuse) for e in make_corpus(600, 1)]
    bad = tmp_path / "flipped.skops"
    save_model(train(flipped, TINY), bad)
    evaluation = tmp_path / "eval.jsonl"
    evaluation.write_text(
        "".join(
            json.dumps({"text": e.text, "abuse": e.abuse, "spam": e.spam}) + "\n"
            for e in make_corpus(200, 5)
        )
    )
    worse = run(
        [
            "compare",
            str(tiny_model_file),
            str(bad),
            "--data",
            str(tmp_path / "none"),
            "--extra",
            str(evaluation),
        ]
    )
    assert worse.returncode == 1, worse.stderr
    assert json.loads(worse.stdout)["candidate_not_worse"] is False
    same = run(
        [
            "compare",
            str(tiny_model_file),
            str(tiny_model_file),
            "--data",
            str(tmp_path / "none"),
            "--extra",
            str(evaluation),
        ]
    )
    assert same.returncode == 0 and json.loads(same.stdout)["candidate_not_worse"] is True


@pytest.mark.parametrize("command", ["train", "evaluate", "score", "explain", "compare", "bench"])
def test_every_command_has_help(command: str) -> None:
    result = run([command, "--help"])
    assert result.returncode == 0 and "usage" in result.stdout


def test_bench_prints_every_measure(tiny_model_file: Path, tmp_path: Path) -> None:
    result = run(["bench", "--model", str(tiny_model_file), "--n", "300", "--data", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in (
        "batch_comments_per_second",
        "single_p50_ms",
        "single_p99_ms",
        "load_seconds",
        "rss_after_load_mb",
        "model_version",
    ):
        assert report[key], key
    assert report["single_p50_ms"] <= report["single_p99_ms"]
    assert set(report["targets_met"]) == {
        "batch_comments_per_second",
        "single_p99_ms",
        "load_seconds",
        "rss_after_load_mb",
    }
