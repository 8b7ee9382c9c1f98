"""Score texts with a published peer model (alt-profanity-check) run in its own venv.

The peer pins scikit-learn and joblib versions that must not meet ours, so it lives in
``.venv-peer`` (built by ``make peer`` from ``bench/peer-requirements.txt``) and is driven
as a subprocess running ``peer_worker.py`` over JSON lines.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np

PEER_NAME = "alt-profanity-check 1.9.1"
PEER_PYTHON_ENV = "CLASSIFIER_PEER_PYTHON"
PEER_VENV = ".venv-peer"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().with_name("peer_worker.py")


class PeerUnavailable(RuntimeError):
    """The peer venv's python is missing or cannot be started."""


class PeerError(RuntimeError):
    """The peer subprocess failed or broke the line protocol."""

    def __init__(self, message: str, stderr: str = "", returncode: int | None = None) -> None:
        """Keep the worker's stderr and exit code for callers that want them."""
        detail = stderr.strip()
        super().__init__(f"{message}\n--- peer stderr ---\n{detail}" if detail else message)
        self.stderr = stderr
        self.returncode = returncode


def peer_python(root: Path | None = None) -> Path | None:
    """Return the peer venv's python if it exists: ``root`` > $CLASSIFIER_PEER_PYTHON > project."""
    if root is None and os.environ.get(PEER_PYTHON_ENV):
        candidate = Path(os.environ[PEER_PYTHON_ENV])
    else:
        candidate = Path(root if root is not None else PROJECT_ROOT) / PEER_VENV / "bin" / "python"
    return candidate if candidate.is_file() else None


def _unavailable(where: Path | str) -> PeerUnavailable:
    """Build the error that tells the user how to create the peer venv."""
    return PeerUnavailable(
        f"{PEER_NAME} is not installed: no peer python at {where}. "
        f"Run `make peer` in {PROJECT_ROOT} to create {PEER_VENV} "
        f"(or set {PEER_PYTHON_ENV} to a python that has it)."
    )


def score_with_peer(
    texts: Sequence[str], python: Path | None = None, timeout: float = 600
) -> np.ndarray:
    """Return the peer's abuse probability for each text, in order, as a float64 array."""
    # A bare str is a Sequence[str] too and would be scored one character at a time.
    if isinstance(texts, str):
        raise TypeError("score_with_peer takes a sequence of texts, not a single str")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] is {type(text).__name__}, not str")

    if python is None:
        python = peer_python()
        if python is None:
            raise _unavailable(os.environ.get(PEER_PYTHON_ENV) or PROJECT_ROOT / PEER_VENV)
    elif not Path(python).is_file():
        raise _unavailable(python)
    if not texts:
        return np.empty(0, dtype=np.float64)

    # ensure_ascii escapes newlines, U+2028 and lone surrogates, so one text is one line.
    payload = "".join(json.dumps({"text": text}, ensure_ascii=True) + "\n" for text in texts)
    try:
        # -I keeps our PYTHONPATH, user site and the worker's folder off the peer's sys.path.
        done = subprocess.run(
            [str(python), "-I", str(WORKER)],
            input=payload.encode("ascii"),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = (exc.stderr or b"").decode("utf-8", "replace")
        raise PeerError(f"{PEER_NAME} timed out after {timeout} s", stderr) from exc
    except OSError as exc:
        raise _unavailable(f"{python} ({exc})") from exc

    stderr = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        raise PeerError(
            f"{PEER_NAME} worker exited with status {done.returncode}", stderr, done.returncode
        )
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    if len(lines) != len(texts):
        raise PeerError(f"{PEER_NAME} returned {len(lines)} scores for {len(texts)} texts", stderr)
    try:
        return np.array([float(json.loads(line)["abuse"]) for line in lines], dtype=np.float64)
    except (ValueError, KeyError, TypeError) as exc:
        raise PeerError(f"{PEER_NAME} wrote a malformed result line: {exc}", stderr) from exc
