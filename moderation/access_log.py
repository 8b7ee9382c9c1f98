"""gunicorn's access log without the secrets that some requests carry.

Login links, invitations and unsubscribe links put a one-time secret in the path; a page opened
from such a link sends it again as the Referer; API clients send tokens in headers and, by
mistake, in query strings. ``RedactingLogger`` (``logger_class`` in gunicorn.conf.py) replaces
them in every atom a log format can use, so that changing the format cannot leak them either.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger

__all__ = ["REDACTED", "RedactingLogger", "redact"]

REDACTED = "[redacted]"

# Paths whose last segment is a secret: auth/email_login.py, moderation/console.py (invitations)
# and moderation/notify.py (unsubscribe).
_SECRET_SEGMENT = re.compile(
    r"(/(?:auth/email|console/invites|notifications/unsubscribe)/)[^/?#\s\"]+"
)
# Query parameters that hold credentials, whatever route they are sent to.
_SECRET_PARAMETER = re.compile(
    r"((?:^|[?&;])[^=&;#\s]*(?:token|secret|password|passwd|key|sig|signature|code|auth)"
    r"[^=&;#\s]*=)[^&;#\s\"]*",
    re.IGNORECASE,
)
# Request headers that carry credentials (gunicorn's "{name}i" atoms).
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})


def redact(text: str) -> str:
    """``text`` (a path, URL or query string) with secret path segments and parameters hidden."""
    text = _SECRET_SEGMENT.sub(rf"\1{REDACTED}", text)
    return _SECRET_PARAMETER.sub(rf"\1{REDACTED}", text)


class RedactingLogger(Logger):
    """gunicorn's logger, with secrets removed from the access log's atoms."""

    def atoms(
        self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta
    ) -> dict[str, Any]:
        """gunicorn's atoms, redacted: request line, path, query, Referer and secret headers."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for name in ("r", "U", "q", "f"):
            if isinstance(atoms.get(name), str):
                atoms[name] = redact(atoms[name])
        for header in _SECRET_HEADERS:
            if f"{{{header}}}i" in atoms:
                atoms[f"{{{header}}}i"] = REDACTED
        return atoms
