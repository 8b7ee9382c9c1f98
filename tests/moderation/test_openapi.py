"""The OpenAPI document at /api/v1/openapi.json: valid, complete, generated from the code."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

# Every endpoint of the API (ARCHITECTURE.md §4 and the console's needs) and its methods.
ENDPOINTS = {
    "/api/v1/comments": {"get", "post"},
    "/api/v1/counts": {"get"},
    # The widget: editing, deleting and liking comments (moderation/api.py, embed.py).
    "/api/v1/comments/{comment_id}": {"patch", "delete"},
    "/api/v1/comments/{comment_id}/like": {"post", "delete"},
    "/api/v1/moderation/queue": {"get"},
    "/api/v1/moderation/comments/{comment_id}/decision": {"post"},
    # The review desk (moderation/desk_api.py).
    "/api/v1/moderation/counts": {"get"},
    "/api/v1/moderation/comments/{comment_id}": {"get"},
    "/api/v1/moderation/decisions": {"post"},
    "/api/v1/moderation/comments/{comment_id}/undo": {"post"},
    "/api/v1/moderation/authors/{user_id}": {"get"},
    "/api/v1/moderation/authors/{user_id}/notes": {"post"},
    "/api/v1/moderation/authors/{user_id}/actions": {"post"},
    "/api/v1/moderation/guests": {"get"},
    "/api/v1/moderation/guests/notes": {"post"},
    "/api/v1/moderation/guests/actions": {"post"},
    "/api/v1/moderation/model-versions": {"get"},
    "/api/v1/moderation/model-versions/{version}/activate": {"post"},
    "/api/v1/moderation/model-versions/rollback": {"post"},
    # Reader reports, the audit log and moderator activity (moderation/reports_api.py).
    "/api/v1/comments/{comment_id}/reports": {"post"},
    "/api/v1/moderation/comments/{comment_id}/reports": {"get"},
    "/api/v1/moderation/audit": {"get"},
    "/api/v1/moderation/audit.csv": {"get"},
    "/api/v1/moderation/activity": {"get"},
    "/api/v1/sites/{key}": {"get", "patch"},
    "/api/v1/me": {"get"},
    # An admin's export and erasure of one person's data (moderation/privacy.py).
    "/api/v1/admin/privacy/export": {"get"},
    "/api/v1/admin/privacy/erase": {"post"},
}


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    """The served OpenAPI document."""
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.json


def test_document_is_valid_openapi_3(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"] == "3.0.3"
    assert document["info"]["version"] == "v1"


def test_document_lists_every_endpoint(document: dict[str, Any], app: Flask) -> None:
    paths = {
        path: {method for method in operations if method in {"get", "post", "patch", "delete"}}
        for path, operations in document["paths"].items()
    }
    assert paths == ENDPOINTS
    # And every API route of the app is documented (nothing added without its documentation).
    routes = {
        rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and not rule.endpoint.startswith("api-docs.")
    }
    assert routes == set(ENDPOINTS)


def test_answers_and_errors_are_described(document: dict[str, Any]) -> None:
    post = document["paths"]["/api/v1/comments"]["post"]
    assert {"201", "202", "401", "403", "404", "409", "422", "429"} <= set(post["responses"])
    body = post["requestBody"]["content"]["application/json"]["schema"]
    schema = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
    assert set(schema["required"]) == {"site", "url", "body"}
    # Error answers are {"error": ...}, not flask-smorest's default shape.
    error = document["components"]["schemas"]["Error"]
    assert "error" in error["properties"] and "fields" in error["properties"]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    decision = document["paths"]["/api/v1/moderation/comments/{comment_id}/decision"]["post"]
    assert decision["security"] == [{"bearerAuth": []}]
    assert "409" in decision["responses"]


def test_comment_objects_carry_body_and_html(document: dict[str, Any]) -> None:
    for name in ("Comment", "ModeratedComment"):
        properties = document["components"]["schemas"][name]["properties"]
        assert {"body", "html", "id", "status", "created_at"} <= set(properties)


def test_no_documentation_ui_from_a_cdn(client: FlaskClient) -> None:
    for path in ("/api/v1/swagger-ui", "/api/v1/redoc", "/api/v1/rapidoc"):
        assert client.get(path).status_code == 404
