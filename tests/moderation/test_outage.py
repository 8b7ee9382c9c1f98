"""A database that cannot be reached answers 503 with Retry-After, never a 500.

The app is pointed at a PostgreSQL port where nothing listens (a real connection attempt that
is refused, as while PostgreSQL restarts): JSON clients get ``{"error": ...}``, people get an
HTML page, and the next request is answered the same way (the session was rolled back).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from moderation.errors import DATABASE_RETRY_AFTER
from tests.conftest import TestDatabase, dispose, make_test_app


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def down_app(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> Iterator[Flask]:
    """An app whose PostgreSQL refuses every connection."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/nowhere"
    app = make_test_app(TestDatabase(url), tmp_path / "instance")
    yield app
    dispose(app)


def test_api_answers_503_with_retry_after(down_app: Flask) -> None:
    client = down_app.test_client()
    for _ in range(2):  # the second request finds no half-done transaction either
        answer = client.get(
            "/api/v1/comments",
            query_string={"site": "abc", "url": "https://news.example/story"},
        )
        assert answer.status_code == 503, answer.get_data(as_text=True)
        assert answer.headers["Retry-After"] == str(DATABASE_RETRY_AFTER)
        assert answer.mimetype == "application/json"
        assert "try again" in answer.get_json()["error"]


def test_a_post_with_a_token_answers_503(down_app: Flask) -> None:
    client = down_app.test_client()
    answer = client.post(
        "/api/v1/comments",
        json={"site": "abc", "url": "https://news.example/story", "body": "Hello."},
        headers={"Authorization": "Bearer mod_not-checked-while-the-database-is-down"},
    )
    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert answer.headers["Retry-After"] == str(DATABASE_RETRY_AFTER)
    assert set(answer.get_json()) == {"error"}


def test_pages_answer_503_as_html(down_app: Flask) -> None:
    client = down_app.test_client()
    answer = client.get(
        "/embed/thread",
        query_string={"site": "abc", "url": "https://news.example/story"},
        headers={"Accept": "text/html"},
    )
    assert answer.status_code == 503, answer.get_data(as_text=True)
    assert answer.headers["Retry-After"] == str(DATABASE_RETRY_AFTER)
    assert answer.mimetype == "text/html"
    assert "try again" in answer.get_data(as_text=True)


def test_liveness_does_not_need_the_database(down_app: Flask) -> None:
    assert down_app.test_client().get("/healthz").status_code == 200
