"""create_app(settings) -> Starlette. Nothing is built at import time."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from hub.clock import Clock
from hub.db import open_database
from hub.db.dialect import is_transient
from hub.db.sqlite import warn_if_unsafe
from hub.jobs.worker import make_notifier, work
from hub.notify import Notifier
from hub.notify.dev import DevNotifier
from hub.settings import Settings, SettingsError
from hub.web import notify as callbacks
from hub.web.api import handlers as api
from hub.web.common import (
    NHSUK_DIST,
    STATIC,
    Assets,
    Hub,
    Policies,
    SignInRequired,
    delete_cookie,
    make_templates,
    render,
    signed_in_patient,
)
from hub.web.compression import LEVEL, MINIMUM_SIZE, PageGZipMiddleware
from hub.web.fhir.guard import FhirError, RateLimit, outcome_response
from hub.web.fhir.routes import fhir_routes
from hub.web.oidc import Oidc, load_private_key
from hub.web.patient import account, appointments, dev, info, nhs_login, offers, signin, sites, slots
from hub.web.security import SecurityMiddleware
from hub.web.staff.common import StaffSignInRequired, staff_page, staff_sign_in_required
from hub.web.staff.routes import staff_routes
from hub.web.static import CachedStatic, FontlessStylesheet

log = logging.getLogger(__name__)
RETRY_AFTER = "5"  # seconds: the worker's first wait for a database out of reach is about as long
ASSET_MOUNTS = {"static": STATIC, "assets": NHSUK_DIST / "assets", "nhsuk": NHSUK_DIST}


class RecordId(Convertor[int]):
    """A database id: at most 18 digits, so it always fits SQLite's and PostgreSQL's 64-bit integers."""

    regex = "[0-9]{1,18}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


def routes(settings: Settings) -> list[BaseRoute]:
    register_url_convertor("record_id", RecordId())
    table: list[BaseRoute] = [
        Route("/", signin.start),
        Route("/p/{token}", signin.patient_link),
        Route("/sign-in", signin.submit_details, methods=["POST"]),
        Route("/sign-in/code", signin.code_page),
        Route("/sign-in/code", signin.submit_code, methods=["POST"]),
        Route("/sign-in/resend", signin.resend_code, methods=["POST"]),
        Route("/sign-in/not-received", signin.code_not_received_page),
        Route("/sign-in/verification-code", signin.verification_code_page),
        Route("/sign-in/verification-code", signin.submit_verification_code, methods=["POST"]),
        Route("/sign-out", signin.sign_out_page),
        Route("/sign-out", signin.sign_out, methods=["POST"]),
        Route("/appointments", appointments.appointment_list),
        Route("/appointments.ics", appointments.all_calendar),
        Route("/appointments/{id:record_id}", appointments.appointment_detail),
        Route("/appointments/{id:record_id}.ics", appointments.appointment_calendar),
        Route("/appointments/{id:record_id}/confirm", appointments.confirm, methods=["POST"]),
        Route("/appointments/{id:record_id}/rebook", appointments.rebook_page),
        Route("/appointments/{id:record_id}/rebook", appointments.rebook, methods=["POST"]),
        Route("/appointments/{id:record_id}/change-time", slots.change_time_page),
        Route("/appointments/{id:record_id}/change-time", slots.choose_time, methods=["POST"]),
        Route("/appointments/{id:record_id}/change-time/{slot:record_id}", slots.check_page),
        Route("/appointments/{id:record_id}/change-time/{slot:record_id}", slots.confirm_time, methods=["POST"]),
        Route("/appointments/{id:record_id}/earlier", offers.earlier, methods=["POST"]),
        Route("/offers/{id:record_id}", offers.offer_page),
        Route("/offers/{id:record_id}", offers.answer_offer, methods=["POST"]),
        Route("/appointments/{id:record_id}/cancel", appointments.cancel_page),
        Route("/appointments/{id:record_id}/cancel", appointments.cancel, methods=["POST"]),
        Route("/letters", account.letter_list),
        Route("/messages", account.message_list),
        Route("/letters/{id:record_id}", account.letter_view),
        Route("/preferences", account.preferences_page),
        Route("/preferences", account.save_preferences, methods=["POST"]),
        Route("/sites/{code}", sites.site_page),
        Route("/sites/{code}/map", sites.site_map),
        Route("/accessibility", info.accessibility),
        Route("/privacy", info.privacy),
        Route("/healthz", _health),
        Route("/api/v1/openapi.json", api.openapi),
        Route("/api/v1/sites/{site_code}", api.put_site, methods=["PUT"]),
        Route("/api/v1/sites/{site_code}/map", api.put_site_map_file, methods=["PUT"]),
        Route("/api/v1/patients/{patient_ref}", api.put_patient, methods=["PUT"]),
        Route("/api/v1/appointments/{appointment_ref}", api.put_appointment, methods=["PUT"]),
        Route("/api/v1/letters/{letter_ref}", api.put_letter, methods=["PUT"]),
        Route("/api/v1/slots/{slot_ref}", api.put_slot, methods=["PUT"]),
        Route("/api/v1/slots/{slot_ref}", api.delete_slot, methods=["DELETE"]),
        Route("/api/v1/events", api.get_events),
        Route("/notify/callbacks/status", callbacks.status, methods=["POST"]),
        Route("/notify/callbacks/inbound", callbacks.inbound, methods=["POST"]),
        *staff_routes(),
    ]
    if settings.nhs_app.enabled or settings.nhs_login.enabled:
        # The NHS App's deep links (they appear in the Wayfinder API's answers), and NHS login.
        table += [
            Route("/nhs-app/appointments/{id:record_id}", nhs_login.deep_link_appointment),
            Route("/nhs-app/letters/{id:record_id}", nhs_login.deep_link_letter),
        ]
    if settings.nhs_login.enabled:
        table += [
            Route("/nhs-login/start", nhs_login.start),
            Route("/nhs-login/callback", nhs_login.callback),
            Route("/nhs-login/keep-alive", nhs_login.keep_alive),
            Route("/nhs-login/signed-out", nhs_login.signed_out),
        ]
    if settings.nhs_app.enabled:
        table += fhir_routes()
    if settings.demo:
        table.append(Route("/dev/outbox", dev.dev_outbox))
    table += [
        Route("/favicon.ico", _favicon),
        Route("/nhsuk/nhsuk-frontend.min.css", FontlessStylesheet(NHSUK_DIST / "nhsuk-frontend.min.css")),
    ]
    table += [
        Mount(f"/{prefix}", app=CachedStatic(directory=path), name=prefix) for prefix, path in ASSET_MOUNTS.items()
    ]
    return table


async def _favicon(request: Request) -> Response:
    # Browsers ask for /favicon.ico whatever the page links to.
    favicon = NHSUK_DIST / "assets" / "images" / "favicon.ico"
    return FileResponse(favicon, headers={"cache-control": "public, max-age=86400"})


async def _health(request: Request) -> Response:
    await request.app.state.hub.db.fetch_one("SELECT 1 AS ok")
    return PlainTextResponse("ok")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return api.error_response(exc.status_code, [{"field": "path", "message": str(exc.detail)}])
    if request.url.path.startswith("/fhir/"):
        return outcome_response(FhirError(exc.status_code, "not-found", str(exc.detail)))
    if exc.status_code == 403 and exc.detail == "csrf":
        return render(request, "views/errors/form_expired.html", status=403)
    if request.url.path.startswith("/staff/") and exc.status_code in (403, 404):
        # The console's own pages, with its header: a patient's (and their appointments' link) mean nothing here.
        template = "forbidden.html" if exc.status_code == 403 else "not_found.html"
        return staff_page(request, template, status=exc.status_code)
    if exc.status_code == 404:
        await signed_in_patient(request)
        return render(request, "views/errors/not_found.html", status=404)
    if exc.status_code == 405:
        return render(request, "views/errors/not_found.html", status=405)
    return render(request, "views/errors/bad_request.html", {"status": exc.status_code}, status=exc.status_code)


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    if exc.nhs_login:  # WF-NFR-18: the page says to close the window or tab
        response = RedirectResponse("/nhs-login/signed-out", status_code=303)
        delete_cookie(response, request, "hub_session")
        return response
    response = RedirectResponse("/?signed_out=timeout" if exc.timed_out else "/", status_code=303)
    if exc.timed_out:
        delete_cookie(response, request, "hub_session")  # the next tab is simply signed out
    return response


async def _server_error(request: Request, exc: Exception) -> Response:
    # Log the kind of failure and where, never the request's data.
    # The handler's name, not the path: paths carry patients' link tokens.
    endpoint = getattr(request.scope.get("endpoint"), "__name__", "no route")
    if is_transient(exc):
        # The database out of reach (a restart, a fail-over, dropped connections): nothing was half done (the
        # transaction rolled back), so the caller may simply try again.
        log.warning("database unavailable (%s) in %s (%s)", type(exc).__name__, endpoint, request.method)
        return _unavailable(request)
    log.error("unhandled %s in %s (%s)", type(exc).__name__, endpoint, request.method)
    if request.url.path.startswith("/api/"):
        return api.error_response(500, [{"field": "", "message": "internal error"}])
    if request.url.path.startswith("/fhir/"):
        return outcome_response(FhirError(500, "exception", "Internal error"))
    try:
        return render(request, "views/errors/server_error.html", status=500)
    except Exception:
        return PlainTextResponse("Sorry, there is a problem with the service. Try again later.", status_code=500)


def _unavailable(request: Request) -> Response:
    response: Response
    if request.url.path.startswith("/api/"):
        response = api.error_response(503, [{"field": "", "message": "service unavailable; try again"}])
    elif request.url.path.startswith("/fhir/"):
        response = outcome_response(FhirError(503, "transient", "Service Unavailable: try again"))
    else:
        try:
            response = render(request, "views/errors/unavailable.html", status=503)
        except Exception:
            text = "Sorry, the service is unavailable. Try again in a few minutes."
            response = PlainTextResponse(text, status_code=503)
    response.headers["Retry-After"] = RETRY_AFTER
    return response


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    notifier: Notifier | None = None,
    use_dev_outbox: bool = False,
    run_worker: bool = False,
) -> Starlette:
    """`use_dev_outbox` (tests) sends through the dev outbox without the rest of demo mode; `run_worker` runs
    the worker's loop inside this process (the demo's one command)."""
    clock = clock or Clock()
    # Read once, here: a private key that will not load stops start-up rather than the first sign-in.
    nhs_login_key = (
        load_private_key(settings.nhs_login.private_key, settings.nhs_login.key_id)
        if settings.nhs_login.enabled
        else None
    )
    use_dev_outbox = use_dev_outbox or (settings.demo and not settings.notify.api_key)
    if notifier is None and not use_dev_outbox and not settings.notify.api_key:
        raise SettingsError("HUB_NOTIFY_API_KEY is required outside demo mode (security codes go through Notify)")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.database_url.startswith("sqlite:"):
            warn_if_unsafe()
        db = await open_database(settings)
        chosen: Notifier = notifier or (
            DevNotifier(db, clock) if use_dev_outbox else make_notifier(settings, db, clock)
        )
        assets = Assets(ASSET_MOUNTS)
        oidc = Oidc(clock) if settings.nhs_app.enabled or settings.nhs_login.enabled else None
        app.state.hub = Hub(
            settings,
            clock,
            db,
            chosen,
            make_templates(assets, settings),
            assets,
            Policies.from_settings(settings),
            oidc=oidc,
            nhs_login_key=nhs_login_key,
        )
        stop = asyncio.Event()
        worker = asyncio.create_task(work(db, chosen, settings, clock, stop)) if run_worker else None
        log.info("Hub ready in process %d", os.getpid())  # whichever server runs it; tests wait for this line
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                await worker
            if oidc is not None:
                await oidc.close()
            await db.close()

    app = Starlette(
        routes=routes(settings),
        middleware=[
            # Redirects and links are built from the request's Host: a request naming any other host is refused.
            Middleware(TrustedHostMiddleware, allowed_hosts=settings.hosts, www_redirect=False),
            Middleware(SecurityMiddleware, https=settings.https),
            Middleware(PageGZipMiddleware, minimum_size=MINIMUM_SIZE, compresslevel=LEVEL),
        ],
        exception_handlers={
            api.ApiError: api.api_error,
            HTTPException: _http_error,
            SignInRequired: _sign_in_required,
            StaffSignInRequired: staff_sign_in_required,
            500: _server_error,
        },
        lifespan=lifespan,
    )
    app.state.wayfinder_rate = RateLimit(settings.nhs_app.rate_per_second)
    return app
