"""Placeholder blueprint; replaced by the module's real implementation."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("auth_sso", __name__)
