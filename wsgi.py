"""The WSGI entry point: ``flask --app wsgi ...`` and ``gunicorn wsgi:app``."""

from moderation import create_app

app = create_app()
