"""A real, local OAuth 2.0 provider for tests, built with Authlib's server side.

It serves X-shaped (``/2/users/me``) and Facebook-shaped (``/me``) profiles, requires PKCE
(S256), authenticates clients with ``client_secret_basic`` or ``client_secret_post``, and
approves every authorization request for ``provider.person`` (or denies it when that is None).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Flask, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

X_CLIENT = ("x-client", "x-secret")
FACEBOOK_CLIENT = ("fb-client", "fb-secret")
REDIRECT_BASE = "http://localhost/auth"


@dataclass
class Person:
    """Who the provider says is at the keyboard."""

    id: str
    name: str
    username: str = "someone"
    email: str | None = None
    picture: str = "https://img.example/avatar.png"


@dataclass
class Client:
    """A registered OAuth client (our app, as X or as Facebook)."""

    client_id: str
    client_secret: str
    redirect_uri: str
    auth_method: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Code:
    """An issued authorization code and what it was issued for."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    person: Person
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


class S256Only(CodeChallenge):
    """PKCE, required, S256 only (as X requires of confidential clients too)."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]


@dataclass
class LocalProvider:
    """The provider's state, which tests change between flows."""

    base_url: str = ""
    person: Person | None = None
    code_lifetime: float = 60.0
    token_error: str | None = None
    clients: dict[str, Client] = field(default_factory=dict)
    codes: dict[str, Code] = field(default_factory=dict)
    tokens: dict[str, tuple[Person, str]] = field(default_factory=dict)
    profile_reads: int = 0

    def app_settings(self) -> dict[str, Any]:
        """Our app's settings for X and Facebook, both pointed at this provider."""
        base = self.base_url
        return {
            "OAUTH_X_CLIENT_ID": X_CLIENT[0],
            "OAUTH_X_CLIENT_SECRET": X_CLIENT[1],
            "OAUTH_X_AUTHORIZE_URL": f"{base}/authorize",
            "OAUTH_X_TOKEN_URL": f"{base}/token",
            "OAUTH_X_PROFILE_URL": f"{base}/2/users/me",
            "OAUTH_X_EMAIL": True,
            "OAUTH_FACEBOOK_CLIENT_ID": FACEBOOK_CLIENT[0],
            "OAUTH_FACEBOOK_CLIENT_SECRET": FACEBOOK_CLIENT[1],
            "OAUTH_FACEBOOK_AUTHORIZE_URL": f"{base}/authorize",
            "OAUTH_FACEBOOK_TOKEN_URL": f"{base}/token",
            "OAUTH_FACEBOOK_PROFILE_URL": f"{base}/me",
        }

    def reset(self) -> None:
        """Back to the defaults: a default person, no errors, nothing issued."""
        self.person = Person(id="1001", name="Ada Reader", username="ada")
        self.code_lifetime = 60.0
        self.token_error = None
        self.codes.clear()
        self.tokens.clear()
        self.profile_reads = 0


def create_provider_app(provider: LocalProvider) -> Flask:
    """The provider's Flask app, reading and writing ``provider``."""
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "provider-secret"
    for client_id, secret, name, method in (
        (*X_CLIENT, "x", "client_secret_basic"),
        (*FACEBOOK_CLIENT, "facebook", "client_secret_post"),
    ):
        provider.clients[client_id] = Client(
            client_id, secret, f"{REDIRECT_BASE}/{name}/callback", method
        )

    class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [
            "client_secret_basic",
            "client_secret_post",
        ]

        def save_authorization_code(self, code: str, req: Any) -> None:
            provider.codes[code] = Code(
                code=code,
                client_id=req.client.client_id,
                redirect_uri=req.payload.redirect_uri,
                scope=req.payload.scope or "",
                person=req.user,
                code_challenge=req.payload.data.get("code_challenge"),
                code_challenge_method=req.payload.data.get("code_challenge_method"),
                expires_at=time.time() + provider.code_lifetime,
            )

        def query_authorization_code(self, code: str, client: Client) -> Code | None:
            item = provider.codes.get(code)
            if item is None or item.client_id != client.client_id or item.expires_at < time.time():
                return None
            return item

        def delete_authorization_code(self, authorization_code: Code) -> None:
            provider.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code: Code) -> Person:
            return authorization_code.person

    def save_token(token: dict[str, Any], req: Any) -> None:
        provider.tokens[token["access_token"]] = (req.user, req.client.client_id)

    server = AuthorizationServer(app, query_client=provider.clients.get, save_token=save_token)
    server.register_grant(AuthorizationCodeGrant, [S256Only(required=True)])

    @app.get("/authorize")
    def authorize() -> Any:
        grant = server.get_consent_grant(end_user=provider.person)
        return server.create_authorization_response(grant=grant, grant_user=provider.person)

    @app.post("/token")
    def token() -> Any:
        if provider.token_error:
            return jsonify(error=provider.token_error), 503
        return server.create_token_response()

    def bearer() -> tuple[Person, str] | None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return provider.tokens.get(value)

    @app.get("/2/users/me")
    def x_me() -> Any:
        found = bearer()
        if found is None:
            return jsonify(title="Unauthorized", status=401), 401
        provider.profile_reads += 1
        person, _ = found
        data: dict[str, Any] = {"id": person.id, "name": person.name, "username": person.username}
        fields = request.args.get("user.fields", "").split(",")
        if "profile_image_url" in fields:
            data["profile_image_url"] = person.picture
        if "confirmed_email" in fields and person.email:
            data["confirmed_email"] = person.email
        return jsonify(data=data)

    @app.get("/me")
    def facebook_me() -> Any:
        found = bearer()
        if found is None:
            return jsonify(error={"message": "no token", "code": 190}), 400
        person, client_id = found
        secret = provider.clients[client_id].client_secret
        token = request.headers["Authorization"].partition(" ")[2]
        proof = hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.args.get("appsecret_proof", ""), proof):
            return jsonify(error={"message": "bad appsecret_proof", "code": 100}), 400
        provider.profile_reads += 1
        data: dict[str, Any] = {
            "id": person.id,
            "name": person.name,
            "picture": {"data": {"url": person.picture}},
        }
        if person.email:
            data["email"] = person.email
        return jsonify(data)

    return app


class ProviderServer:
    """The provider served on 127.0.0.1 at a free port, in a background thread."""

    def __init__(self) -> None:
        self.provider = LocalProvider()
        self.provider.reset()
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, create_provider_app(self.provider), threaded=True
        )
        self.provider.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> ProviderServer:
        """Start serving; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def random_id() -> str:
    """A provider-style numeric user id."""
    return str(secrets.randbelow(10**12))


@pytest.fixture(scope="session")
def provider_server() -> Iterator[ProviderServer]:
    """The local provider, running for the whole test session."""
    server = ProviderServer().start()
    yield server
    server.stop()


@pytest.fixture
def provider(provider_server: ProviderServer) -> LocalProvider:
    """The provider's state, reset for each test."""
    provider_server.provider.reset()
    return provider_server.provider
