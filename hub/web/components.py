"""NHS.UK frontend components, each rendered once per distinct set of parameters.

The nhsuk-frontend-jinja macros are most of a page's rendering time (the header alone was half of it). Their
output depends on their parameters only, so the components that carry no personal data (tags, buttons, back
links, the skip link and the footer) are remembered by their parameters, and the header with the patient's name
left as a slot filled in after. The caches are small and bounded; nothing personal is kept in them.
"""

from __future__ import annotations

from collections import OrderedDict
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


class Remembered:
    """A macro called as before, `component(params)`, or `component(params, slot=text)` with SLOT in params."""

    def __init__(self, macro: Any, size: int = 256) -> None:
        self._macro = macro
        self._size = size
        self._cache: OrderedDict[str, str] = OrderedDict()

    def __call__(self, params: dict[str, Any] | None = None, slot: str = "") -> Markup:
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


def remembered_components(env: Environment) -> dict[str, Remembered]:
    return {name: Remembered(getattr(env.get_template(path).module, name)) for name, path in MEMOISED.items()}
