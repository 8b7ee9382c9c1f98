"""Fixtures for the security tests: one app per module, module-wide SMTP and HTTP receivers.

Security tests push many hostile inputs through the whole service; building the app and its
data once per module (not once per test) keeps them fast. The app uses the run's database
(``tests/conftest.py``: SQLite, or PostgreSQL with ``TEST_DATABASE_URL``) with emptied tables,
before and after the module, so the tests after it start from nothing as usual.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask, g, has_app_context
from flask.testing import FlaskClient

from auth.models import User
from tests.auth.smtp import Mailbox, running_mailbox
from tests.conftest import (
    APP_ENVIRONMENT,
    TestDatabase,
    dispose,
    empty_tables,
    flush_test_redis,
    make_test_app,
)

__all__ = ["ModuleApp", "Receiver", "sign_in"]

ModuleApp = Callable[..., Flask]


@pytest.fixture(scope="module")
def module_mailbox() -> Iterator[Mailbox]:
    """An SMTP server on loopback for the whole module, keeping every message it accepts."""
    with running_mailbox() as mailbox:
        yield mailbox


@dataclass
class Receiver:
    """An HTTP server on loopback that answers 200 to every POST and keeps what it received."""

    url: str = ""
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture(scope="module")
def module_receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 for the whole module: (path, lower-cased headers, body)."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            state.requests.append((self.path, headers, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def module_app(
    database: TestDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModuleApp]:
    """``module_app(**overrides)``: an app shared by the module's tests, on emptied tables."""
    made: list[Flask] = []
    with pytest.MonkeyPatch.context() as env:
        for name in APP_ENVIRONMENT:  # as tests/conftest.py's clean_env, for the whole module
            env.delenv(name, raising=False)

        def make(**overrides: Any) -> Flask:
            flush_test_redis()
            app = make_test_app(database, tmp_path_factory.mktemp("instance"), overrides)
            with app.app_context():
                empty_tables()
            made.append(app)
            return app

        yield make
        for app in made:
            with app.app_context():
                empty_tables()
            dispose(app)
        flush_test_redis()


def sign_in(client: FlaskClient, user: User) -> None:
    """Put ``user`` in the client's Flask-Login session."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
    if has_app_context():  # an app context held by the test may cache the previous user
        g.pop("_login_user", None)
