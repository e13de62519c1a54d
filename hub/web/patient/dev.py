"""/dev/outbox: what the dev notifier 'sent', so a demo user can read their code. Demo mode only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from hub.notify.dev import list_dev_messages
from hub.web.common import hub_of, render


async def dev_outbox(request: Request) -> Response:
    messages = await list_dev_messages(hub_of(request).db)
    return render(request, "views/dev/outbox.html", {"messages": messages})
