"""Remembered NHS.UK components: the same HTML as the macro, the slot escaped, the cache bounded."""

from jinja2 import ChainableUndefined, Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from hub.web.components import SLOT, Remembered, remembered_components


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
