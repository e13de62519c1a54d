"""Remembered NHS.UK components: the same HTML as the macro, the slot escaped, the cache bounded."""

import re

import pytest
from jinja2 import ChainableUndefined, Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from hub.web.components import SLOT, Remembered, remembered_components, written_components


def _env() -> Environment:
    return Environment(
        loader=PackageLoader("nhsuk_frontend_jinja"),
        autoescape=select_autoescape(["jinja"]),
        undefined=ChainableUndefined,  # as the hub's environment: the macros read optional nested params
    )


def test_a_remembered_component_renders_what_the_macro_renders() -> None:
    env = _env()
    tag = env.get_template("nhsuk/components/tag/macro.jinja").module.tag  # type: ignore[attr-defined]
    remembered = remembered_components(env)["tag"]
    params = {"text": "Unread letter", "classes": "nhsuk-tag--orange"}
    assert remembered(params) == Markup(str(tag(params)))
    assert remembered(params) == remembered(dict(params))  # the same parameters again: the same HTML
    assert remembered({"text": "Booked"}) != remembered(params)


def test_the_slot_is_filled_in_escaped() -> None:
    env = _env()
    header = remembered_components(env)["header"]
    params = {"service": {"text": "Appointments"}, "account": {"items": [{"text": SLOT, "icon": True}]}}
    first = header(params, slot="Margaret <Jones>")
    second = header(params, slot="David & Co")
    assert "Margaret &lt;Jones&gt;" in first and SLOT not in first
    assert "David &amp; Co" in second and "Margaret" not in second


def test_markup_and_plain_text_are_remembered_apart() -> None:
    calls: list[object] = []

    def macro(params: dict[str, object]) -> str:
        calls.append(params["text"])
        return str(Markup("<b>{}</b>").format(params["text"]))

    remembered = Remembered(macro)
    assert remembered({"text": "<i>"}) == Markup("<b>&lt;i&gt;</b>")
    assert remembered({"text": Markup("<i>")}) == Markup("<b><i></b>")
    assert len(calls) == 2


def test_the_cache_is_bounded() -> None:
    calls: list[object] = []

    def macro(params: dict[str, object]) -> str:
        calls.append(params["n"])
        return str(params["n"])

    remembered = Remembered(macro, size=3)
    for n in (1, 2, 3, 4, 1):
        remembered({"n": n})
    assert calls == [1, 2, 3, 4, 1]  # 1 was the oldest, so it went when 4 came
    remembered({"n": 4})
    assert calls == [1, 2, 3, 4, 1]


def _same_markup(html: str) -> str:
    """Markup compared as a browser reads it: runs of white space are one, and none beside a tag or at its end."""
    return re.sub(r"\s*(<[^>]+?)\s*>\s*", r"\1>", re.sub(r"\s+", " ", html)).strip()


def test_input_and_date_input_are_remembered_only_when_blank() -> None:
    env = _env()
    components = remembered_components(env)
    made = env.get_template("nhsuk/components/input/macro.jinja").module.input  # type: ignore[attr-defined]
    blank = {"id": "code", "name": "code", "label": {"text": "Security code"}, "value": ""}
    assert components["input"](blank) == Markup(str(made(blank)))
    typed = {**blank, "value": "07700 900123"}
    erred = {**blank, "errorMessage": {"text": "Enter the security code"}}
    assert "07700 900123" in components["input"](typed) and "Enter the security code" in components["input"](erred)
    dates = {"id": "dob", "items": [{"name": "dob-day", "value": ""}, {"name": "dob-year", "value": "1948"}]}
    assert "1948" in components["dateInput"](dates)
    cached = [c._cache for c in (components["input"], components["dateInput"])]
    kept = "".join(str(key) for cache in cached for key in cache)
    assert "07700" not in kept and "1948" not in kept and "Enter the" not in kept
    assert len(cached[0]) == 1  # only the blank field


@pytest.mark.parametrize(
    "rows",
    [
        [{"key": {"text": "Date"}, "value": {"text": "Monday 2 March <2026> & after"}}],
        [
            {"key": {"text": " Time "}, "value": {"text": "9:30am (about 20 minutes)"}},
            {"key": {"text": "Where"}, "value": {"html": Markup('<a href="/sites/RFH">Royal Free</a><br>\nPond St')}},
            {"key": {"html": Markup("<b>Clinic</b>")}, "value": {"text": ""}},
            {"key": {"text": "Site"}, "value": {"text": Markup("Barnet &amp; Chase <i>Farm</i>")}},
            {"key": {"text": "Minutes"}, "value": {"text": 20}},
        ],
        [],
    ],
)
def test_a_plain_summary_list_is_the_macros_markup(rows: list[dict[str, object]]) -> None:
    env = _env()
    made = env.get_template("nhsuk/components/summary-list/macro.jinja").module.summaryList  # type: ignore[attr-defined]
    ours = written_components(env)["summaryList"]
    assert _same_markup(ours({"rows": rows})) == _same_markup(str(made({"rows": rows})))


def test_a_summary_list_with_more_than_plain_rows_is_the_macros_own() -> None:
    env = _env()
    made = env.get_template("nhsuk/components/summary-list/macro.jinja").module.summaryList  # type: ignore[attr-defined]
    ours = written_components(env)["summaryList"]
    action = {"items": [{"href": "/change", "text": "Change", "visuallyHiddenText": "date"}]}
    for params in (
        {"rows": [{"key": {"text": "Date"}, "value": {"text": "Monday"}, "actions": action}]},
        {"rows": [{"key": {"text": "Date"}, "value": {"text": "Monday", "classes": "x"}}]},
        {"rows": [{"key": {"text": "Date"}, "value": {"text": "Monday"}}], "card": {"title": {"text": "You"}}},
    ):
        assert ours(params) == Markup(str(made(params)))
