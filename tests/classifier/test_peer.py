"""Tests for the peer-model bridge (classifier.peer) and its worker script."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest

from classifier.peer import (
    PEER_PYTHON_ENV,
    WORKER,
    PeerError,
    PeerUnavailable,
    peer_python,
    score_with_peer,
)

OFFENSIVE = [
    "you are a fucking idiot",
    "shut up you stupid bitch",
    "fuck off and die, asshole",
    "what a worthless piece of shit you are",
]
BENIGN = [
    "thanks for the thoughtful article",
    "the council meets on tuesday at seven",
    "i disagree with the author about the budget",
    "great photos of the harbour this morning",
]
# Offensive at even indices, benign at odd ones, so a reordering would mix the two groups.
INTERLEAVED = [text for pair in zip(OFFENSIVE, BENIGN, strict=True) for text in pair]
AWKWARD = [
    "line one\nline two\r\nline three",
    "naïve café — 日本語 😀",
    "",
    "tab\there \u2028 line separator \u0085 next line",
    "\ud800 lone surrogate",
    '{"text": "not a record"}\n{"abuse": 1}',
]


@pytest.fixture(scope="module")
def peer() -> Path:
    """Return the peer venv's python, or skip when it has not been built."""
    python = peer_python()
    if python is None:
        pytest.skip(".venv-peer is missing (run `make peer` to build it); peer-model tests skipped")
    return python


@pytest.fixture(scope="module")
def interleaved_scores(peer: Path) -> np.ndarray:
    """Score the interleaved batch once for the tests that read it."""
    return score_with_peer(INTERLEAVED, python=peer)


def _fake_python(tmp_path: Path, body: str) -> Path:
    """Write an executable shell script standing in for the peer python."""
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_scores_are_probabilities_one_per_text(interleaved_scores: np.ndarray) -> None:
    """Every text gets one float score in [0, 1]."""
    assert interleaved_scores.shape == (len(INTERLEAVED),)
    assert interleaved_scores.dtype == np.float64
    assert np.all((interleaved_scores >= 0.0) & (interleaved_scores <= 1.0))


def test_offensive_texts_score_higher(interleaved_scores: np.ndarray) -> None:
    """Scores stay aligned with their texts: the offensive positions average clearly higher."""
    offensive, benign = interleaved_scores[0::2], interleaved_scores[1::2]
    assert offensive.mean() > benign.mean() + 0.5


def test_order_is_preserved(peer: Path, interleaved_scores: np.ndarray) -> None:
    """Reversing the input reverses the output."""
    reversed_scores = score_with_peer(INTERLEAVED[::-1], python=peer)
    np.testing.assert_allclose(reversed_scores, interleaved_scores[::-1], rtol=0, atol=1e-12)


def test_newlines_and_unicode_keep_alignment(peer: Path, interleaved_scores: np.ndarray) -> None:
    """Multi-line, non-ASCII and empty texts each get exactly one score and shift nothing."""
    mixed = [text for pair in zip(INTERLEAVED, AWKWARD + AWKWARD[:2], strict=True) for text in pair]
    scores = score_with_peer(mixed, python=peer)
    assert scores.shape == (len(mixed),)
    assert np.all((scores >= 0.0) & (scores <= 1.0))
    np.testing.assert_allclose(scores[0::2], interleaved_scores, rtol=0, atol=1e-12)


def test_worker_runs_as_a_plain_script(peer: Path) -> None:
    """The worker works when started directly by the peer python, without -I."""
    lines = "".join(json.dumps({"text": text}) + "\n" for text in ["fuck you", "good morning"])
    done = subprocess.run(
        [str(peer), str(WORKER)],
        check=False,
        input=lines,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    scores = [json.loads(line)["abuse"] for line in done.stdout.splitlines()]
    assert len(scores) == 2
    assert scores[0] > scores[1]


def test_missing_python_raises_unavailable(tmp_path: Path) -> None:
    """A peer python that does not exist raises PeerUnavailable pointing at `make peer`."""
    missing = tmp_path / "no-such-venv" / "bin" / "python"
    with pytest.raises(PeerUnavailable, match="make peer") as caught:
        score_with_peer(["hello"], python=missing)
    assert str(missing) in str(caught.value)
    assert isinstance(caught.value, RuntimeError)


def test_env_var_to_missing_python_raises_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """$CLASSIFIER_PEER_PYTHON overrides the default lookup, missing path included."""
    monkeypatch.setenv(PEER_PYTHON_ENV, str(tmp_path / "missing-python"))
    assert peer_python() is None
    with pytest.raises(PeerUnavailable, match="make peer"):
        score_with_peer(["hello"])


def test_peer_python_looks_under_root(tmp_path: Path) -> None:
    """peer_python(root) finds root/.venv-peer/bin/python only when it exists."""
    assert peer_python(tmp_path) is None
    python = tmp_path / ".venv-peer" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()
    assert peer_python(tmp_path) == python


def test_failing_worker_raises_peer_error_with_stderr(tmp_path: Path) -> None:
    """A non-zero exit becomes PeerError carrying the worker's stderr."""
    fake = _fake_python(tmp_path, "echo 'model exploded' >&2\nexit 3")
    with pytest.raises(PeerError, match="model exploded") as caught:
        score_with_peer(["hello"], python=fake)
    assert caught.value.returncode == 3


def test_short_output_raises_peer_error(tmp_path: Path) -> None:
    """A worker that answers fewer lines than texts is a protocol error, not a short array."""
    fake = _fake_python(tmp_path, "cat >/dev/null\necho '{\"abuse\": 0.5}'")
    with pytest.raises(PeerError, match="1 scores for 2 texts"):
        score_with_peer(["a", "b"], python=fake)


def test_timeout_raises_peer_error(tmp_path: Path) -> None:
    """A hung worker is killed and reported as PeerError."""
    fake = _fake_python(tmp_path, "exec sleep 30")
    with pytest.raises(PeerError, match="timed out"):
        score_with_peer(["hello"], python=fake, timeout=0.5)


def test_empty_input_does_not_start_the_worker(tmp_path: Path) -> None:
    """No texts means an empty array without running anything."""
    fake = _fake_python(tmp_path, "exit 1")
    scores = score_with_peer([], python=fake)
    assert scores.shape == (0,)


def test_single_string_is_rejected(tmp_path: Path) -> None:
    """A bare str is refused rather than scored per character."""
    with pytest.raises(TypeError):
        score_with_peer("hello", python=_fake_python(tmp_path, "exit 1"))
