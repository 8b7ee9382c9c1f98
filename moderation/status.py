"""The states a comment can be in, and who can move it between them."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where a comment stands: visible, waiting for a moderator, or out."""

    PUBLISHED = "published"
    PENDING = "pending"
    SPAM = "spam"
    REJECTED = "rejected"
    DELETED = "deleted"


class Action(StrEnum):
    """A decision a moderator (or the system) takes on a comment."""

    APPROVE = "approve"
    REJECT = "reject"
    SPAM = "spam"
    DELETE = "delete"

    @property
    def target(self) -> Status:
        """The status this action moves a comment to."""
        return {
            Action.APPROVE: Status.PUBLISHED,
            Action.REJECT: Status.REJECTED,
            Action.SPAM: Status.SPAM,
            Action.DELETE: Status.DELETED,
        }[self]
