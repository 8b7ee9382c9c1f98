"""Signals the services send after a change is committed (notifications and webhooks listen)."""

from __future__ import annotations

from blinker import Namespace

__all__ = ["author_acted", "comment_decided", "comment_posted"]

_signals = Namespace()

# Sent with the app as sender and ``comment=`` (committed, still attached to the session).
comment_posted = _signals.signal("comment-posted")
# Sent with ``comment=``, ``decision=`` (the human Decision) and ``actor=``.
comment_decided = _signals.signal("comment-decided")
# Sent after a moderator's action on an author is committed, with ``site=``, ``event=`` (the
# AuthorEvent), ``author=`` (the User, or None for a guest), ``guest_email=`` and ``actor=``.
author_acted = _signals.signal("author-acted")
