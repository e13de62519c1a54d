"""Tokens from others and our own: verification against a published JWKS, and our private_key_jwt assertion."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from joserfc import jwt

from hub.clock import FixedClock
from hub.web.oidc import Oidc, ProviderError, TokenError, client_assertion, load_private_key
from tests.fake_aggregator import AUDIENCE, FakeAggregator
from tests.fake_http import new_key

pytestmark = pytest.mark.anyio


@pytest.fixture
def aggregator(clock: FixedClock) -> Iterator[FakeAggregator]:
    with FakeAggregator(now=clock.now) as fake:
        yield fake


async def _verify(oidc: Oidc, aggregator: FakeAggregator, token: str, **kw: str) -> dict[str, object]:
    return await oidc.verify(
        token,
        jwks_url=kw.get("jwks_url", aggregator.jwks_url),
        issuer=aggregator.issuer,
        audience=AUDIENCE,
        algorithms=["RS512"],
        nonce=kw.get("nonce"),
    )


async def test_a_good_token_gives_its_claims_and_a_bad_one_says_why_not(
    clock: FixedClock, aggregator: FakeAggregator
) -> None:
    oidc = Oidc(clock)
    try:
        claims = await _verify(oidc, aggregator, aggregator.access_token())
        assert claims["aud"] == AUDIENCE
        with pytest.raises(TokenError, match="expired"):
            await _verify(oidc, aggregator, aggregator.access_token(lifetime=-120))
        with pytest.raises(TokenError, match="not a signed JWT"):
            await _verify(oidc, aggregator, "a.b")
        with pytest.raises(TokenError, match="missing_claim"):  # no nonce in it
            await _verify(oidc, aggregator, aggregator.access_token(), nonce="expected")
        with pytest.raises(ProviderError, match="404"):
            await _verify(oidc, aggregator, aggregator.access_token(), jwks_url=aggregator.url + "/nowhere")
    finally:
        await oidc.close()


def test_our_client_assertion_is_what_rfc_7523_asks(clock: FixedClock) -> None:
    key = new_key(parameters={"kid": "ours"})
    loaded = load_private_key(key.as_pem(private=True).decode(), "ours")
    assertion = client_assertion(key=loaded, client_id="hub", audience="https://login.test/token", now=clock.now())
    token = jwt.decode(assertion, key, algorithms=["RS512"])
    assert token.header["kid"] == "ours" and token.header["alg"] == "RS512"
    claims = token.claims
    assert claims["iss"] == claims["sub"] == "hub" and claims["aud"] == "https://login.test/token"
    assert claims["exp"] - claims["iat"] == 60 and claims["jti"]
