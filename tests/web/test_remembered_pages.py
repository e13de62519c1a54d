"""Pages remembered by their whole context: the same context gives the remembered page, any difference in it a new
rendering; few are kept, none for long; a context that cannot be a key is rendered every time. And the list of
appointments, the page remembered, reads nothing but its context."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, meta, nodes
from jinja2.filters import FILTERS as DEFAULT_FILTERS
from markupsafe import Markup

from hub.clock import LONDON, format_when
from hub.settings import load_settings
from hub.web.common import Assets, make_templates
from hub.web.remembered_pages import RememberedPages

GZIP: dict[str, Any] = {"headers": [(b"accept-encoding", b"gzip, br")]}
PLAIN: dict[str, Any] = {"headers": []}
TEMPLATE = Environment(autoescape=True).from_string(
    "{% for a in rows %}<p>{{ a.clinic }} {{ a.starts_at }} {{ a.seen }}</p>{% endfor %}{{ name }}" + " " * 600
)
WHEN = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


class Ticks:
    """A clock for max_age: seconds, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def context(**changes: object) -> dict[str, object]:
    row = {"clinic": "Cardiology", "starts_at": WHEN, "seen": 0}
    return {"rows": [row | changes], "name": "Margaret"}


def html(pages: RememberedPages, ctx: dict[str, object], scope: dict[str, Any] = PLAIN) -> str:
    return bytes(pages.response(scope, TEMPLATE, ctx).body).decode()


def test_the_same_context_is_answered_from_memory_and_any_change_is_rendered() -> None:
    pages = RememberedPages()
    first = html(pages, context())
    assert html(pages, context()) == first and pages.hits == 1
    for changed in (context(clinic="Renal"), context(starts_at=WHEN.replace(minute=45)), context(seen=1)):
        assert html(pages, changed) != first
    assert html(pages, {**context(), "name": "Peter"}).strip().endswith("Peter")
    assert pages.hits == 1 and len(pages) == 5


def test_gzipped_once_for_a_browser_that_takes_it() -> None:
    pages = RememberedPages()
    zipped = pages.response(GZIP, TEMPLATE, context())
    assert dict(zipped.headers)["content-encoding"] == "gzip" and dict(zipped.headers)["vary"] == "Accept-Encoding"
    assert gzip.decompress(zipped.body).decode() == html(pages, context())
    assert pages.response(GZIP, TEMPLATE, context()).body is zipped.body  # not compressed again


def test_few_are_kept_least_recently_used_out_first() -> None:
    pages = RememberedPages(size=2)
    html(pages, context(seen=1))
    html(pages, context(seen=2))
    html(pages, context(seen=1))  # used again: now the most recent
    html(pages, context(seen=3))  # the second goes
    assert len(pages) == 2
    html(pages, context(seen=1))
    html(pages, context(seen=2))
    assert pages.hits == 2  # the first twice; the second was rendered again


def test_none_is_kept_once_nobody_has_asked_for_it_in_max_age() -> None:
    ticks = Ticks()
    pages = RememberedPages(max_age=300, clock=ticks)
    html(pages, context(seen=1))
    ticks.now = 200
    html(pages, context(seen=2))
    ticks.now = 301  # the first was last asked for 301 s ago: gone, the second kept
    html(pages, context(seen=3))
    assert len(pages) == 2
    html(pages, context(seen=2))
    assert pages.hits == 1


def test_a_context_that_cannot_be_a_key_is_rendered_every_time() -> None:
    pages = RememberedPages()
    unwritable = {**context(), "name": (name for name in ["Margaret"])}  # a generator: pickle cannot write it
    assert "generator object" in html(pages, unwritable)
    assert len(pages) == 0 and pages.hits == 0


def test_values_equal_but_shown_differently_are_different_keys() -> None:
    """True == 1 == 1.0, '<b>' == Markup('<b>'), and in London's zone the two 1:30ams of the night the clocks go
    back compare equal (fold): each is shown differently, so each is a page of its own."""
    env = Environment(autoescape=True)
    env.filters["london_when"] = format_when
    shown = env.from_string("{{ value }}|{{ when | london_when }}" + " " * 600)
    first = datetime(2026, 10, 25, 1, 30, tzinfo=LONDON)
    pages = RememberedPages()
    seen = [
        bytes(pages.response(PLAIN, shown, {"value": value, "when": when}).body).decode().strip()
        for value, when in ((1, first), (True, first), (1.0, first), ("<b>", first), (Markup("<b>"), first))
        + ((1, first.replace(fold=1)),)
    ]
    assert seen == [
        "1|Sunday 25 October 2026 at 1:30am BST",
        "True|Sunday 25 October 2026 at 1:30am BST",
        "1.0|Sunday 25 October 2026 at 1:30am BST",
        "&lt;b&gt;|Sunday 25 October 2026 at 1:30am BST",
        "<b>|Sunday 25 October 2026 at 1:30am BST",
        "1|Sunday 25 October 2026 at 1:30am GMT",
    ]
    assert pages.hits == 0


def test_pages_are_kept_gzipped_within_a_total_size() -> None:
    big = Environment(autoescape=True).from_string("{% for n in range(count) %}<p>{{ n }} {{ name }}</p>{% endfor %}")
    one = len(gzip.compress(big.render(count=2000, name="Margaret").encode()))
    pages = RememberedPages(max_bytes=int(one * 2.5))  # room for two of these pages, kept gzipped; not for three
    for count in (2000, 2001, 2002):
        pages.response(GZIP, big, {"count": count, "name": "Margaret"})
    assert len(pages) == 2  # the first went, to keep within the total
    pages.response(GZIP, big, {"count": 2002, "name": "Margaret"})
    pages.response(GZIP, big, {"count": 2000, "name": "Margaret"})
    assert pages.hits == 1


def test_the_key_holds_nothing_readable() -> None:
    pages = RememberedPages()
    html(pages, {**context(), "name": "Margaret", "verification_code": "ZZ9XQ7"})
    [key] = pages._pages
    assert isinstance(key, bytes) and len(key) == 32  # a digest


def _templates_under(env: Environment, name: str, seen: set[str]) -> set[str]:
    """The template and every template it extends, includes or imports, by name."""
    if name in seen:
        return seen
    seen.add(name)
    source = env.loader.get_source(env, name)[0]  # type: ignore[union-attr]
    for found in meta.find_referenced_templates(env.parse(source)):
        if found:
            _templates_under(env, found, seen)
    return seen


def test_the_list_of_appointments_reads_only_its_context_and_the_settings() -> None:
    """A remembered page must read nothing that could differ for one context: not the request (render() does not
    give it to a remembered page), not the clock, not a random number. Each of its templates reads from outside
    itself only its context, what the page sets for the base template, and the globals (settings and components,
    fixed for the process); and it filters only with pure filters."""
    env = make_templates(Assets({}), load_settings(environ={"HUB_DEMO": "true"}))
    given = {"csrf_token", "patient", "signed_in", "idle_warning", "groups", "letters", "offers", "done"}
    given |= {"nav", "error", "errors"}  # set by the page for the base template; other pages' forms (never here)
    pure = set(DEFAULT_FILTERS) - {"random"} | {"asset", "london_when", "london_date", "london_time"}
    names = _templates_under(env, "views/patient/appointments.html", set())
    assert "base.html" in names and "components/idle_warning.html" in names
    for name in names:
        tree = env.parse(env.loader.get_source(env, name)[0])  # type: ignore[union-attr]
        macros = {macro.name for macro in tree.find_all(nodes.Macro)}
        outside = meta.find_undeclared_variables(tree) - given - macros  # (the globals are not counted)
        if name.startswith("nhsuk/"):  # the frontend's macros, which read their parameters under their own names
            outside &= {"request"}
        assert not outside, f"{name} reads {outside}"
        filters = {used.name for used in tree.find_all(nodes.Filter)}
        assert filters <= pure, f"{name} filters with {filters - pure}"
        # Jinja's one global that differs from render to render (meta does not count globals).
        assert "lipsum" not in {used.name for used in tree.find_all(nodes.Name)}, f"{name} reads lipsum"
