"""Flask extensions, created unbound here and bound to an app in ``create_app``."""

from __future__ import annotations

from datetime import datetime

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase, registry

from moderation.db import UTCDateTime

__all__ = ["NAMING_CONVENTION", "Base", "csrf", "db", "limiter", "login_manager", "migrate"]

# Named constraints let Alembic drop and alter them by name on every backend (SQLite's batch
# mode needs the names to rebuild a table).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every model: the naming convention and UTC timestamps."""

    # One registry carrying both, because Flask-SQLAlchemy subclasses this base again and
    # SQLAlchemy refuses a per-subclass type_annotation_map.
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={datetime: UTCDateTime()},
    )


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)
login_manager = LoginManager()
