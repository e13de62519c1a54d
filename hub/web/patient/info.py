"""Pages about the service itself: the accessibility statement and the privacy notice. Public."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from hub.store.sites import list_organisation_names
from hub.web.common import hub_of, render, signed_in_patient


async def accessibility(request: Request) -> Response:
    await signed_in_patient(request)
    return render(request, "views/info/accessibility.html")


async def privacy(request: Request) -> Response:
    await signed_in_patient(request)
    trusts = await list_organisation_names(hub_of(request).db)
    return render(request, "views/info/privacy.html", {"trusts": trusts})
