"""A real SMTP server on the loopback interface (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

LINK_PATTERN = re.compile(r"https?://[^\s<>\"]+/auth/email/[A-Za-z0-9_-]+")


@dataclass
class Mailbox:
    """Messages the server accepted, in order of arrival."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """aiosmtpd's hook: keep the message."""
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    def mail_config(self) -> dict[str, Any]:
        """``create_app`` overrides that send mail here, in plain SMTP."""
        return {
            "MAIL_SERVER": self.host,
            "MAIL_PORT": self.port,
            "MAIL_USE_TLS": False,
            "MAIL_USE_SSL": False,
            "MAIL_USERNAME": None,
            "MAIL_PASSWORD": None,
            "MAIL_SENDER": "comments@news.example",
            "MAIL_TIMEOUT": 5,
        }

    def last_to(self, address: str) -> EmailMessage:
        """The newest message addressed to ``address``."""
        for message in reversed(self.messages):
            if message["To"] == address:
                return message
        raise AssertionError(f"no mail to {address}; got {[m['To'] for m in self.messages]}")

    def link_to(self, address: str) -> str:
        """The login link in the plain-text part of the newest message to ``address``."""
        text = self.last_to(address).get_body(preferencelist=("plain",))
        assert text is not None
        match = LINK_PATTERN.search(text.get_content())
        assert match is not None, "the mail holds no login link"
        return match.group(0)


def free_port(host: str) -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_mailbox(host: str = "127.0.0.1", kind: type[Mailbox] = Mailbox) -> Iterator[Any]:
    """A ``kind`` SMTP server on ``host`` and a free port, capturing every message, in the block."""
    mailbox = kind(host, free_port(host))
    controller = Controller(mailbox, hostname=host, port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[Mailbox]:
    """An SMTP server on 127.0.0.1 and a free port, capturing every message it receives."""
    with running_mailbox() as mailbox:
        yield mailbox


def request_link(client: Any, address: str, **fields: str) -> Any:
    """Ask the login form for a link to ``address`` (CSRF must be off, or pass csrf_token)."""
    return client.post("/auth/email", data={"email": address, **fields})


def log_in_by_mail(client: Any, mailbox: Mailbox, address: str, **fields: str) -> Any:
    """The whole e-mail login: ask, read the received mail, open the link, confirm."""
    response = request_link(client, address, **fields)
    assert response.status_code == 200, response.text
    path = link_path(mailbox.link_to(address))
    assert client.get(path).status_code == 200
    return client.post(path)


def link_path(link: str) -> str:
    """The path of an absolute link (the test client talks to the app directly)."""
    return "/" + link.split("://", 1)[1].split("/", 1)[1]
