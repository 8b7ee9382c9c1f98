"""Score JSON lines from stdin with alt-profanity-check; run only by the peer venv's python.

Protocol: each non-blank input line is ``{"text": "..."}``; for each one, in order, one
output line ``{"abuse": p}`` is written, where p is ``profanity_check.predict_prob``.
Deliberately imports nothing from our project: it runs in ``.venv-peer``, whose
scikit-learn/joblib pins differ from the main venv's.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from typing import IO

# Run as a script, Python puts this file's folder (our `classifier` package) first on sys.path,
# so a sibling module could shadow a dependency of scikit-learn; drop it before importing them.
_HERE = os.path.dirname(os.path.realpath(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != _HERE]

BATCH_SIZE = 1_000


def _texts(lines: Iterable[bytes]) -> Iterator[str]:
    """Yield the text of each non-blank JSON line, failing loudly on a malformed one."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError as exc:
            raise SystemExit(f"peer_worker: input line {number} is not JSON: {exc}") from exc
        text = record.get("text") if isinstance(record, dict) else None
        if not isinstance(text, str):
            raise SystemExit(f'peer_worker: input line {number} has no string "text" field')
        yield text


def _batches(texts: Iterable[str], size: int) -> Iterator[list[str]]:
    """Group texts into lists of at most ``size``."""
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def main(stdin: IO[bytes], stdout: IO[str]) -> None:
    """Score every input line and write one result line per input, in order."""
    # Imported here so the sys.path clean-up above runs first; loading the model takes ~1 s.
    from profanity_check import predict_prob

    for batch in _batches(_texts(stdin), BATCH_SIZE):
        probs = predict_prob(batch)
        stdout.write("".join(json.dumps({"abuse": float(p)}) + "\n" for p in probs))
        # Flush per batch so a caller reading a stream sees progress, not one final burst.
        stdout.flush()


if __name__ == "__main__":
    # stdout carries the protocol only: anything a library prints goes to stderr instead.
    protocol_out = sys.stdout
    sys.stdout = sys.stderr
    # Bytes in, so line splitting is on b"\n" alone whatever the locale or stray U+2028.
    main(sys.stdin.buffer, protocol_out)
