"""A long schemathesis run against the JSON API: many examples per operation, every check.

    python bench/fuzz_api.py [--examples 500] [--refresh-every 200] [--only PATH-PART] [--json]

The same engine as ``tests/security/test_fuzz_api.py`` (which ``make test`` runs with a few
examples per operation): the app on a fresh SQLite file (or ``--database-url``, a PostgreSQL
database of your own), the OpenAPI document from ``/api/v1/openapi.json``, a world of two sites,
their staff, a commenter and comments, valid and invalid requests to every operation signed by
an admin's, a moderator's or a commenter's token. Hypothesis is derandomized: a run with the
same ``--examples`` sends the same requests.

Prints one line per operation and mode (requests, statuses, distinct failures, seconds), every
distinct failure with a curl command that reproduces it, and the totals. Exit status 1 when
anything failed. ``make fuzz`` runs it with the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, and tests/

import flask_migrate

from tests.conftest import APP_ENVIRONMENT, TestDatabase, dispose
from tests.security.test_fuzz_api import OperationResult, fuzz_api, fuzz_app


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=500, help="per operation and mode")
    parser.add_argument(
        "--refresh-every",
        type=int,
        default=200,
        help="build the world again after this many requests (0: only after changes)",
    )
    parser.add_argument("--only", default="", help="only operations whose path contains this")
    parser.add_argument(
        "--database-url",
        default="",
        help="an empty PostgreSQL database of your own (default: a temporary SQLite file)",
    )
    parser.add_argument("--json", action="store_true", help="the results as JSON on stdout")
    return parser.parse_args()


def main() -> int:
    """Run, print, and answer 1 if anything failed."""
    args = parse_args()
    for name in APP_ENVIRONMENT:  # the tests' clean environment
        os.environ.pop(name, None)
    folder = Path(tempfile.mkdtemp(prefix="fuzz-api-"))
    database = TestDatabase(args.database_url or f"sqlite:///{folder / 'fuzz.db'}")
    app = fuzz_app(database, folder / "instance")
    with app.app_context():
        flask_migrate.upgrade()

    def show(result: OperationResult) -> None:
        statuses = " ".join(f"{code}:{n}" for code, n in sorted(result.statuses.items()))
        line = f"{result.label:<72} {result.examples:>5} {len(result.failures):>3}  "
        print(f"{line}{result.seconds:6.1f}s  {statuses}", file=sys.stderr, flush=True)

    print(f"{'operation [mode]':<72} {'sent':>5} {'bad':>3}", file=sys.stderr)
    started = time.perf_counter()
    try:
        results = fuzz_api(
            app,
            args.examples,
            refresh_every=args.refresh_every,
            on_result=show,
            only=args.only,
        )
    finally:
        dispose(app)
    seconds = time.perf_counter() - started

    failures = [text for result in results for text in result.failures.values()]
    statuses = sum((result.statuses for result in results), Counter())
    total = {
        "operations": len({result.label.rsplit(" [", 1)[0] for result in results}),
        "requests": sum(result.examples for result in results),
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
        "failures": len(failures),
        "seconds": round(seconds, 1),
    }
    for text in failures:
        print(f"\n{text}", file=sys.stderr)
    print(
        f"\n{total['operations']} operations, {total['requests']} requests, "
        f"{total['failures']} distinct failures, {seconds:.0f} s; statuses {total['statuses']}",
        file=sys.stderr,
    )
    if args.json:
        per_operation = [
            {
                "operation": result.label,
                "requests": result.examples,
                "statuses": {str(code): n for code, n in sorted(result.statuses.items())},
                "failures": list(result.failures),
                "seconds": round(result.seconds, 2),
            }
            for result in results
        ]
        json.dump({"total": total, "operations": per_operation}, sys.stdout, indent=2)
        print()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
