"""Which channel a notice about an appointment goes by (hub/rules/feed.py's choose_channel).

The rest of hub/rules/feed.py, the hospital feed's validation, is tested in tests/rules/test_feed.py.
"""

import pytest

from hub.rules.feed import choose_channel

PATIENT = {"opted_out": 0, "contact_preference": "sms", "mobile": "+447700900001", "email": "a@example.com"}


@pytest.mark.parametrize(
    ("changes", "channel"),
    [
        ({}, "sms"),
        ({"contact_preference": "email"}, "email"),
        ({"mobile": None}, "email"),
        ({"mobile": None, "email": None}, "letter"),
        ({"sms_opted_out": 1}, "email"),
        ({"sms_opted_out": 1, "email": None}, "letter"),
        ({"contact_preference": "email", "email": None}, "sms"),
        ({"opted_out": 1}, "letter"),
        ({"contact_preference": "email", "email_opted_out": 1}, "sms"),
        ({"mobile": None, "email_opted_out": 1}, "letter"),
    ],
)
def test_channel_is_the_preference_then_the_other_then_post(changes: dict[str, object], channel: str) -> None:
    assert choose_channel({**PATIENT, **changes}) == channel
