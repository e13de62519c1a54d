"""A fake of the NHS App's Patient Care Aggregator, on real HTTP: the OAuth 2.0 issuer of the access tokens it calls
our Wayfinder API with (and their JWKS, with key rotation), and its Record Service, which takes NHS numbers as its
API specification documents (POST /records {clientId, nhsNumbers}, 1 to 5,000 numbers matching ^[1-9][0-9]{9}$,
a bearer from its token endpoint's client credentials or an API key; 200 {"result": "success"}, 400/401 with
{code, data}).
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tests.fake_http import FakeServer, Incoming, Reply, new_key

_NUMBER = re.compile(r"[1-9][0-9]{9}")
AUDIENCE = "https://hub.test/fhir/r4"
SCOPE = "wayfinder/appointments.read"


class FakeAggregator(FakeServer):
    def __init__(
        self,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        client_id: str = "hub-record-client",
        client_secret: str = "record-secret",
        record_limit: int = 5000,
    ) -> None:
        super().__init__()
        self.now = now
        self.keys = [new_key(parameters={"kid": "agg-1"})]
        self.signing = self.keys[0]
        self.client_id, self.client_secret, self.record_limit = client_id, client_secret, record_limit
        self.client_ids = {"appointments": "pep-appointments", "documents": "pep-documents"}
        self.api_key = "agg-api-key"
        self.issued: set[str] = set()  # access tokens for the Record Service
        self.received: list[dict[str, Any]] = []  # the Record Service's accepted bodies
        self.faults: list[int] = []  # statuses the Record Service answers next, one per call
        self.issuer = self.url
        self.jwks_url = f"{self.url}/jwks"
        self.token_url = f"{self.url}/oauth2/token"
        self.records_url = f"{self.url}/records"
        self.routes = {
            ("GET", "/jwks"): self._jwks,
            ("POST", "/oauth2/token"): self._token,
            ("POST", "/records"): self._records,
        }

    # The issuer of the tokens the Aggregator calls us with.
    def access_token(
        self,
        *,
        audience: str = AUDIENCE,
        scope: str = SCOPE,
        lifetime: int = 300,
        key: RSAKey | None = None,
        issuer: str | None = None,
    ) -> str:
        issued = int(self.now().timestamp())
        claims = {
            "iss": issuer or self.issuer,
            "sub": "patient-care-aggregator",
            "aud": audience,
            "scope": scope,
            "iat": issued,
            "exp": issued + lifetime,
            "jti": secrets.token_hex(8),
        }
        signer = key or self.signing
        return jwt.encode({"alg": "RS512", "kid": signer.kid}, claims, signer, algorithms=["RS512"])

    def rotate(self) -> RSAKey:
        """A new key, published beside the old one and signing from now on."""
        with self.lock:
            new = new_key(parameters={"kid": f"agg-{len(self.keys) + 1}"})
            self.keys.append(new)
            self.signing = new
        return new

    def retire(self, key: RSAKey) -> None:
        with self.lock:
            self.keys = [k for k in self.keys if k.kid != key.kid]

    def _jwks(self, request: Incoming) -> Reply:
        with self.lock:
            return Reply(200, KeySet(list(self.keys)).as_dict(private=False))

    # OAuth 2.0 client credentials, for the Record Service (client_secret_basic or client_secret_post).
    def _token(self, request: Incoming) -> Reply:
        form = request.form()
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        if form.get("grant_type") != "client_credentials":
            return Reply(400, {"error": "unsupported_grant_type"})
        if client_id != self.client_id or secret != self.client_secret:
            return Reply(401, {"error": "invalid_client"})
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.issued.add(token)
        return Reply(200, {"access_token": token, "token_type": "bearer", "expires_in": 600})

    def _records(self, request: Incoming) -> Reply:
        token = request.bearer()
        with self.lock:
            known = token in self.issued or token == self.api_key
            fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            return Reply(fault, {"code": "error.server", "data": "injected fault"})
        if not known:
            return Reply(401, {"code": "error.unauthorized", "data": "unrecognised bearer token"})
        try:
            body = request.json()
        except ValueError:
            return Reply(400, {"code": "error.bad-request", "data": "invalid JSON"})
        numbers = body.get("nhsNumbers") if isinstance(body, dict) else None
        if not isinstance(numbers, list) or not 1 <= len(numbers) <= self.record_limit:
            return Reply(400, {"code": "error.bad-request", "data": '"nhsNumbers" must hold 1 to the limit'})
        bad = [f'"nhsNumbers[{i}]"' for i, n in enumerate(numbers) if not (isinstance(n, str) and _NUMBER.fullmatch(n))]
        if bad:
            return Reply(400, {"code": "error.bad-request", "data": f"{', '.join(bad)} fails to match the pattern"})
        if body.get("clientId") not in self.client_ids.values():
            return Reply(400, {"code": "error.bad-request", "data": "clientId mismatch"})
        with self.lock:
            self.received.append(body)
        return Reply(200, {"result": "success"})

    def numbers(self, resource: str) -> list[str]:
        client = self.client_ids[resource]
        with self.lock:
            return sorted({n for body in self.received if body["clientId"] == client for n in body["nhsNumbers"]})
