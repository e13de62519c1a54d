"""Signed tokens from others, and our own: discovery documents and JWKS (kept, and fetched again when a token names
a key we lack, so an issuer can rotate with two keys published at once), JWT verification, and the
private_key_jwt client assertion NHS login asks for. Shared by NHS login's pages and the Wayfinder API."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from joserfc.jwt import ClaimsOption, JWTClaimsRegistry

from hub.clock import Clock
from hub.rules.codes import new_token

log = logging.getLogger(__name__)
KEYS_KEPT = timedelta(minutes=5)  # a key the issuer withdrew stops working within this
REFETCH_AFTER = timedelta(seconds=30)  # an unknown key id fetches the set again at most this often
LEEWAY_SECONDS = 30  # clock skew allowed on exp, iat and nbf
_MAX_TOKEN = 16_000


class TokenError(Exception):
    """A token we cannot accept. The message says why, never what the token holds."""


class ProviderError(Exception):
    """The other service could not be reached, or answered something we cannot use."""


@dataclass
class _Fetched:
    value: Any
    at: datetime


@dataclass
class Oidc:
    """One per process, on the app: an HTTP client and what it has fetched."""

    clock: Clock
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=httpx.Timeout(5.0)))
    _key_sets: dict[str, _Fetched] = field(default_factory=dict)
    _documents: dict[str, _Fetched] = field(default_factory=dict)

    async def close(self) -> None:
        await self.http.aclose()

    async def get_json(self, url: str, *, headers: dict[str, str] | None = None) -> Any:
        return await self._json("GET", url, headers=headers)

    async def post_form(self, url: str, data: dict[str, str]) -> Any:
        return await self._json("POST", url, data=data, headers={"Accept": "application/json"})

    async def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        """The provider's 200 JSON answer; anything else (no answer, another status, not JSON) a ProviderError."""
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise ProviderError(f"{type(exc).__name__} from {_origin(url)}") from exc
        if response.status_code != 200:
            raise ProviderError(f"{response.status_code} from {_origin(url)}")
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(f"no JSON from {_origin(url)}") from exc

    async def discovery(self, issuer: str) -> dict[str, Any]:
        """The provider's /.well-known/openid-configuration, kept for an hour."""
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        kept = self._documents.get(url)
        if kept is None or self.clock.now() - kept.at >= timedelta(hours=1):
            document = await self.get_json(url)
            if not isinstance(document, dict) or not isinstance(document.get("jwks_uri"), str):
                raise ProviderError(f"no jwks_uri in the discovery document of {_origin(url)}")
            kept = self._documents[url] = _Fetched(document, self.clock.now())
        return dict(kept.value)

    async def key_set(self, url: str, kid: str | None) -> KeySet:
        now = self.clock.now()
        kept = self._key_sets.get(url)
        stale = kept is None or now - kept.at >= KEYS_KEPT
        unknown = kept is not None and kid is not None and not _has_kid(kept.value, kid)
        if stale or (unknown and kept is not None and now - kept.at >= REFETCH_AFTER):
            raw = await self.get_json(url)
            try:
                kept = self._key_sets[url] = _Fetched(KeySet.import_key_set(raw), now)
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise ProviderError(f"an unreadable JWKS at {_origin(url)}") from exc
        assert kept is not None
        key_set: KeySet = kept.value
        return key_set

    async def verify(
        self,
        token: str,
        *,
        jwks_url: str,
        issuer: str,
        audience: str,
        algorithms: Sequence[str],
        nonce: str | None = None,
    ) -> dict[str, Any]:
        """The token's claims, once its signature, issuer, audience and times (and nonce) are right."""
        if not token or len(token) > _MAX_TOKEN or token.count(".") != 2:
            raise TokenError("not a signed JWT")
        try:
            header = jws.extract_compact(token.encode("ascii")).protected
        except (JoseError, ValueError, UnicodeError) as exc:
            raise TokenError("not a signed JWT") from exc
        if header.get("alg") not in algorithms:
            raise TokenError("signed with an algorithm we do not accept")
        kid = header.get("kid")
        keys = await self.key_set(jwks_url, kid if isinstance(kid, str) else None)
        if isinstance(kid, str) and not _has_kid(keys, kid):
            raise TokenError("signed with a key the issuer does not publish")
        try:
            decoded = jwt.decode(token, keys, algorithms=list(algorithms))
        except (JoseError, ValueError) as exc:
            raise TokenError("the signature does not verify") from exc
        claims = dict(decoded.claims)
        options: dict[str, ClaimsOption] = {
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": audience},
            "exp": {"essential": True},
        }
        if nonce is not None:
            options["nonce"] = {"essential": True, "value": nonce}
        registry = JWTClaimsRegistry(now=int(self.clock.now().timestamp()), leeway=LEEWAY_SECONDS, **options)
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise TokenError(f"claim refused: {exc.error}") from exc
        iat = claims.get("iat")
        if isinstance(iat, int | float) and iat > self.clock.now().timestamp() + LEEWAY_SECONDS:
            raise TokenError("claim refused: issued in the future")
        return claims


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


def _origin(url: str) -> str:
    """Where a failure came from, without the path or query (which may carry codes)."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}" + (f":{parsed.port}" if parsed.port else "")


def load_private_key(pem: str, key_id: str) -> RSAKey:
    """Our private_key_jwt signing key, read once at start-up; a bad key stops start-up."""
    return RSAKey.import_key(pem, parameters={"kid": key_id} if key_id else None)


def client_assertion(*, key: RSAKey, client_id: str, audience: str, now: datetime) -> str:
    """RFC 7523 client authentication: iss and sub our client id, aud the token endpoint, a minute to live."""
    issued = int(now.timestamp())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "jti": new_token(), "iat": issued}
    claims["exp"] = issued + 60
    header = {"alg": "RS512", "typ": "JWT", **({"kid": key.kid} if key.kid else {})}
    return jwt.encode(header, claims, key, algorithms=["RS512"])
