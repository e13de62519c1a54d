"""The appointment the lifecycle's rule tests start from: booked in cardiology at site 1, nothing booked beside it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub.rules.appointments import Facts
from hub.vocabulary import HospitalStatus


def booked(starts_at: datetime, **changes: Any) -> Facts:
    values: dict[str, Any] = {
        "starts_at": starts_at,
        "site_id": 1,
        "clinic": "Cardiology",
        "specialty": "Cardiology",
        "clinician": "Dr A",
        "duration_minutes": 30,
        "mode": "in_person",
        "transport_booked": False,
        "interpreter_booked": False,
        "status": HospitalStatus.BOOKED,
    }
    return Facts(**{**values, **changes})
