"""Text at the boundary: the text rule, what a form value loses, and the names of fields shown back to the caller."""

from __future__ import annotations

from hub.rules.text import CONTROLS, SURROGATES, escaped, printable, text_problem


def test_printable_drops_nul_and_other_c0_controls_but_keeps_tabs_and_line_breaks() -> None:
    # PostgreSQL refuses NUL in text, so NUL above all must go; tab and line breaks are what people type.
    assert printable("a\x00b\tc\nd\re") == "ab\tc\nd\re"
    assert printable("".join(map(chr, range(0x20)))) == "\t\n\r"
    assert printable("\x1f \x20!") == "  !"  # the last control character goes, the first printable one stays
    assert printable("Zoë 😀") == "Zoë 😀"


def test_printable_drops_what_no_form_field_means_to_hold() -> None:
    # F6: a C1 control or a noncharacter in a search came back into the page, which was then not valid HTML.
    sent = "a\x00b\x85c\x9fd\ud800e\ufdd0f\ufffeg\U0001fffeh\tk\r\nl\u00e9\U0001f600"
    assert printable(sent) == "abcdefgh\tk\r\nl\u00e9\U0001f600"


def test_text_problem() -> None:
    assert text_problem("Zoë\u00a0O'Brien") is None
    assert text_problem("a\ud800") == SURROGATES
    assert text_problem("a\tb") == CONTROLS
    assert text_problem("a\tb\nc", newlines=True) is None
    assert text_problem("a\rb", newlines=True) == CONTROLS  # a carriage return is not a line break here
    assert text_problem("a\x7fb", newlines=True) == text_problem("a\x9fb", newlines=True) == CONTROLS
    assert text_problem("a\xa0b") is None


def test_field_names_are_escaped_when_they_cannot_be_shown() -> None:
    assert escaped("given_name") == "given_name"
    assert escaped("a\x00b\ud800c\u200b") == "a\\u0000b\\ud800c\\u200b"
