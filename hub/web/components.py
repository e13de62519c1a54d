"""NHS.UK frontend components, each rendered once per distinct set of parameters.

The nhsuk-frontend-jinja macros are most of a page's rendering time (the header alone was half of it). Their
output depends on their parameters only, so the components that carry no personal data (tags, buttons, back
links, the skip link and the footer) are remembered by their parameters, and the header with the patient's name
left as a slot filled in after. Form fields (`input`, `dateInput`) are remembered only while blank, with no value
and no error: a sign-in page as first shown (its labels and hints are the templates' own words), never one sent
back with what somebody typed. The caches are small and bounded; nothing personal is kept in them.

A summary list (an appointment's details: personal, so never remembered) is written out here when its rows are
plain keys and values, the same markup as the macro's in a tenth of the time; anything more goes to the macro.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from jinja2 import Environment
from markupsafe import Markup, escape

# Stands for the slot's text inside a remembered rendering: a private-use character nobody types.
SLOT = "\ue000"
MEMOISED = {
    "header": "nhsuk/components/header/macro.jinja",
    "footer": "nhsuk/components/footer/macro.jinja",
    "skipLink": "nhsuk/components/skip-link/macro.jinja",
    "tag": "nhsuk/components/tag/macro.jinja",
    "button": "nhsuk/components/button/macro.jinja",
    "backLink": "nhsuk/components/back-link/macro.jinja",
}


def _blank_field(params: dict[str, Any]) -> bool:
    """A form field (or a date's fields) with nothing typed in and no error to show."""
    items = params.get("items") or [params]
    return not params.get("errorMessage") and not any(item.get("value") for item in items)


# Components remembered only when a call's parameters pass the check.
WHEN_BLANK = {
    "input": "nhsuk/components/input/macro.jinja",
    "dateInput": "nhsuk/components/date-input/macro.jinja",
}


class Remembered:
    """A macro called as before, `component(params)`, or `component(params, slot=text)` with SLOT in params.
    `only`: remember a call only when its parameters pass this check (others are rendered each time)."""

    def __init__(self, macro: Any, size: int = 256, only: Callable[[dict[str, Any]], bool] | None = None) -> None:
        self._macro = macro
        self._size = size
        self._only = only
        self._cache: OrderedDict[str, str] = OrderedDict()

    def __call__(self, params: dict[str, Any] | None = None, slot: str = "") -> Markup:
        if self._only is not None and not self._only(params or {}):
            return Markup(self._macro(params or {}))
        # repr tells Markup from plain text (Markup('<b>') against '<b>'); the same call in a template gives its
        # keys in the same order, so the same parameters find the same entry.
        key = repr(params)
        html = self._cache.get(key)
        if html is None:
            html = str(self._macro(params or {}))
            self._cache[key] = html
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return Markup(html.replace(SLOT, str(escape(slot)))) if SLOT in html else Markup(html)


_CELL_PARTS = frozenset({"text", "html"})


def _plain_rows(params: dict[str, Any]) -> bool:
    """Only `rows`, each only a `key` and a `value`, each only `text` or `html`."""
    if params.keys() != {"rows"} or not isinstance(params["rows"], list):
        return False
    for row in params["rows"]:
        if not isinstance(row, dict) or row.keys() != {"key", "value"}:
            return False
        for part in row.values():
            if not isinstance(part, dict) or not part.keys() <= _CELL_PARTS:
                return False
    return True


def _cell(part: dict[str, Any]) -> str:
    # As the macro: html as given (it is the template's own markup), else the text escaped; each trimmed.
    if part.get("html"):
        return str(part["html"]).strip()
    if part.get("text"):
        text = part["text"] if isinstance(part["text"], str) else str(part["text"])
        return str(escape(text.strip()))  # Markup (a str) stays as it is, as in the macro
    return ""


class SummaryList:
    """The summary list macro's markup for plain rows, written out directly; the macro itself for the rest."""

    def __init__(self, macro: Any) -> None:
        self._macro = macro

    def __call__(self, params: dict[str, Any]) -> Markup:
        if not _plain_rows(params):
            return Markup(self._macro(params))
        rows = "".join(
            '  <div class="nhsuk-summary-list__row">\n'
            f'    <dt class="nhsuk-summary-list__key">\n      {_cell(row["key"])}\n    </dt>\n'
            f'    <dd class="nhsuk-summary-list__value">\n      {_cell(row["value"])}\n    </dd>\n'
            "  </div>\n"
            for row in params["rows"]
        )
        return Markup(f'<dl class="nhsuk-summary-list">\n{rows}</dl>')


def remembered_components(env: Environment) -> dict[str, Remembered]:
    found = {name: Remembered(getattr(env.get_template(path).module, name)) for name, path in MEMOISED.items()}
    for name, path in WHEN_BLANK.items():
        found[name] = Remembered(getattr(env.get_template(path).module, name), only=_blank_field)
    return found


def written_components(env: Environment) -> dict[str, SummaryList]:
    macro = env.get_template("nhsuk/components/summary-list/macro.jinja").module.summaryList  # type: ignore[attr-defined]
    return {"summaryList": SummaryList(macro)}
