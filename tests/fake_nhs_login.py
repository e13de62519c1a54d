"""A fake NHS login on real HTTP, behaving as its interface specification documents: discovery, JWKS (RS512 keys),
/authorize (response_type code, scope openid, state, nonce, vtr; asserted_login_identity with prompt=none for the
NHS App's single sign-on, a JWT from the NHS App's client key living at most 60 seconds and used once), /token
(authorization_code with a private_key_jwt client assertion: iss and sub the client id, aud the token endpoint,
signed RS512 with the client's registered key, each jti once; codes used once within 10 minutes) and /userinfo
(nhs_number, birthdate, identity_proofing_level).

The person at /authorize without an asserted identity is `signed_in` (as if they already had an NHS login
session); None answers login_required to prompt=none, and otherwise sends them back with access_denied.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tests.fake_http import FakeServer, Incoming, Reply, new_key

NHS_APP_CLIENT = "nhs-online"  # the NHS App's client id at NHS login, as in the standard's example token
MARGARET = {
    "sub": "82a296d0-752c-4cf1-9a00-73806bb1f833",
    "nhs_number": "9434765919",
    "birthdate": "1948-03-14",
    "family_name": "JONES",
    "identity_proofing_level": "P9",
}


def _seconds(now: Callable[[], datetime]) -> int:
    return int(now().timestamp())


class FakeNhsLogin(FakeServer):
    def __init__(
        self,
        *,
        client_id: str = "hub-client",
        client_key: dict[str, Any] | None = None,  # the public JWK registered for our private_key_jwt
        redirect_uri: str = "http://127.0.0.1:8000/nhs-login/callback",
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client_keys = KeySet.import_key_set({"keys": [client_key]}) if client_key else KeySet([])
        super().__init__()
        self.now = now
        self.client_id, self.redirect_uri = client_id, redirect_uri
        self.key = new_key(parameters={"kid": "nhs-login-1"})
        self.app_key = new_key(parameters={"kid": "nhs-app-1"})
        self.signed_in: dict[str, Any] | None = dict(MARGARET)
        self.sso: dict[str, dict[str, Any]] = {}  # the NHS App's ID token jti -> person
        self.codes: dict[str, dict[str, Any]] = {}
        self.access: dict[str, dict[str, Any]] = {}
        self.used_jti: set[str] = set()
        self.authorize_requests: list[dict[str, str]] = []
        self.token_errors: list[str] = []
        self.issuer = self.url
        self.routes = {
            ("GET", "/.well-known/openid-configuration"): self._discovery,
            ("GET", "/.well-known/jwks.json"): self._jwks,
            ("GET", "/authorize"): self._authorize,
            ("POST", "/token"): self._token,
            ("GET", "/userinfo"): self._userinfo,
        }

    # What the NHS App holds: its ID token (the NHSD-ID-Token) and the assertion it puts on a deep link.
    def id_token(self, person: dict[str, Any] | None = None, *, audience: str = NHS_APP_CLIENT, **extra: Any) -> str:
        person = person or MARGARET
        issued = _seconds(self.now)
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "iat": issued,
            "exp": issued + 3600,
            "jti": secrets.token_hex(12),
            "vot": f"{person.get('identity_proofing_level', 'P9')}.Cp.Cd",
            "vtm": f"{self.issuer}/trustmark/login.nhs.uk",
            "token_use": "id",
            **person,
            **extra,
        }
        return jwt.encode({"alg": "RS512", "kid": self.key.kid, "typ": "JWT"}, claims, self.key, algorithms=["RS512"])

    def asserted_identity(self, person: dict[str, Any] | None = None) -> str:
        code = secrets.token_hex(12)
        with self.lock:
            self.sso[code] = dict(person or MARGARET)
        issued = _seconds(self.now)
        claims = {"code": code, "iss": NHS_APP_CLIENT, "jti": secrets.token_hex(12), "iat": issued, "exp": issued + 60}
        return jwt.encode({"alg": "RS512", "kid": self.app_key.kid}, claims, self.app_key, algorithms=["RS512"])

    def _discovery(self, request: Incoming) -> Reply:
        return Reply(
            200,
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "userinfo_endpoint": f"{self.url}/userinfo",
                "jwks_uri": f"{self.url}/.well-known/jwks.json",
                "response_types_supported": ["code"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
                "id_token_signing_alg_values_supported": ["RS512"],
            },
        )

    def _jwks(self, request: Incoming) -> Reply:
        return Reply(200, KeySet([self.key]).as_dict(private=False))

    def _asserted(self, token: str) -> dict[str, Any] | None:
        try:
            claims = jwt.decode(token, self.app_key, algorithms=["RS512"]).claims
        except (JoseError, ValueError):
            return None
        now = _seconds(self.now)
        if claims.get("iss") != NHS_APP_CLIENT or not now <= claims.get("exp", 0) <= claims.get("iat", 0) + 60:
            return None
        with self.lock:
            jti, code = str(claims.get("jti", "")), str(claims.get("code", ""))
            if not jti or jti in self.used_jti:
                return None
            self.used_jti.add(jti)
            return self.sso.pop(code, None)

    def _authorize(self, request: Incoming) -> Reply:
        q = request.query
        self.authorize_requests.append(dict(q))
        if q.get("client_id") != self.client_id or q.get("redirect_uri") != self.redirect_uri:
            return Reply(400, {"error": "invalid_request", "error_description": "unknown client or redirect_uri"})
        back = {"state": q.get("state", "")}
        if q.get("response_type") != "code" or "openid" not in q.get("scope", "").split() or not q.get("nonce"):
            back["error"] = "invalid_request"
        else:
            person = self._asserted(q["asserted_login_identity"]) if q.get("asserted_login_identity") else None
            person = person or self.signed_in
            if person is None:
                back["error"] = "login_required" if q.get("prompt") == "none" else "access_denied"
            else:
                code = secrets.token_urlsafe(16)
                with self.lock:
                    self.codes[code] = {"person": person, "nonce": q["nonce"], "at": time.monotonic()}
                back["code"] = code
        return Reply(302, b"", headers={"Location": f"{self.redirect_uri}?{urlencode(back)}"})

    def _client_authenticated(self, form: dict[str, str]) -> bool:
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            self.token_errors.append("client_assertion_type")
            return False
        try:
            claims = jwt.decode(form.get("client_assertion", ""), self.client_keys, algorithms=["RS512"]).claims
        except (JoseError, ValueError):
            self.token_errors.append("client_assertion signature")
            return False
        now = _seconds(self.now)
        checks = {
            "iss": claims.get("iss") == self.client_id,
            "sub": claims.get("sub") == self.client_id,
            "aud": claims.get("aud") == f"{self.url}/token",
            "exp": now - 30 <= claims.get("exp", 0) <= now + 300,
            "jti": bool(claims.get("jti")) and claims.get("jti") not in self.used_jti,
        }
        self.token_errors += [name for name, ok in checks.items() if not ok]
        with self.lock:
            self.used_jti.add(str(claims.get("jti", "")))
        return all(checks.values())

    def _token(self, request: Incoming) -> Reply:
        form = request.form()
        if not self._client_authenticated(form):
            return Reply(400, {"error": "invalid_client"})
        with self.lock:
            grant = self.codes.pop(form.get("code", ""), None)
        if form.get("grant_type") != "authorization_code" or grant is None:
            return Reply(400, {"error": "invalid_grant"})
        if form.get("redirect_uri") != self.redirect_uri or time.monotonic() - grant["at"] > 600:
            return Reply(400, {"error": "invalid_grant"})
        access = secrets.token_urlsafe(24)
        with self.lock:
            self.access[access] = grant["person"]
        id_token = self.id_token(grant["person"], audience=self.client_id, nonce=grant["nonce"])
        return Reply(
            200,
            {"access_token": access, "id_token": id_token, "token_type": "Bearer", "expires_in": 3600},
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def _userinfo(self, request: Incoming) -> Reply:
        with self.lock:
            person = self.access.get(request.bearer())
        if person is None:
            return Reply(401, {"error": "invalid_token"})
        return Reply(200, dict(person))
