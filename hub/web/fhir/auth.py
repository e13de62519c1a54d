"""Who may ask, and for whom (WF-NFR-14). The Aggregator: an OAuth 2.0 client-credentials access token, checked
against its issuer's published keys, issuer, audience, expiry and scope. The patient: the NHS login ID token the
NHS App passes as NHSD-ID-Token, verified to P9, whose NHS number must be the one asked for and whose date of birth
must be the one we hold, before anything is returned."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from hub.clock import london
from hub.rules.fhir import Portal, is_under_16, read_patient_identifier
from hub.rules.nhs_login import ID_TOKEN_ALGORITHMS, Identity, identity
from hub.store.nhs_app import find_patients_by_nhs_number
from hub.web.common import hub_of
from hub.web.fhir.guard import FhirError
from hub.web.oidc import Oidc, ProviderError, TokenError

ACCESS_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS512", "ES256", "ES384"]


@dataclass(frozen=True)
class Asked:
    """A request we may answer: the NHS number, the patient's records that may be shown, and where links go."""

    nhs_number: str
    patient_ids: list[int]
    portal: Portal


def _oidc(request: Request) -> Oidc:
    oidc = hub_of(request).oidc
    assert oidc is not None  # made at start-up whenever the Wayfinder API is on
    return oidc


async def _check_access_token(request: Request) -> None:
    settings = hub_of(request).settings.nhs_app
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    denied = FhirError(401, "forbidden", "Missing or invalid OAuth 2.0 bearer token in request", access_denied=True)
    if scheme.lower() != "bearer" or not token.strip():
        raise denied
    try:
        claims = await _oidc(request).verify(
            token.strip(),
            jwks_url=settings.token_jwks_url,
            issuer=settings.token_issuer,
            audience=settings.token_audience,
            algorithms=ACCESS_TOKEN_ALGORITHMS,
        )
    except TokenError as exc:
        raise denied from exc
    except ProviderError as exc:
        raise FhirError(503, "transient", "The access token's issuer could not be reached; try again") from exc
    if settings.token_scope:
        granted = claims.get("scope", claims.get("scp", ""))
        scopes = granted.split() if isinstance(granted, str) else list(granted) if isinstance(granted, list) else []
        if settings.token_scope not in scopes:
            raise FhirError(401, "forbidden", "The access token lacks the scope this API needs", access_denied=True)


async def _patient_identity(request: Request) -> Identity:
    hub = hub_of(request)
    token = request.headers.get("nhsd-id-token", "").strip()
    if not token:
        raise FhirError(401, "processing", '"NHSD-ID-Token" header is required')
    issuer = hub.settings.nhs_login.issuer
    try:
        provider = await _oidc(request).discovery(issuer)
        claims = await _oidc(request).verify(
            token,
            jwks_url=provider["jwks_uri"],
            issuer=provider.get("issuer", issuer),
            audience=hub.settings.nhs_app.id_token_audience,
            algorithms=ID_TOKEN_ALGORITHMS,
        )
    except TokenError as exc:
        raise FhirError(401, "processing", f"The NHSD-ID-Token is not valid: {exc}") from exc
    except ProviderError as exc:
        raise FhirError(503, "transient", "NHS login could not be reached to check the NHSD-ID-Token") from exc
    found = identity(claims)
    if found == "not_p9":
        raise FhirError(401, "processing", "The NHS login user is not verified to P9")
    if isinstance(found, str):
        raise FhirError(401, "processing", "The NHSD-ID-Token has no NHS number or date of birth")
    return found


async def authorise(request: Request) -> Asked:
    """The checks, in the standard's order of its 4XX table; a patient with nothing to show is not an error."""
    hub = hub_of(request)
    await _check_access_token(request)
    nhs_number, problem = read_patient_identifier(request.query_params.get("patient:identifier"))
    if nhs_number is None:
        raise FhirError(400, "exception", problem)
    person = await _patient_identity(request)
    if person.nhs_number != nhs_number:
        raise FhirError(401, "processing", '"patient:identifier" does not match the NHS login token\'s NHS number')
    if is_under_16(person.born, london(hub.clock.now()).date()):
        raise FhirError(403, "forbidden", "UNDER_16_DENIED")
    records = await find_patients_by_nhs_number(hub.db, nhs_number)
    # The demographic cross-check: our records of this NHS number must agree on the date of birth.
    matching = [r for r in records if r["date_of_birth"] == person.born.isoformat()]
    if records and not matching:
        raise FhirError(401, "processing", "The NHS login date of birth does not match the hospital's record")
    portal = Portal(hub.settings.base_url, hub.settings.nhs_app.ext_system_name, request.state.correlation_id)
    return Asked(nhs_number, [int(r["id"]) for r in matching if not r["nhs_app_excluded"]], portal)
