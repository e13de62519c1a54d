"""GET /fhir/r4/DocumentReference?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|NNNNNNNNNN"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from hub.rules.fhir import document_resource, searchset, visible_letters
from hub.store.nhs_app import list_wayfinder_letters
from hub.web.common import hub_of
from hub.web.fhir.auth import authorise
from hub.web.fhir.guard import fhir_response


async def get_documents(request: Request) -> Response:
    """The patient's letters, newest first, less those about hidden clinics and specialties; titles never go."""
    hub = hub_of(request)
    asked = await authorise(request)
    rows = visible_letters(await list_wayfinder_letters(hub.db, asked.patient_ids), hub.policies.hidden)
    resources = [document_resource(r, nhs_number=asked.nhs_number, portal=asked.portal) for r in rows]
    return fhir_response(searchset(resources, asked.portal))
