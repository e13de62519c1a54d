"""Text at the boundary: what a form or query value keeps (hub/rules/validation.py)."""

from __future__ import annotations

from hub.rules.validation import printable


def test_printable_drops_what_no_form_field_means_to_hold() -> None:
    # F6: a C1 control or a noncharacter in a search came back into the page, which was then not valid HTML.
    sent = "a\x00b\x85c\x9fd\ud800e\ufdd0f\ufffeg\U0001fffeh\tk\r\nl\u00e9\U0001f600"
    assert printable(sent) == "abcdefgh\tk\r\nl\u00e9\U0001f600"
