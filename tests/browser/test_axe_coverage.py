"""Every GET route that answers with an HTML page has an axe check in the browser tests (issue 16: no A/AA
violations, no `region` or `heading-order` findings, on every patient and console page). Not a browser test: it
compares the routes the checks name with the app's route table, so a new page without a check fails here at once.
"""

from __future__ import annotations

from tests.browser import test_accessibility, test_console, test_nhs_app, test_slots
from tests.browser.axe import get_paths

# GET routes that answer with something other than an HTML page, so axe has nothing to check. Static files
# (/static, /assets, /nhsuk) are mounts, not routes, and are not listed.
NOT_HTML = {
    "/appointments.ics": "a calendar file",
    "/appointments/{id:record_id}.ics": "a calendar file",
    "/letters/{id:record_id}": "the letter's PDF",
    "/sites/{code}/map": "the site map's image file, to download",
    "/healthz": "plain text, for load balancers",
    "/favicon.ico": "an icon",
    "/nhsuk/nhsuk-frontend.min.css": "a stylesheet",
    "/api/v1/openapi.json": "JSON for integrators",
    "/api/v1/events": "JSON for integrators",
    "/fhir/r4/Appointment": "FHIR JSON for the NHS App",
    "/fhir/r4/DocumentReference": "FHIR JSON for the NHS App",
    "/staff/queue.csv": "the queue as CSV",
    "/nhs-login/start": "a redirect to NHS login",
    "/nhs-login/keep-alive": "204 No Content, for the NHS App's keep-alive",
    "/nhs-app/appointments/{id:record_id}": "a redirect through NHS login to the appointment's page",
    "/nhs-app/letters/{id:record_id}": "a redirect through NHS login to the letter",
}


def checked_routes() -> set[str]:
    checks = [
        *test_accessibility.ANONYMOUS.values(),
        *test_accessibility.SIGNED_IN.values(),
        *test_accessibility.DAVID.values(),
    ]
    return (
        {check.route for check in checks if check.route}
        | test_console.CHECKED_ROUTES
        | test_slots.CHECKED_ROUTES
        | test_nhs_app.CHECKED_ROUTES
    )


def test_every_html_page_has_an_axe_check() -> None:
    missing = get_paths() - set(NOT_HTML) - checked_routes()
    assert not missing, f"GET routes with no axe check in tests/browser (add one, or to NOT_HTML): {sorted(missing)}"


def test_the_exclusions_are_routes_with_no_check() -> None:
    assert set(NOT_HTML) <= get_paths(), sorted(set(NOT_HTML) - get_paths())
    assert not set(NOT_HTML) & checked_routes()
