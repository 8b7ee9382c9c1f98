"""Secrets stay secret: never in the logs, only from the environment, tokens stored hashed.

The log check runs a realistic session with known test secrets configured (SECRET_KEY,
METRICS_TOKEN, OAuth client secrets, the SMTP password of a real loopback server that asks for
a login, a site's SSO secret, a webhook secret, API tokens, login and invitation links), through
successes, refusals (401, 404), a failing webhook and an unhandled error (500), with every logger
at DEBUG, and then searches every captured record, exception text included, for each secret.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from flask import Flask
from flask.testing import FlaskClient
from gunicorn.config import Config
from gunicorn.glogging import SafeAtoms

from auth.models import ApiToken, SiteMembership, SiteRole, User
from moderation.access_log import REDACTED, RedactingLogger
from moderation.extensions import db
from moderation.models import Site, Webhook
from tests.auth.smtp import Mailbox, free_port, link_path
from tests.moderation.test_ops import _load_gunicorn_conf

PROJECT_ROOT = Path(__file__).resolve().parents[2]

SECRET_KEY = "h7-secret-key-Qm4tV9xR2pL7wN3kJ8sD5fG1hZ6cB0yE"
METRICS_TOKEN = "h7-metrics-token-Zr8Kq2Wm5Tn"
OAUTH_X_SECRET = "h7-x-client-secret-Lp3Vb7Nc1Qz"
OAUTH_FACEBOOK_SECRET = "h7-fb-client-secret-Hs6Jd2Ru9We"
MAIL_PASSWORD = "h7-smtp-password-Yt5Gk8Ma3Xc"
SSO_SECRET = "h7-sso-secret-Fb2Nv6Pq9Sd4Lm7Rt1"
WEBHOOK_SECRET = "h7-webhook-secret-Cw4Ej8Ko2Ui"
WRONG_TOKEN = "mod_h7-wrong-token-Dq7Ha3Zm5Vp"
CONFIGURED = (
    SECRET_KEY,
    METRICS_TOKEN,
    OAUTH_X_SECRET,
    OAUTH_FACEBOOK_SECRET,
    MAIL_PASSWORD,
    SSO_SECRET,
    WEBHOOK_SECRET,
    WRONG_TOKEN,
)
INVITE_PATTERN = re.compile(r"https?://\S+/console/invites/[A-Za-z0-9_-]+")


class LoginMailbox(Mailbox):
    """The test mailbox, behind an SMTP login that only ``MAIL_PASSWORD`` opens."""

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        """aiosmtpd's authenticator: the configured user and password, nothing else."""
        ok = isinstance(data, LoginPassword) and data.password == MAIL_PASSWORD.encode()
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def mailbox() -> Iterator[LoginMailbox]:
    """A real SMTP server on the loopback interface that requires a login (no TLS in tests)."""
    box = LoginMailbox("127.0.0.1", free_port("127.0.0.1"))
    controller = Controller(
        box,
        hostname=box.host,
        port=box.port,
        authenticator=box.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def app_config(mailbox: LoginMailbox) -> dict[str, Any]:
    """The secrets under test, set as the environment would set them."""
    return {
        **mailbox.mail_config(),
        "MAIL_USERNAME": "comments",
        "MAIL_PASSWORD": MAIL_PASSWORD,
        "SECRET_KEY": SECRET_KEY,
        "METRICS_TOKEN": METRICS_TOKEN,
        "OAUTH_X_CLIENT_ID": "h7-x-client",
        "OAUTH_X_CLIENT_SECRET": OAUTH_X_SECRET,
        "OAUTH_FACEBOOK_CLIENT_ID": "h7-fb-client",
        "OAUTH_FACEBOOK_CLIENT_SECRET": OAUTH_FACEBOOK_SECRET,
        "WEBHOOKS_ALLOW_PRIVATE": True,  # the webhook below points at a closed loopback port
    }


def bearer(token: str) -> dict[str, str]:
    """The header that signs a request with ``token``."""
    return {"Authorization": f"Bearer {token}"}


def log_in_by_mail(client: FlaskClient, mailbox: Mailbox, address: str) -> str:
    """The e-mail login, as a reader does it; the token the link carried."""
    assert client.post("/auth/email", data={"email": address}).status_code == 200
    path = link_path(mailbox.link_to(address))
    assert client.get(path).status_code == 200
    assert client.post(path).status_code in (200, 302, 303)
    return path.rsplit("/", 1)[1]


def run_session(app: Flask, client: FlaskClient, mailbox: LoginMailbox) -> dict[str, str]:
    """A realistic session; every one-time secret handed out on the way, by name."""
    with app.app_context():
        site = Site(name="Gazette", origins=["https://news.example"], sso_secret=SSO_SECRET)
        owner = User(email="owner@example.org", display_name="Olive Owner")
        db.session.add_all(
            [site, owner, SiteMembership(user=owner, site=site, role=SiteRole.OWNER)]
        )
        token, api_token = ApiToken.issue(owner, name="test")
        hook = Webhook(
            site=site,
            url=f"http://127.0.0.1:{free_port('127.0.0.1')}/hook",
            events=["comment.created"],
            secret=WEBHOOK_SECRET,
        )
        db.session.add_all([token, hook])
        db.session.commit()
        key = site.key
    given = {"api token": api_token}

    comment = {"site": key, "url": "https://news.example/a/1", "body": "Thanks, good piece."}
    posted = client.post("/api/v1/comments", json=comment, headers=bearer(api_token))
    assert posted.status_code in (201, 202), posted.text  # also fires the webhook, which fails
    assert client.get("/api/v1/me", headers=bearer(WRONG_TOKEN)).status_code == 401
    # From outside METRICS_ALLOW (loopback), where only the token opens /metrics.
    outside = {"REMOTE_ADDR": "203.0.113.9"}
    metrics = client.get("/metrics", headers=bearer(METRICS_TOKEN), environ_base=outside)
    assert metrics.status_code == 200
    refused = client.get("/metrics", headers=bearer(WRONG_TOKEN), environ_base=outside)
    assert refused.status_code in (401, 403)
    # The token in a query string, where careless clients put it.
    assert client.get(f"/api/v1/me?token={api_token}").status_code == 401

    reader = app.test_client()
    given["login link"] = log_in_by_mail(reader, mailbox, "reader@example.org")
    assert reader.get(f"/auth/email/{given['login link']}x").status_code in (400, 404, 410)

    owner_client = app.test_client()
    given["owner login link"] = log_in_by_mail(owner_client, mailbox, "owner@example.org")
    invited = owner_client.post(
        f"/console/sites/{key}/moderators", data={"email": "mo@example.org"}
    )
    assert invited.status_code in (302, 303), invited.text
    body = mailbox.last_to("mo@example.org").get_body(preferencelist=("plain",))
    assert body is not None
    match = INVITE_PATTERN.search(body.get_content())
    assert match is not None, "the invitation mail holds no link"
    given["invitation"] = match.group(0).rsplit("/", 1)[1]
    assert owner_client.get(f"/console/invites/{given['invitation']}").status_code in (200, 403)

    # An unhandled error with debug off, on a request that carries the token twice.
    failed = client.get(f"/h7-fails?token={api_token}", headers=bearer(api_token))
    assert failed.status_code == 500
    return given


def test_no_secret_reaches_the_logs(
    app: Flask, client: FlaskClient, mailbox: LoginMailbox, caplog: pytest.LogCaptureFixture
) -> None:
    def fails() -> str:
        raise RuntimeError("the handler failed")

    app.add_url_rule("/h7-fails", view_func=fails)
    app.testing = False  # errors are handled (and logged) as in production, not re-raised
    app.config["PROPAGATE_EXCEPTIONS"] = False
    caplog.set_level(logging.DEBUG)
    for name in ("", "flask.app", "werkzeug", "sqlalchemy", "moderation", "auth"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    # SQL statements, with their bound values hidden (hide_parameters): at DEBUG SQLAlchemy
    # would also print every result row verbatim, a debugging aid never to enable in production.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    # aiosmtpd stands in for the reader's mail server, which receives the links by design.
    logging.getLogger("mail.log").setLevel(logging.WARNING)

    given = run_session(app, client, mailbox)

    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    records = [r for r in caplog.records if not r.name.startswith("mail.")]
    logged = "\n".join(formatter.format(record) for record in records)
    # The session did log: the failed webhook and the 500 (so the search below means something).
    assert "RuntimeError: the handler failed" in logged
    assert any(r.levelno >= logging.WARNING for r in records)
    assert "INSERT INTO webhooks" in logged  # statements were logged, their values not
    leaked = [s for s in (*CONFIGURED, *given.values()) if s in logged]
    assert leaked == [], f"secrets in the logs: {leaked}"


def test_tokens_and_links_are_stored_hashed(
    app: Flask, client: FlaskClient, mailbox: LoginMailbox, runner: Any
) -> None:
    app.add_url_rule("/h7-fails", view_func=lambda: 1 / 0)
    app.testing = False
    app.config["PROPAGATE_EXCEPTIONS"] = False
    given = run_session(app, client, mailbox)
    created = runner.invoke(args=["users", "create", "--email", "cli@example.org", "--token"])
    assert created.exit_code == 0, created.output
    given["cli token"] = json.loads(created.output)["token"]

    with app.app_context():
        dump = []
        for table in db.metadata.sorted_tables:
            for row in db.session.execute(sa.select(table)):
                dump += [str(value) for value in row]
        stored = "\n".join(dump)
    for name, raw in given.items():
        assert raw not in stored, f"the {name} is stored in clear"
        assert hashlib.sha256(raw.encode()).hexdigest() in stored, f"the {name} is not stored"
    # Needed in clear to sign and to verify, so kept readable (documented on the models).
    assert WEBHOOK_SECRET in stored and SSO_SECRET in stored


# --- gunicorn's access log ----------------------------------------------------------------------


def access_line(logger: RedactingLogger, fmt: str, target: str, headers: dict[str, str]) -> str:
    """The access-log line gunicorn writes for a GET of ``target`` with ``headers``."""
    path, _, query = target.partition("?")
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": target,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.9",
        "HTTP_REFERER": headers.get("Referer", "-"),
        "HTTP_USER_AGENT": "test",
    }
    request = SimpleNamespace(headers=[(k.upper(), v) for k, v in headers.items()])
    response = SimpleNamespace(status="200 OK", sent=12, headers=[])
    atoms = logger.atoms(response, request, environ, timedelta(milliseconds=5))
    return fmt % SafeAtoms(atoms)


def test_access_log_redacts_secret_paths_queries_and_headers() -> None:
    conf = _load_gunicorn_conf()
    assert conf.logger_class == "moderation.access_log.RedactingLogger"
    cfg = Config()
    cfg.set("logger_class", conf.logger_class)
    assert cfg.logger_class is RedactingLogger  # gunicorn resolves the name to this class
    logger = RedactingLogger(cfg)
    secret = "Zq8Wc3Lr6Tn1Yb4Xk7Jd0Hs5"
    everything = "%(r)s|%(U)s|%(q)s|%(f)s|%({authorization}i)s|%({cookie}i)s"
    requests = [
        f"/auth/email/{secret}",
        f"/console/invites/{secret}",
        f"/notifications/unsubscribe/{secret}?kind=digest",
        f"/api/v1/comments?site=abc&token={secret}",
        f"/healthz?api_key={secret}",
    ]
    headers = {
        "Authorization": f"Bearer mod_{secret}",
        "Cookie": f"session={secret}",
        "Referer": f"https://comments.example/auth/email/{secret}",
    }
    for fmt in (conf.access_log_format, everything):
        for target in requests:
            line = access_line(logger, fmt, target, headers)
            assert secret not in line, line
            assert target.split("?")[0].split("/")[1] in line  # the route stays, for operators
    line = access_line(logger, everything, requests[3], headers)
    assert REDACTED in line and "site=abc" in line


# --- secrets only from the environment ----------------------------------------------------------

# Secret-looking literals: private keys, cloud and payment keys, and secrets assigned in code.
SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |OPENSSH |DSA |PGP )?PRIVATE KEY"),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "Stripe live key": re.compile(r"\b[rs]k_live_[0-9A-Za-z]{16,}"),
    "GitHub token": re.compile(r"\bgh[pousr]_[0-9A-Za-z]{30,}"),
    "Slack token": re.compile(r"\bxox[abprs]-[0-9A-Za-z-]{10,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "secret assigned a literal": re.compile(
        r"""(?ix)\b(?:secret_key|client_secret|password|api_key|metrics_token)\s*[:=]\s*
        ["'][^"'\s{}<>$%]{8,}["']"""
    ),
}


def tracked_files() -> list[Path]:
    """Files under version control (read-only git query)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=False
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout: the tracked files are unknown")
    return [PROJECT_ROOT / name for name in listed.stdout.decode().split("\0") if name]


def test_no_secret_literal_in_tracked_files() -> None:
    files = tracked_files()
    assert not [
        f
        for f in files
        if f.name == ".env" or (f.name.startswith(".env.") and f.name != ".env.example")
    ], ".env files hold secrets and must not be tracked"
    found = []
    for path in files:
        if path.suffix not in {".py", ".html", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".txt"}:
            continue
        # Tests hold fixed test secrets on purpose; the patterns' own definitions are here too.
        if "tests" in path.relative_to(PROJECT_ROOT).parts:
            continue
        text = path.read_text(errors="replace")
        for name, pattern in SECRET_PATTERNS.items():
            found += [f"{path.relative_to(PROJECT_ROOT)}: {name}" for _ in pattern.finditer(text)]
    assert found == []


def test_secret_patterns_catch_what_they_are_for() -> None:
    samples = {
        "private key": "-----BEGIN RSA PRIVATE KEY-----",
        "AWS access key": "AKIAIOSFODNN7EXAMPLE",
        "Stripe live key": "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
        "secret assigned a literal": 'SECRET_KEY = "' + "change-me-please" + '"',
    }
    for name, sample in samples.items():
        assert SECRET_PATTERNS[name].search(sample), name
    # Reading one from the environment is not a literal.
    assert not SECRET_PATTERNS["secret assigned a literal"].search(
        'secret_key = os.environ["SECRET_KEY"]'
    )
