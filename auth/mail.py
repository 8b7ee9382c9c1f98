"""Outgoing e-mail through SMTP (``MAIL_*`` settings); written to the log when no server is set."""

from __future__ import annotations

import functools
import smtplib
import ssl
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from email.utils import make_msgid

from flask import current_app

__all__ = ["MailError", "send_mail"]


class MailError(Exception):
    """The message could not be handed to the mail server."""


def send_mail(
    to: str,
    subject: str,
    text: str,
    html: str,
    headers: Mapping[str, str] | None = None,
    on_accepted: Callable[[], None] | None = None,
) -> None:
    """Send one message with plain-text and HTML alternatives to ``to``; MailError on failure."""
    config = current_app.config
    message = EmailMessage()
    message["From"] = config["MAIL_SENDER"]
    message["To"] = to
    # Header values never carry line breaks, whatever a title or a name contains.
    message["Subject"] = " ".join(subject.split())
    message["Message-ID"] = make_msgid(domain=config["MAIL_SENDER"].rpartition("@")[2] or None)
    for name, value in (headers or {}).items():
        message[name] = " ".join(value.split())
    message.set_content(text)
    message.add_alternative(html, subtype="html")

    if not config.get("MAIL_SERVER"):
        _log_instead(message, text)
        return
    try:
        _deliver(message, on_accepted)
    except (smtplib.SMTPException, OSError) as exc:
        # The exception's class only: SMTP replies can echo the login or the message.
        current_app.logger.error(
            "Could not send mail to %s through %s:%s (%s)",
            to,
            config["MAIL_SERVER"],
            config["MAIL_PORT"],
            type(exc).__name__,
        )
        raise MailError(f"Could not send mail to {to}.") from exc


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process: loading the CA store costs ~50 ms a time."""
    return ssl.create_default_context()


def _deliver(message: EmailMessage, on_accepted: Callable[[], None] | None = None) -> None:
    config = current_app.config
    host, port, timeout = config["MAIL_SERVER"], config["MAIL_PORT"], config["MAIL_TIMEOUT"]
    smtp: smtplib.SMTP
    if config.get("MAIL_USE_SSL"):
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=_tls_context())
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    with smtp:
        if config.get("MAIL_USE_TLS") and not config.get("MAIL_USE_SSL"):
            smtp.starttls(context=_tls_context())
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"] or "")
        smtp.send_message(message)
        if on_accepted is not None:
            # The server has the message: a job records that now, before QUIT, so that a
            # failure or a kill from here on cannot make its retry send the message twice.
            on_accepted()


def _log_instead(message: EmailMessage, text: str) -> None:
    if current_app.config.get("APP_ENV") == "production":
        # Production without a mail server: the body holds login links, so never log it.
        current_app.logger.error(
            "MAIL_SERVER is not set: mail to %s (%r) was dropped", message["To"], message["Subject"]
        )
        return
    # Development: the console is the mailbox (`make run` shows login links here). Logged as a
    # warning because Flask's logger hides INFO outside debug mode.
    current_app.logger.warning(
        "MAIL_SERVER is not set; this mail was not sent:\nTo: %s\nSubject: %s\n\n%s",
        message["To"],
        message["Subject"],
        text,
    )
