"""axe-core (WCAG 2.2 AA rules, plus `region` and `heading-order`) on a page, and which route each check is of.

Every check names the route it checks (the route's path as the app's route table spells it), and the page's URL
must match that route, so the name cannot lie. tests/browser/test_axe_coverage.py compares the routes the browser
tests name with the app's GET routes: a new HTML page without an axe check fails there.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page, expect
from starlette.routing import BaseRoute, Route, compile_path

from hub.app import routes
from hub.settings import ROOT, Settings, load_settings

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_RUN = """async () => {
  const results = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]}
  });
  // Best practice beyond WCAG that the issue holds us to: every part of the page in a landmark, headings in order.
  const practice = await axe.run(document, {runOnly: {type: "rule", values: ["region", "heading-order"]}});
  return results.violations.concat(practice.violations).map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary}))
  }));
}"""
PHONE: dict[str, Any] = {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True}
# 320 px: a 1280 px screen at 400% zoom (WCAG 1.4.10 reflow).
NARROW: dict[str, Any] = {"viewport": {"width": 320, "height": 640}, "is_mobile": True, "has_touch": True}
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 900}}  # the console's


@functools.cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def every_route_settings() -> Settings:
    """Demo settings with NHS login and the NHS App on, so the route table holds every route there can be."""
    settings = load_settings(environ={}, overrides={"demo": True})
    return dataclasses.replace(
        settings,
        nhs_login=dataclasses.replace(settings.nhs_login, enabled=True),
        nhs_app=dataclasses.replace(settings.nhs_app, enabled=True),
    )


def app_routes() -> list[BaseRoute]:
    return routes(every_route_settings())  # also registers the record_id convertor compile_path needs


def get_paths() -> set[str]:
    """The app's GET routes' paths."""
    return {r.path for r in app_routes() if isinstance(r, Route) and (r.methods is None or "GET" in r.methods)}


_PATHS = {r.path for r in app_routes() if isinstance(r, Route)}  # a form's answer shows at its POST route


def assert_at(page: Page, route: str) -> None:
    """The page shown is the named route's (a redirect elsewhere cannot pass for it)."""
    assert route in _PATHS, f"{route} is not a route of the app"
    pattern = compile_path(route)[0]
    path = urlsplit(page.url).path
    assert pattern.match(path), f"{page.url} is not a page of {route}"


def assert_accessible(page: Page, route: str, *, heading: str | None = None) -> None:
    """axe finds nothing on the page, which is the named route's, with this h1 when given."""
    if heading is not None:
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
    if route:  # "" only for a path no route has: the not-found page
        assert_at(page, route)
    page.evaluate(_axe_source())  # evaluate, not add_script_tag: the CSP refuses inline scripts
    violations: list[dict[str, Any]] = page.evaluate(AXE_RUN)
    report = [
        f"{v['id']} ({v['impact']}): {v['help']}\n"
        + "\n".join(f"    {n['target']}: {n['summary']}" for n in v["nodes"])
        for v in violations
    ]
    assert not violations, f"{page.url}\n" + "\n".join(report)
