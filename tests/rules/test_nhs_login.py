from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from hub.rules.nhs_login import Identity, identity, safe_return_path

P9 = {"identity_proofing_level": "P9", "nhs_number": "9434765919", "birthdate": "1948-03-14"}


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        (P9, Identity("9434765919", date(1948, 3, 14))),
        ({**P9, "identity_proofing_level": "P5"}, "not_p9"),
        ({**P9, "identity_proofing_level": None, "vot": "P9.Cp.Cd"}, Identity("9434765919", date(1948, 3, 14))),
        ({k: v for k, v in P9.items() if k != "identity_proofing_level"} | {"vot": "P5.Cp.Cd"}, "not_p9"),
        ({**P9, "nhs_number": "9434765918"}, "no_nhs_number"),
        ({**P9, "nhs_number": None}, "no_nhs_number"),
        ({**P9, "birthdate": "14/03/1948"}, "no_birthdate"),
        ({**P9, "birthdate": "1948-02-30"}, "no_birthdate"),
    ],
)
def test_only_a_p9_identity_with_nhs_number_and_birthdate_will_do(claims: dict[str, Any], expected: object) -> None:
    cleaned = {k: v for k, v in claims.items() if v is not None}
    assert identity(cleaned) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/appointments/12", "/appointments/12"),
        ("/letters/3", "/letters/3"),
        ("/appointments", "/appointments"),
        ("//evil.example/appointments", "/appointments"),
        ("https://evil.example", "/appointments"),
        ("/appointments/12/cancel", "/appointments"),
    ],
)
def test_only_our_own_pages_are_landed_on(path: str, expected: str) -> None:
    assert safe_return_path(path) == expected


@pytest.mark.parametrize("born", [19480314, "19480314", "1948-03-14T00:00:00"])
def test_a_birthdate_is_a_string_written_yyyy_mm_dd(born: object) -> None:
    # Python reads "19480314" as a date too; NHS login's claim is always YYYY-MM-DD, so anything else is refused.
    assert identity({**P9, "birthdate": born}) == "no_birthdate"
