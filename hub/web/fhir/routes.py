"""The Wayfinder API's route table: only served when [nhs_app] enabled is on."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from hub.web.fhir.appointments import get_appointments
from hub.web.fhir.documents import get_documents
from hub.web.fhir.guard import guarded

PREFIX = "/fhir/r4"


def fhir_routes() -> list[BaseRoute]:
    return [
        Route(f"{PREFIX}/Appointment", guarded("Appointment", get_appointments)),
        Route(f"{PREFIX}/DocumentReference", guarded("DocumentReference", get_documents)),
    ]
