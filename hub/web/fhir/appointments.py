"""GET /fhir/r4/Appointment?patient:identifier=https://fhir.nhs.uk/Id/nhs-number|NNNNNNNNNN"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from hub.rules.fhir import appointment_resource, searchset, visible_appointments
from hub.store.nhs_app import list_wayfinder_appointments
from hub.web.common import hub_of
from hub.web.fhir.auth import authorise
from hub.web.fhir.guard import fhir_response


async def get_appointments(request: Request) -> Response:
    """Every appointment, past, future and cancelled, less hidden clinics and specialties (the standard's rules)."""
    hub = hub_of(request)
    asked = await authorise(request)
    rows = visible_appointments(await list_wayfinder_appointments(hub.db, asked.patient_ids), hub.policies.hidden)
    resources = [appointment_resource(r, nhs_number=asked.nhs_number, portal=asked.portal) for r in rows]
    return fhir_response(searchset(resources, asked.portal))
